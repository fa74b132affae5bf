"""Argument handling shared by the RoI ops (roi_align, roi_pool, ps_roi_align, ps_roi_pool, MultiScaleRoIAlign).

Boxes come in torchvision's two forms: a (K, 5) array of rows [batch_index, x1, y1, x2, y2] (also as a plain list
of such rows), or a list (or tuple) with one (L, 4) array of [x1, y1, x2, y2] per image, which becomes (K, 5) rows
with the list position as the batch index. Boxes take the float type of the feature map (or gradient) they are used
with. Everything else about them (shape, finite values, batch indices) is checked by the library.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from .._typing import RoIBoxes
from ._array import as_float, as_int


def convert_boxes_to_roi_format(boxes: Iterable[npt.ArrayLike], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """A list of per-image (L, 4) boxes -> (K, 5) rows [image_index, x1, y1, x2, y2] of `dtype`."""
    parts = []
    for i, b in enumerate(boxes):
        b = as_float(b, f"boxes[{i}]", dtype)
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes[{i}]: expected shape (L, 4) rows [x1, y1, x2, y2], got {b.shape}")
        parts.append(np.concatenate([np.full((b.shape[0], 1), i, dtype), b], axis=1))
    if not parts:
        return np.empty((0, 5), dtype)
    return np.ascontiguousarray(np.concatenate(parts, axis=0))


def as_rois(boxes: RoIBoxes, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """`boxes` as a C-contiguous (K, 5) array of `dtype`, for every RoI op and MultiScaleRoIAlign. A list or tuple of
    2-D arrays is the per-image form; anything else (an array, or a plain list of [batch_index, x1, y1, x2, y2]
    rows) is the (K, 5) form."""
    if isinstance(boxes, (list, tuple)) and all(np.ndim(b) == 2 for b in boxes):
        return convert_boxes_to_roi_format(boxes, dtype)
    return as_float(boxes, "boxes", dtype)


def as_shape(shape: Iterable[int], name: str = "input_shape") -> tuple[int, ...]:
    """A shape to allocate a gradient with: a sequence of non-negative ints (its rank is checked by the library)."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{name}: expected a sequence of ints (N, C, H, W), got {type(shape).__name__}") from None
    dims = tuple(as_int(d, name) for d in dims)
    if any(d < 0 for d in dims):
        raise ValueError(f"{name}: expected non-negative sizes (N, C, H, W), got {dims}")
    return dims


def channels(a: npt.NDArray[Any]) -> int:
    """C of an (N, C, H, W) array; 0 for lower ranks (the library then reports the shape error)."""
    return a.shape[1] if a.ndim >= 2 else 0


