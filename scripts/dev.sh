#!/usr/bin/env bash
# Development loop without installing: builds the Swift library and the extension in place (into python/swiftrcnn)
# and runs the given pytest arguments with that tree first on PYTHONPATH.
#   scripts/dev.sh                  build only
#   scripts/dev.sh Tests/python/test_nms.py -q
set -euo pipefail
cd "$(dirname "$0")/.."
python3 setup.py -q build_ext --inplace >/dev/null
if [ "$#" -gt 0 ]; then
    PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" python3 -m pytest "$@"
fi
