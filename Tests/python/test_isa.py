"""Instruction-set paths: choosing one (SWIFTRCNN_ISA, set_isa), the configuration report, and results on every
path this CPU supports. Detector parity on every path is in test_models.py."""
import os
import subprocess
import sys

import numpy as np
import pytest

import swiftrcnn
from swiftrcnn import linalg

PATHS = swiftrcnn.ISA_PATHS


def _python(code, **env):
    """Runs `code` in a fresh interpreter with extra environment variables; returns (exit code, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, **env}, cwd=os.path.dirname(__file__))
    return p.returncode, p.stdout, p.stderr


@pytest.fixture
def restore_isa():
    saved = swiftrcnn.get_isa()
    yield
    swiftrcnn.set_isa(saved)


def test_default_is_the_best_supported_path():
    supported = swiftrcnn.supported_isas()
    assert supported[0] == "generic"
    assert set(supported) <= set(PATHS)
    if "SWIFTRCNN_ISA" not in os.environ:
        assert swiftrcnn.get_isa() == supported[-1]
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    if " avx2 " in flags and " fma " in flags:
        assert "avx2" in supported
    if " avx512f " in flags and " avx512bw " in flags and " avx512vl " in flags and " avx512dq " in flags:
        assert "avx512" in supported


def test_set_isa_round_trip_and_errors(restore_isa):
    for name in swiftrcnn.supported_isas():
        swiftrcnn.set_isa(name)
        assert swiftrcnn.get_isa() == name
    with pytest.raises(ValueError, match="isa: unknown instruction-set path 'sse9'"):
        swiftrcnn.set_isa("sse9")
    with pytest.raises(TypeError, match="isa: expected a str"):
        swiftrcnn.set_isa(2)
    for name in set(PATHS) - set(swiftrcnn.supported_isas()):
        with pytest.raises(ValueError, match=f"lacks .* needed by the {name} path; supported: generic"):
            swiftrcnn.set_isa(name)


@pytest.mark.parametrize("name", PATHS)
def test_environment_variable_forces_a_path(name):
    code, out, err = _python("import swiftrcnn; print(swiftrcnn.get_isa())", SWIFTRCNN_ISA=name)
    if name in swiftrcnn.supported_isas():
        assert code == 0 and out.strip() == name, err
    else:
        assert code != 0
        assert f"RuntimeError: SWIFTRCNN_ISA={name}: this CPU" in err and "lacks" in err


def test_environment_variable_with_an_unknown_name_is_an_error_at_import():
    code, _, err = _python("import swiftrcnn", SWIFTRCNN_ISA="avx1024")
    assert code != 0
    assert "RuntimeError: SWIFTRCNN_ISA=avx1024: unknown instruction-set path 'avx1024'; expected one of " \
           "generic, avx2, avx512" in err


def test_show_config(capsys):
    swiftrcnn.show_config()
    out = capsys.readouterr().out
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert lines["swiftrcnn"].strip() == swiftrcnn.__version__
    assert lines["path in use"].split()[0] == swiftrcnn.get_isa()
    assert lines["threads"].strip() == str(swiftrcnn.get_num_threads())
    for name in swiftrcnn.supported_isas():
        assert f"{name} (supported)" in lines["kernel paths"]
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
        assert lines["CPU"].strip().startswith(model)
        assert ("avx2" in lines["instruction sets"].split()) == (" avx2 " in open("/proc/cpuinfo").read())
    assert "library target CPU" in lines and "python" in lines


@pytest.mark.parametrize("isa", swiftrcnn.supported_isas())
def test_matmul_on_every_path(isa, restore_isa):
    rng = np.random.default_rng(3)
    swiftrcnn.set_isa(isa)
    for m, n, k in [(64, 3000, 576), (1000, 70, 1300), (7, 5, 3), (130, 257, 385)]:
        for dtype, tol in [(np.float32, 2e-5), (np.float64, 1e-12)]:
            a = rng.standard_normal((m, k)).astype(dtype)
            b = rng.standard_normal((k, n)).astype(dtype)
            want = a.astype(np.float64) @ b.astype(np.float64)
            got = linalg.matmul(a, b)
            assert got.dtype == dtype
            scale = np.abs(want).max() * np.sqrt(k)
            assert np.abs(got - want).max() <= tol * scale, (isa, m, n, k, dtype)
            assert np.array_equal(got, linalg.matmul(a, b)), "results must not change from run to run"


@pytest.mark.parametrize("isa", swiftrcnn.supported_isas())
def test_roi_tiles_on_every_path(isa, restore_isa):
    """RoIAlign and RoIPool forward fill, pool and store their 16-channel tiles in the path's
    kernels: each path matches torchvision, and gives the generic path's results bit for bit."""
    import torch
    import torchvision.ops as tvops

    from swiftrcnn import ops
    from utils import assert_close, t

    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 21, 13, 17)).astype(dtype)  # 21 channels: a full tile and a partial one
        xy = rng.uniform(-8, 60, (12, 2))
        rois = np.concatenate([rng.integers(0, 2, (12, 1)), xy, xy + rng.uniform(0, 40, (12, 2))], 1).astype(dtype)

        def run():
            return (ops.roi_align(x, rois, (7, 7), 0.25, 0, True), ops.roi_align(x, rois, (5, 3), 0.25, 2, False),
                    ops.roi_pool(x, rois, (3, 4), 0.25))

        swiftrcnn.set_isa("generic")
        want = run()
        swiftrcnn.set_isa(isa)
        got = run()
        for g, w in zip(got, want):
            assert np.array_equal(g, w), (isa, dtype)
        with torch.no_grad():
            assert_close(got[0], tvops.roi_align(t(x), t(rois), (7, 7), 0.25, 0, True))
            assert_close(got[1], tvops.roi_align(t(x), t(rois), (5, 3), 0.25, 2, False))
            assert_close(got[2], tvops.roi_pool(t(x), t(rois), (3, 4), 0.25))
