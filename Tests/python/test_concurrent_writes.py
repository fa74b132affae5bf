"""Arrays written by another thread while an op runs (issue #9).

The ops release the GIL, so a second Python thread can write into an argument between the library's checks and the
kernel's reads. Whatever it writes, the process must not crash or write out of bounds: values that index memory
(batch indices, argmax, box coordinates) are checked on a copy that the kernel then reads. The cases run in a
subprocess, so that a crash fails the test instead of the test run; a write caught by the checks is a ValueError,
and a call that sees the array before or after the write works.
"""
import os
import subprocess
import sys
from pathlib import Path


import swiftrcnn

PYTHON_DIR = Path(swiftrcnn.__file__).resolve().parents[1]
# How long each case races (RACE_SECONDS overrides it for longer runs).
SECONDS = float(os.environ.get("RACE_SECONDS", "0.25"))

# For each case: runs `call()` repeatedly for `seconds` while a thread keeps writing `bad` and then the original
# values into `target[index]`. Prints each case's name before running it, so that a crash names its case.
_HARNESS = r"""
import sys, threading, time
import numpy as np
from swiftrcnn import ops
sys.setswitchinterval(1e-5)  # many calls, each racing the writer

def race(call, target, index, bad, seconds):
    good = np.copy(target[index])
    stop = False

    def flip():
        while not stop:
            target[index] = bad
            target[index] = good

    thread = threading.Thread(target=flip)
    thread.start()
    end = time.perf_counter() + seconds
    try:
        while time.perf_counter() < end:
            try:
                call()
            except ValueError:
                pass
    finally:
        stop = True
        thread.join()
"""

ROIS = "b = np.array([[i % 2, 1, 2, 20, 24] for i in range(32)], np.float32)\n"
FEATURES = "x = np.random.default_rng(0).random((2, 8, 32, 32), dtype=np.float32)\n"

CASES = {
    "roi_align batch index": (FEATURES + ROIS + "call = lambda: ops.roi_align(x, b, 7, 1.0, 2)", "b",
                              "(slice(None), 0)", "3e8"),
    "roi_align huge batch index": (FEATURES + ROIS + "call = lambda: ops.roi_align(x, b, 7, 1.0, -1)", "b",
                                   "(slice(None), 0)", "1e30"),
    "roi_align coordinates": (FEATURES + ROIS + "call = lambda: ops.roi_align(x, b, 7, 1.0, -1)", "b",
                              "(slice(None), 3)", "1e30"),
    "roi_align_backward": (ROIS + "g = np.ones((32, 8, 7, 7), np.float32)\n"
                           "call = lambda: ops.roi_align_backward(g, b, (2, 8, 32, 32), 1.0, 2)", "b",
                           "(slice(None), 0)", "3e8"),
    "roi_pool": (FEATURES + ROIS + "call = lambda: ops.roi_pool(x, b, 7, 1.0)", "b", "(slice(None), 0)", "3e8"),
    "roi_pool_backward argmax": (
        FEATURES + ROIS + "_, a = ops.roi_pool(x, b, 7, 1.0, return_argmax=True)\n"
        "g = np.ones(a.shape, np.float32)\ncall = lambda: ops.roi_pool_backward(g, a, x.shape, b)", "a",
        "(slice(None), slice(None), 0, 0)", "10 ** 12"),
    "roi_pool_backward batch index": (
        FEATURES + ROIS + "_, a = ops.roi_pool(x, b, 7, 1.0, return_argmax=True)\n"
        "g = np.ones(a.shape, np.float32)\ncall = lambda: ops.roi_pool_backward(g, a, x.shape, b)", "b",
        "(slice(None), 0)", "3e8"),
    "ps_roi_align": (FEATURES + ROIS + "call = lambda: ops.ps_roi_align(x, b, 2, 1.0, -1)", "b", "(slice(None), 0)",
                     "1e30"),
    "ps_roi_align coordinates": (FEATURES + ROIS + "call = lambda: ops.ps_roi_align(x, b, 2, 1.0, -1)", "b",
                                 "(slice(None), 4)", "1e30"),
    "ps_roi_align_backward": (ROIS + "g = np.ones((32, 2, 2, 2), np.float32)\n"
                              "call = lambda: ops.ps_roi_align_backward(g, b, (2, 8, 32, 32), 1.0, -1)", "b",
                              "(slice(None), 0)", "3e8"),
    "ps_roi_pool": (FEATURES + ROIS + "call = lambda: ops.ps_roi_pool(x, b, 2, 1.0)", "b", "(slice(None), 0)", "3e8"),
    "ps_roi_pool_backward": (ROIS + "g = np.ones((32, 2, 2, 2), np.float32)\n"
                             "call = lambda: ops.ps_roi_pool_backward(g, b, (2, 8, 32, 32), 1.0)", "b",
                             "(slice(None), 0)", "3e8"),
    "paste_masks_in_image": ("m = np.ones((32, 1, 28, 28), np.float32)\n"
                             "b = np.array([[1, 2, 20, 24]] * 32, np.float32)\n"
                             "call = lambda: ops.paste_masks_in_image(m, b, (64, 64))", "b", "(slice(None), 2)",
                             "1e30"),
    "multiscale image_shapes": (
        "f = {'0': np.ones((2, 4, 16, 16), np.float32), '1': np.ones((2, 4, 8, 8), np.float32)}\n"
        "s = np.array([[64, 64], [64, 64]], np.int64)\nbs = [np.array([[1, 2, 20, 24]] * 16, np.float32)] * 2\n"
        "pool = ops.MultiScaleRoIAlign(['0', '1'], 7, 2)\ncall = lambda: pool(f, bs, s)", "s", "(slice(None), 0)",
        "-(2 ** 62)"),
    "nms": ("rng = np.random.default_rng(0)\nxy = rng.uniform(0, 500, (3000, 2))\n"
            "b = np.concatenate([xy, xy + rng.uniform(5, 50, (3000, 2))], 1).astype(np.float32)\n"
            "sc = rng.random(3000).astype(np.float32)\ncall = lambda: ops.nms(b, sc, 0.5)", "b", "(slice(None), 2)",
            "np.nan"),
    "batched_nms": ("rng = np.random.default_rng(0)\nxy = rng.uniform(0, 500, (3000, 2))\n"
                    "b = np.concatenate([xy, xy + rng.uniform(5, 50, (3000, 2))], 1).astype(np.float32)\n"
                    "sc = rng.random(3000).astype(np.float32)\nc = np.arange(3000) % 3\n"
                    "call = lambda: ops.batched_nms(b, sc, c, 0.5)", "b", "(slice(None), 0)", "1e38"),
}


def test_arrays_written_during_a_call():
    script = _HARNESS
    for case, (setup, target, index, bad) in CASES.items():
        script += f"\nprint({case!r}, flush=True)\n{setup}\nrace(call, {target}, {index}, {bad}, {SECONDS})\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(PYTHON_DIR), "PATH": os.environ.get("PATH", "")})
    done = proc.stdout.split("\n")
    assert proc.returncode == 0, (f"{done[-2] if len(done) > 1 else 'setup'}: exit status {proc.returncode}\n"
                                  f"{proc.stderr[-2000:]}")
    assert done[:-1] == list(CASES)
