#!/usr/bin/env bash
# The whole test suite: Swift tests, then the pytest parity suite against torchvision (the oracle).
# Installs what it needs: the oracle (torch/torchvision, CPU use only; pip caches the wheels), pytest, hypothesis,
# and swiftrcnn itself from this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
echo "== installing the oracle and test tools"
"$PY" -m pip install -q --disable-pip-version-check "torch==2.15.0" "torchvision==0.29.2" pytest hypothesis
echo "== installing swiftrcnn from this checkout"
"$PY" -m pip install -q --disable-pip-version-check .

echo "== swift test"
swift test 2>&1 | tail -n 25

echo "== pytest"
# From outside the source tree, so the installed package is the one under test.
cd Tests/python
"$PY" -m pytest -q -p no:cacheprovider "$@"
