#!/usr/bin/env bash
# The whole test suite: Swift tests, then the pytest parity suite against torchvision (the oracle).
# Installs what it needs: the oracle (torch/torchvision, CPU use only; pip caches the wheels), pytest, hypothesis,
# the tools' extras (Pillow, tqdm, pycocotools, scikit-image), Ray Data (examples/ray_batch_detect.py's test) and
# swiftrcnn itself from this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
echo "== linters"
bash scripts/lint.sh

echo "== installing the oracle and test tools"
"$PY" -m pip install -q --disable-pip-version-check "torch==2.15.0" "torchvision==0.29.2" pytest hypothesis \
    pillow tqdm pycocotools scikit-image "ray[data]"
# The portable build by default: the library compiled for the architecture's baseline, so the suite runs the
# run-time dispatch to every instruction-set path this CPU supports, as a wheel copied to another machine would.
export SWIFTRCNN_TARGET_CPU=${SWIFTRCNN_TARGET_CPU:-generic}
echo "== installing swiftrcnn from this checkout (SWIFTRCNN_TARGET_CPU=$SWIFTRCNN_TARGET_CPU)"
"$PY" -m pip install -q --disable-pip-version-check .
echo "== kernel modules share no vector code under common names"
bash scripts/check_kernel_symbols.sh
"$PY" -c "import swiftrcnn; swiftrcnn.show_config()"

echo "== swift test"
swift test 2>&1 | tail -n 25

# On a CPU without AVX-512 the avx512 path cannot run as built, so its logic (8-row tiles, 16-lane vectors, its
# packing and block sizes) would go untested: a second build compiles that path for AVX2 + FMA
# (SWIFTRCNN_AVX512_AS_AVX2, Package.swift) and runs the Swift tests again, now on all three paths.
if ! "$PY" -c "import sys, swiftrcnn; sys.exit('avx512' not in swiftrcnn.supported_isas())"; then
    echo "== swift test with the avx512 path compiled for AVX2 (this CPU has no AVX-512)"
    SWIFTRCNN_AVX512_AS_AVX2=1 swift build -c release --build-tests --scratch-path .build-avx512-as-avx2 2>&1 \
        | tail -n 5
    SWIFTRCNN_AVX512_AS_AVX2=1 swift test -c release --skip-build --scratch-path .build-avx512-as-avx2 2>&1 \
        | tail -n 25
fi

echo "== pytest"
# From outside the source tree, so the installed package is the one under test.
cd Tests/python
"$PY" -m pytest -q -p no:cacheprovider "$@"
