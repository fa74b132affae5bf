#!/usr/bin/env bash
# The checks a contributor expects, run by scripts/test.sh (and so by CI): the generated bindings are current, and
# the Swift, Python and C sources pass their linters. Installs the pinned tools it needs with pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check "ruff==0.17.6" "mypy==2.4.1" "clang-format==23.1.5"

echo "== bindings generated from swiftrcnn.h are current"
"$PY" scripts/gen_bindings.py --check
echo "== ruff"
"$PY" -m ruff check python bench scripts Tests/python setup.py
echo "== mypy"
"$PY" -m mypy
echo "== swift format (the toolchain's swift-format, configured in .swift-format)"
swift format lint --strict -r Sources Tests Package.swift
echo "== clang-format"
# bindings.gen.c is the generator's output, checked above.
CLANG_FORMAT=$("$PY" -c 'import clang_format; print(clang_format.get_executable("clang-format"))')
find Sources/CPython Sources/CPUID -name '*.[ch]' ! -name '*.gen.c' -print0 | xargs -0 "$CLANG_FORMAT" --dry-run --Werror
