"""Linear algebra on NumPy arrays: the matrix multiply that swiftrcnn's convolution and linear layers run on.

    >>> from swiftrcnn import linalg
    >>> y = linalg.matmul(x, w, transpose_b=True)     # x @ w.T, e.g. a linear layer with weights (out, in)
"""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from . import _C
from ._typing import FloatArray
from .ops._array import as_floats


def _op_shape(x: npt.NDArray[Any], transpose: bool) -> tuple[int, int]:
    """(rows, columns) of op(x); (0, 0) for a non-matrix, which the library then rejects naming its shape."""
    if x.ndim != 2:
        return 0, 0
    return (x.shape[1], x.shape[0]) if transpose else x.shape


def matmul(a: npt.ArrayLike, b: npt.ArrayLike, transpose_a: bool = False, transpose_b: bool = False,
           out: FloatArray | None = None) -> FloatArray:
    """op(a) @ op(b) for 2-D arrays, where op(x) is `x.T` when `transpose_x` is true, else `x`.

    a: (m, k), or (k, m) with `transpose_a`; b: (k, n), or (n, k) with `transpose_b`. Returns (m, n) of the inputs'
    float type: float64 if either input is float64, else float32 (other real dtypes become float32). The transposes
    are read in place, so `matmul(x, w, transpose_b=True)` computes `x @ w.T` without copying `w`. Uses
    `swiftrcnn.get_num_threads()` threads. `out`, if given, receives the result and is returned: a C-contiguous
    (m, n) array of that float type, not overlapping `a` or `b`.
    """
    a, b = as_floats({"a": a, "b": b})
    m, _ = _op_shape(a, bool(transpose_a))
    _, n = _op_shape(b, bool(transpose_b))
    if out is None:
        out = np.empty((m, n), a.dtype)
    _C.matmul(a, b, int(bool(transpose_a)), int(bool(transpose_b)), out)
    return out


__all__ = ["matmul"]
