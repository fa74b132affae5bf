#!/usr/bin/env bash
# The per-instruction-set kernel modules are linked into one library. Code they share with other modules under one
# name (weak symbols: stdlib specialisations, runtime helpers) is kept once by the linker, from any of them, so such
# code compiled for AVX2 or AVX-512 could run on a CPU without it. This check fails when an instruction-set module
# defines a weak function outside its own namespace that uses any vector (VEX/EVEX) instruction.
#   scripts/check_kernel_symbols.sh [build folder, default .build/release]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-.build/release}
status=0
for module in _KernelsGeneric _KernelsAVX2 _KernelsAVX512; do
    objects=("$build/$module.build"/*.o)
    [ -e "${objects[0]}" ] || continue
    shared=$(nm --defined-only "${objects[@]}" | awk '$2 == "W" {print $3}' | grep -v -- "$module" | sort -u || true)
    for symbol in $shared; do
        found=$(objdump -d --no-show-raw-insn --disassemble="$symbol" "${objects[@]}" 2>/dev/null \
            | grep -E $'\tv[a-z]|%[yz]mm|%k[0-7]' || true)
        if [ -n "$found" ]; then
            echo "$module: shared weak function $symbol uses vector instructions:"
            echo "$found" | head -n 5
            status=1
        fi
    done
    echo "$module: $(echo "$shared" | grep -c . || true) shared weak symbols checked"
done
exit $status
