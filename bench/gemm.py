"""swiftrcnn.linalg.matmul vs numpy.matmul (OpenBLAS), float32, side by side in one process.

    python bench/gemm.py            # best of 7 runs per problem
    python bench/gemm.py --quick    # best of 3
    python bench/gemm.py --repeats 21   # best of 21 (a steadier estimate on a noisy machine)
    python bench/gemm.py --only conv
    python bench/gemm.py --isa generic   # swiftrcnn on another instruction-set path (default: the best this CPU has)
    python bench/gemm.py --isa avx2      # on an AVX-512 machine: OpenBLAS on its Haswell (AVX2) kernels too

Problems: square 512, 1024, 2048; the convolutions of ResNet-50 + FPN at an 800 x 1216 input as im2col products (m =
out channels, n = output H*W, k = in channels * kh * kw); the box head's fc6 as a linear layer (x (1000 RoIs,
256*7*7) @ W.T with W (1024, 256*7*7), i.e. transpose_b). NumPy keeps its default threading (all cores); swiftrcnn
runs on `--threads` threads (default: all cores). Both write into one preallocated output. The two libraries
alternate run by run, so load from other processes hits both alike, with a pause before each run (see SETTLE_SECONDS
and RUN_SECONDS). `--isa` picks swiftrcnn's kernel path (SWIFTRCNN_ISA); a path the CPU lacks exits with code 2.
With `--isa avx2` on a CPU that has AVX-512, OpenBLAS is pinned to its Haswell (AVX2 + FMA) kernels as well
(OPENBLAS_CORETYPE, unless set or `--openblas-core` says otherwise), so the run stands in for an AVX2 machine on
both sides; the header names OpenBLAS's kernel set. Prints GFLOP/s of each and the ratio swiftrcnn / NumPy under a
header naming the CPU (model, avx2 / avx512f), swiftrcnn's path and the threads, checks the results agree, and
writes the table and the same machine description as JSON (default bench/results/gemm.json). Beside the ratio of the
best runs it prints the median of the per-round ratios (each swiftrcnn run against the NumPy run of the same round;
the two go first in turn, round by round), which drift of the machine's speed between rounds moves less, and a 95%
bootstrap interval for that median: where the interval holds 1.0, the two are at parity within this machine's noise.
Last, square 512 called now and then: two products after each idle gap of 20 and 100 ms (`--only idle` runs just
that), the median time per frame of each library.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import _machine


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="best of 3 runs instead of 7")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per library and problem (default 7, "
                   "3 with --quick)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for swiftrcnn")
    p.add_argument("--only", default="", help="comma-separated problem name prefixes")
    p.add_argument("--isa", choices=_machine.ISAS, default=None,
                   help="swiftrcnn's instruction-set path (default: the library's, i.e. the best this CPU has)")
    p.add_argument("--openblas-core", default=None,
                   help="OpenBLAS kernel set for NumPy (OPENBLAS_CORETYPE, e.g. Haswell, SkylakeX; default: "
                        "Haswell with --isa avx2 on an AVX-512 CPU, else OpenBLAS's own choice)")
    p.add_argument("--json", default=str(Path(__file__).parent / "results" / "gemm.json"))
    return p.parse_args()


ARGS = parse_args()
# Before NumPy loads OpenBLAS, which reads OPENBLAS_CORETYPE once.
if ARGS.openblas_core:
    os.environ["OPENBLAS_CORETYPE"] = ARGS.openblas_core
elif ARGS.isa == "avx2" and _machine.cpu_flags()["avx512f"]:
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
import numpy as np  # noqa: E402
os.environ["SWIFTRCNN_NUM_THREADS"] = str(ARGS.threads)

swiftrcnn = _machine.apply_isa(ARGS.isa)  # exits with code 2 if the CPU lacks the path
from swiftrcnn import linalg  # noqa: E402

swiftrcnn.set_num_threads(ARGS.threads)
REPEATS = ARGS.repeats if ARGS.repeats is not None else 3 if ARGS.quick else 7
if REPEATS < 1:
    sys.exit("--repeats must be at least 1")

# (name, m, n, k, transpose_b). Feature maps of an 800 x 1216 image: stride 4 -> 200 x 304, 8 -> 100 x 152,
# 16 -> 50 x 76, 32 -> 25 x 38.
PROBLEMS = [
    ("square 512", 512, 512, 512, False),
    ("square 1024", 1024, 1024, 1024, False),
    ("square 2048", 2048, 2048, 2048, False),
    ("conv res2 3x3 64->64", 64, 200 * 304, 64 * 9, False),
    ("conv res2 1x1 64->256", 256, 200 * 304, 64, False),
    ("conv res3 3x3 128->128", 128, 100 * 152, 128 * 9, False),
    ("conv res4 3x3 256->256", 256, 50 * 76, 256 * 9, False),
    ("conv res5 3x3 512->512", 512, 25 * 38, 512 * 9, False),
    ("conv res4 1x1 256->1024", 1024, 50 * 76, 256, False),
    ("linear fc6 12544->1024", 1000, 1024, 256 * 7 * 7, True),
]


# Pause before each timed run. OpenBLAS's worker threads keep spinning on the cores for a while after a call
# returns; without the pause a run that follows a NumPy run shares the cores with them (and measures ~half speed).
SETTLE_SECONDS = 0.3
# A timed run repeats a call until it lasts about this long, so small problems are timed with warm threads and
# caches (as in a network, where products follow each other) rather than one cold call after the pause.
RUN_SECONDS = 0.05


def timed_runs(fns, repeats):
    """Time per call of each function in each of `repeats` rounds; the functions take turns within a round, and which
    goes first alternates from round to round (so neither always runs after the other's threads)."""
    calls = []
    for f in fns:
        f()
        t = time.perf_counter()
        f()
        calls.append(max(1, int(RUN_SECONDS / max(time.perf_counter() - t, 1e-6))))
    rounds = []
    for r in range(repeats):
        row = [0.0] * len(fns)
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            time.sleep(SETTLE_SECONDS)
            t = time.perf_counter()
            for _ in range(calls[i]):
                fns[i]()
            row[i] = (time.perf_counter() - t) / calls[i]
        rounds.append(row)
    return rounds


# Products called now and then (once per video frame, say): square 512, two products after each idle gap, NumPy's
# frames and swiftrcnn's in separate blocks (after a NumPy call OpenBLAS's threads keep spinning for a while).
IDLE_GAPS_SECONDS = (0.02, 0.1)
IDLE_FRAMES = 30


def idle_gap_runs(fns, gap, frames):
    """Median seconds per frame (a `gap` pause, then each function's call twice) of each function, over two blocks of
    `frames` frames per function (the first block in order, the second in reverse)."""
    times = [[] for _ in fns]
    for block in range(2):
        for i in (range(len(fns)) if block == 0 else reversed(range(len(fns)))):
            time.sleep(SETTLE_SECONDS)
            for _ in range(frames):
                time.sleep(gap)
                t = time.perf_counter()
                fns[i]()
                fns[i]()
                times[i].append(time.perf_counter() - t)
    return [float(np.median(t)) for t in times]


def median_interval(values, level=0.95, resamples=4000):
    """A bootstrap interval for the median of `values` (percentiles of the medians of resamples; seeded)."""
    if len(values) < 3:
        return (float("nan"), float("nan"))
    v = np.asarray(values, dtype=np.float64)
    picks = np.random.default_rng(12345).integers(0, len(v), size=(resamples, len(v)))
    medians = np.median(v[picks], axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(medians, tail)), float(np.percentile(medians, 100 - tail))


def openblas_core() -> str:
    """The kernel set NumPy's OpenBLAS runs (e.g. "Haswell", "SkylakeX"), or "unknown"."""
    import ctypes
    try:
        libs = sorted((Path(np.__file__).parent.parent / "numpy.libs").glob("*openblas*"))
        for lib in libs:
            handle = ctypes.CDLL(str(lib))
            for symbol in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
                if hasattr(handle, symbol):
                    fn = getattr(handle, symbol)
                    fn.restype = ctypes.c_char_p
                    return fn().decode()
    except (OSError, AttributeError):
        pass
    return "unknown"


def main():
    rng = np.random.default_rng(0)
    rows = []
    only = [s for s in ARGS.only.split(",") if s]
    core = openblas_core()
    print(f"float32, swiftrcnn threads: {ARGS.threads}, NumPy {np.__version__} (BLAS default threads, OpenBLAS "
          f"kernels: {core}), best of {REPEATS}; ratio = swiftrcnn / NumPy of the best runs, median = median of "
          f"the {REPEATS} rounds' ratios, with its 95% bootstrap interval")
    print(_machine.header_line(ARGS.threads))
    header = (f"{'problem':26} {'m':>5} {'n':>6} {'k':>6}  {'numpy GF/s':>10} {'swift GF/s':>10} {'ratio':>6} "
              f"{'median':>8} {'95% interval':>13}")
    print(header)
    print("-" * len(header))
    for name, m, n, k, transpose_b in PROBLEMS:
        if only and not any(name.startswith(o) for o in only):
            continue
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if transpose_b else (k, n), dtype=np.float32)
        bt = b.T  # a view: NumPy reads it in place, as swiftrcnn does with transpose_b
        out = np.empty((m, n), np.float32)
        ours = linalg.matmul(a, b, transpose_b=transpose_b)
        ref = np.matmul(a, bt if transpose_b else b)
        err = float(np.max(np.abs(ours - ref)) / max(1e-30, float(np.max(np.abs(ref)))))
        if err > 1e-4:
            sys.exit(f"{name}: results differ (max relative error {err:.2e})")
        del ours, ref
        rounds = timed_runs([
            lambda: np.matmul(a, bt if transpose_b else b, out=out),
            lambda: linalg.matmul(a, b, transpose_b=transpose_b, out=out),
        ], REPEATS)
        t_np, t_sw = min(r[0] for r in rounds), min(r[1] for r in rounds)
        ratios = [r[0] / r[1] for r in rounds]
        paired = float(np.median(ratios))
        low, high = median_interval(ratios)
        flops = 2.0 * m * n * k
        g_np, g_sw = flops / t_np / 1e9, flops / t_sw / 1e9
        rows.append(dict(problem=name, m=m, n=n, k=k, transpose_b=transpose_b, numpy_seconds=t_np,
                         swiftrcnn_seconds=t_sw, numpy_gflops=g_np, swiftrcnn_gflops=g_sw, ratio=g_sw / g_np,
                         median_round_ratio=paired, median_round_ratio_interval95=[low, high],
                         round_ratios=ratios))
        print(f"{name:26} {m:5d} {n:6d} {k:6d}  {g_np:10.1f} {g_sw:10.1f} {g_sw / g_np:6.2f} {paired:8.2f} "
              f"  {low:5.2f}–{high:<5.2f}", flush=True)
    idle = []
    if not only or any("idle".startswith(o) for o in only):
        m = n = k = 512
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        out = np.empty((m, n), np.float32)
        print(f"\nsquare 512 called now and then: two products after each idle gap, median ms per frame of "
              f"{2 * IDLE_FRAMES} (ratio = NumPy / swiftrcnn)")
        for gap in IDLE_GAPS_SECONDS:
            t_np, t_sw = idle_gap_runs([lambda: np.matmul(a, b, out=out), lambda: linalg.matmul(a, b, out=out)],
                                       gap, IDLE_FRAMES)
            idle.append(dict(problem="square 512, two products per frame", gap_seconds=gap,
                             frames=2 * IDLE_FRAMES, numpy_seconds=t_np, swiftrcnn_seconds=t_sw, ratio=t_np / t_sw))
            print(f"gap {gap * 1e3:5.0f} ms   NumPy {t_np * 1e3:7.3f} ms   swiftrcnn {t_sw * 1e3:7.3f} ms   "
                  f"ratio {t_np / t_sw:5.2f}", flush=True)
    path = Path(ARGS.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(**_machine.describe(ARGS.threads), repeats=REPEATS, numpy=np.__version__, openblas_core=core,
                load_average=os.getloadavg())
    path.write_text(json.dumps(dict(meta=meta, results=rows, idle_gaps=idle), indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
