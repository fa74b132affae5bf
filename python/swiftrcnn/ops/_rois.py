"""Argument handling shared by the RoI ops (roi_pool, ps_roi_align, ps_roi_pool).

Boxes come in torchvision's two forms: a (K, 5) array of rows [batch_index, x1, y1, x2, y2], or a list (or tuple)
with one (L, 4) array of [x1, y1, x2, y2] per image, which becomes (K, 5) rows with the list position as the batch
index. Boxes take the float type of the feature map (or gradient) they are used with. Everything else about them
(shape, finite values, batch indices) is checked by the library.
"""
from __future__ import annotations

import numpy as np

from ._array import as_float, as_int


def as_rois(boxes, dtype) -> np.ndarray:
    """`boxes` as a C-contiguous (K, 5) array of `dtype` (see the module docstring)."""
    if not isinstance(boxes, (list, tuple)):
        return as_float(boxes, "boxes", dtype)
    rows = []
    for i, b in enumerate(boxes):
        name = f"boxes[{i}]"
        a = as_float(b, name, dtype)
        if a.ndim != 2 or a.shape[1] != 4:
            raise ValueError(f"{name}: expected shape (L, 4) rows [x1, y1, x2, y2], got {a.shape}")
        rows.append(np.concatenate([np.full((a.shape[0], 1), i, dtype), a], axis=1))
    return np.ascontiguousarray(np.concatenate(rows)) if rows else np.empty((0, 5), dtype)


def as_shape(shape, name: str = "input_shape") -> tuple[int, ...]:
    """A shape to allocate a gradient with: a sequence of non-negative ints (its rank is checked by the library)."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{name}: expected a sequence of ints (N, C, H, W), got {type(shape).__name__}") from None
    dims = tuple(as_int(d, name) for d in dims)
    if any(d < 0 for d in dims):
        raise ValueError(f"{name}: expected non-negative sizes (N, C, H, W), got {dims}")
    return dims


def channels(a: np.ndarray) -> int:
    """C of an (N, C, H, W) array; 0 for lower ranks (the library then reports the shape error)."""
    return a.shape[1] if a.ndim >= 2 else 0


