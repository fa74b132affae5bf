"""Helpers for parity tests: random inputs and comparison against torchvision outputs."""
import numpy as np
import torch

# Tolerances of the parity suite: float64 to ~1e-10, float32 to ~1e-5 (absolute and relative).
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-10)}
DTYPES = [np.float32, np.float64]


def tol(dtype):
    return TOL[np.dtype(dtype).type]


def random_boxes(rng, n, dtype=np.float32, size=100.0, min_wh=1.0, max_wh=40.0):
    """(n, 4) xyxy boxes with corners in [0, size) and sides in [min_wh, max_wh)."""
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(min_wh, max_wh, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(dtype)


def t(a):
    """NumPy -> torch without copying semantics surprises (always a fresh contiguous tensor)."""
    return torch.from_numpy(np.ascontiguousarray(a).copy())


def assert_close(ours, theirs, dtype=None):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    dtype = dtype or ours.dtype
    assert ours.shape == theirs.shape, f"shape {ours.shape} != {theirs.shape}"
    assert ours.dtype == np.dtype(dtype), f"dtype {ours.dtype} != {np.dtype(dtype)}"
    np.testing.assert_allclose(ours, theirs, equal_nan=True, **tol(dtype))
