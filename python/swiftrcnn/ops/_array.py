"""Turning whatever the caller passes into the arrays the C ABI takes.

Every public op converts its inputs here, once: anything `numpy.asarray` accepts (lists, non-contiguous or
read-only views, Fortran order, non-native byte order) becomes a C-contiguous native-order array of float32/float64
(floats) or int64 (indices). Shape and value rules are checked by the library itself, whose errors name the
argument; this module only rejects what cannot be converted at all.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from .. import _C

_FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _numeric(x: object, name: str) -> npt.NDArray[Any]:
    try:
        a = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: expected an array of numbers, got {type(x).__name__} ({exc})") from None
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected an array of real numbers, got dtype {a.dtype}")
    return a


def float_dtype(*arrays: npt.NDArray[Any] | None) -> np.dtype[Any]:
    """The float type of an op: float64 if any float input is float64, else float32 (ints and float16 -> float32)."""
    for a in arrays:
        if a is not None and a.dtype.kind == "f" and a.dtype.itemsize == 8:
            return np.dtype(np.float64)
    return np.dtype(np.float32)


def as_float(x: object, name: str, dtype: npt.DTypeLike | None = None) -> npt.NDArray[Any]:
    """`x` as a C-contiguous native float array of `dtype` (default: float32/float64 kept, other reals -> float32)."""
    a = _numeric(x, name)
    if dtype is None:
        dtype = a.dtype.newbyteorder("=") if a.dtype.kind == "f" and a.dtype.itemsize in (4, 8) else np.float32
    return np.asarray(a, dtype=np.dtype(dtype), order="C")


def as_floats(names_values: Mapping[str, object]) -> tuple[npt.NDArray[Any], ...]:
    """Converts several float inputs to their common float type (see `float_dtype`)."""
    raw = {k: _numeric(v, k) for k, v in names_values.items()}
    dtype = float_dtype(*raw.values())
    return tuple(np.asarray(a, dtype=dtype, order="C") for a in raw.values())


def as_index(x: object, name: str) -> npt.NDArray[np.int64]:
    """`x` as a C-contiguous int64 array; it must hold integers (any integer dtype, or bool)."""
    a = _numeric(x, name)
    if a.dtype.kind not in "iub":
        raise TypeError(f"{name}: expected an integer array, got dtype {a.dtype}")
    return np.asarray(a, dtype=np.int64, order="C")


def rows(a: npt.NDArray[Any]) -> int:
    """Leading dimension, 0 for a 0-d array (the library then reports the shape error)."""
    return a.shape[0] if a.ndim else 0


# Range of the C ABI's integer arguments (int64_t / long long).
_INT64 = (-(1 << 63), (1 << 63) - 1)
# The library refuses arrays with more elements than this (SRCNN_MAX_ELEMENTS); results that large are refused here
# before numpy tries to allocate them.
_MAX_ELEMENTS = _C.MAX_ELEMENTS


def as_int(x: object, name: str) -> int:
    """An int argument; ValueError naming it when it does not fit the C ABI's 64-bit integers."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(x).__name__}")
    v = int(x)
    if not _INT64[0] <= v <= _INT64[1]:
        raise ValueError(f"{name}: {v} is out of range")
    return v


def alloc(shape: Iterable[int], dtype: npt.DTypeLike, name: str) -> npt.NDArray[Any]:
    """An uninitialised result of `shape` (negative sizes count as 0: the library reports them); MemoryError naming
    `name` (the argument that set its size) when it would exceed the library's element limit or cannot be had."""
    shape = tuple(max(int(d), 0) for d in shape)
    n = math.prod(shape)
    if n > _MAX_ELEMENTS:
        raise MemoryError(f"{name}: the result would have shape {shape} ({n} elements), too large")
    try:
        return np.empty(shape, dtype)
    except (MemoryError, ValueError):
        raise MemoryError(f"{name}: cannot allocate a result of shape {shape}") from None


def as_real(x: object, name: str) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(x).__name__}")
    return float(x)


def pair(x: int | Iterable[int], name: str) -> tuple[int, int]:
    """An `int` or a pair of ints -> (h, w); torchvision's `output_size` convention."""
    if isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_)):
        v = as_int(x, name)
        return v, v
    try:
        items = list(cast("Iterable[int]", x))
    except TypeError:
        raise TypeError(f"{name}: expected an int or a pair of ints, got {type(x).__name__}") from None
    if len(items) != 2:
        raise ValueError(f"{name}: expected an int or a pair of ints, got {len(items)} values")
    return as_int(items[0], name), as_int(items[1], name)
