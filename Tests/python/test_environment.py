"""Environment switches read by the library: they change speed only, never results."""
import os
import subprocess
import sys

import numpy as np
import torch

from detector_utils import build


def test_huge_pages_switch_changes_nothing_but_speed(tmp_path):
    """SWIFTRCNN_HUGE_PAGES=0 (read once per process) gives the same features as the default: the advice only
    changes how the kernel backs large buffers (the FPN maps here are several MiB)."""
    torch.save(build("faster", min_size=320, max_size=512).state_dict(), tmp_path / "m.pth")
    code = f"""
import os, numpy as np
from swiftrcnn import models
m = models.fasterrcnn_resnet50_fpn(weights={str(tmp_path / 'm.pth')!r}, min_size=320, max_size=512)
image = np.random.default_rng(0).random((3, 300, 400), dtype=np.float32)
levels, _ = m.features([image])
np.savez({str(tmp_path)!r} + '/' + os.environ['TAG'] + '.npz', **levels)
"""
    for tag, value in (("on", None), ("off", "0")):
        env = dict(os.environ, TAG=tag)
        env.pop("SWIFTRCNN_HUGE_PAGES", None)
        if value is not None:
            env["SWIFTRCNN_HUGE_PAGES"] = value
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    on, off = np.load(tmp_path / "on.npz"), np.load(tmp_path / "off.npz")
    assert on.files == off.files and all(np.array_equal(on[k], off[k]) for k in on.files)


def test_threads_work_in_a_forked_child():
    """A child made by fork after the parent ran parallel loops (the worker threads do not exist in the child)
    computes the same product with the same thread count, and does not hang."""
    code = """
import os, sys, numpy as np, swiftrcnn
from swiftrcnn import linalg
swiftrcnn.set_num_threads(2)
rng = np.random.default_rng(0)
a, b = rng.random((300, 200), dtype=np.float32), rng.random((200, 400), dtype=np.float32)
expected = linalg.matmul(a, b)
pid = os.fork()
if pid == 0:
    ok = all(np.array_equal(linalg.matmul(a, b), expected) for _ in range(20))
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
assert np.array_equal(linalg.matmul(a, b), expected)
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_buffer_cache_reuse_changes_nothing(tmp_path):
    """Freed feature maps and scratch go back to the library's buffer cache and are handed out again with what the
    last user wrote in them. Results must not depend on that: one image's features are the same before and after
    another image's, the same with the cache off (SWIFTRCNN_BUFFER_CACHE_MB=0), and the same in a forked child.
    `kept_memory` / `release_memory` report and empty the cache."""
    torch.save(build("faster", min_size=320, max_size=512).state_dict(), tmp_path / "m.pth")
    code = f"""
import os, numpy as np, swiftrcnn
from swiftrcnn import models
m = models.fasterrcnn_resnet50_fpn(weights={str(tmp_path / 'm.pth')!r}, min_size=320, max_size=512)
rng = np.random.default_rng(0)
a, b = rng.random((3, 300, 400), dtype=np.float32), rng.random((3, 260, 420), dtype=np.float32) * 5
def run(image):
    levels, _ = m.features([image])
    return levels, m([image])[0]
first, first_det = run(a)
run(b)
again, again_det = run(a)
assert all(np.array_equal(first[k], again[k]) for k in first), "features changed after another image"
assert all(np.array_equal(first_det[k], again_det[k]) for k in first_det), "detections changed"
kept = swiftrcnn.kept_memory()
if os.environ.get("SWIFTRCNN_BUFFER_CACHE_MB") == "0":
    assert kept == 0, kept
    assert "buffer cache:" in swiftrcnn.config_report() and "off" in swiftrcnn.config_report()
else:
    assert kept >= 4 << 20, kept
    assert f"{{kept >> 20}} MiB kept now" in swiftrcnn.config_report()
    pid = os.fork()
    if pid == 0:
        levels, _ = run(a)
        os._exit(0 if all(np.array_equal(first[k], levels[k]) for k in first) else 3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert swiftrcnn.release_memory() == kept
    assert swiftrcnn.kept_memory() == 0
    after, _ = run(a)
    assert all(np.array_equal(first[k], after[k]) for k in first), "features changed after release_memory"
np.savez({str(tmp_path)!r} + '/' + os.environ['TAG'] + '.npz', **first)
"""
    for tag, value in (("on", None), ("off", "0")):
        env = dict(os.environ, TAG=tag)
        env.pop("SWIFTRCNN_BUFFER_CACHE_MB", None)
        if value is not None:
            env["SWIFTRCNN_BUFFER_CACHE_MB"] = value
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    on, off = np.load(tmp_path / "on.npz"), np.load(tmp_path / "off.npz")
    assert on.files == off.files and all(np.array_equal(on[k], off[k]) for k in on.files)
