"""RoI max pooling (Fast R-CNN): torchvision.ops.roi_pool on NumPy arrays, and its gradient."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from .. import _C
from .._typing import FloatArray, IndexArray, RoIBoxes
from ._array import alloc, as_float, as_index, as_int, as_real, pair, rows
from ._rois import as_rois, as_shape, channels


@overload
def roi_pool(input: npt.ArrayLike, boxes: RoIBoxes, output_size: int | Sequence[int], spatial_scale: float = ...,
             return_argmax: Literal[False] = ...) -> FloatArray: ...
@overload
def roi_pool(input: npt.ArrayLike, boxes: RoIBoxes, output_size: int | Sequence[int], spatial_scale: float = ...,
             *, return_argmax: Literal[True]) -> tuple[FloatArray, IndexArray]: ...
@overload
def roi_pool(input: npt.ArrayLike, boxes: RoIBoxes, output_size: int | Sequence[int], spatial_scale: float = ...,
             return_argmax: bool = ...) -> FloatArray | tuple[FloatArray, IndexArray]: ...


def roi_pool(input: npt.ArrayLike, boxes: RoIBoxes, output_size: int | Sequence[int], spatial_scale: float = 1.0,
             return_argmax: bool = False) -> FloatArray | tuple[FloatArray, IndexArray]:
    """Region of Interest max pooling.

    Each box is scaled by `spatial_scale` and rounded to whole cells (half away from zero); its (rounded) extent,
    counting the end cell, is split into `output_size` bins with integer edges (floor of the start, ceil of the
    end), clipped to the map, and each bin's maximum is taken. An empty bin gives 0.

    Args:
        input: (N, C, H, W) feature map, float32 or float64.
        boxes: (K, 5) rows [batch_index, x1, y1, x2, y2], or a list of per-image (L, 4) arrays [x1, y1, x2, y2].
            Converted to `input`'s float type.
        output_size: int or (height, width) of the pooled output.
        spatial_scale: factor mapping box coordinates to `input` cells (e.g. 1/16 for a stride-16 map).
        return_argmax: also return the argmax.

    Returns:
        (K, C, height, width) pooled features of `input`'s dtype; with `return_argmax`, also an int64 array of the
        same shape holding each maximum's index y * W + x in its image's H x W plane (-1 for an empty bin), as
        torchvision's kernel computes it (ties keep the first maximum in row-major order; NaN is never the maximum).
    """
    input = as_float(input, "input")
    rois = as_rois(boxes, input.dtype)
    ph, pw = pair(output_size, "output_size")
    ph, pw = as_int(ph, "output_size"), as_int(pw, "output_size")
    scale = as_real(spatial_scale, "spatial_scale")
    shape = (rows(rois), channels(input), ph, pw)
    out = alloc(shape, input.dtype, "output_size")
    argmax = alloc(shape, np.int64, "output_size") if return_argmax else None  # written only when asked for
    _C.roi_pool(input, rois, ph, pw, scale, out, argmax)
    return out if argmax is None else (out, argmax)


def roi_pool_backward(grad_output: npt.ArrayLike, argmax: npt.ArrayLike, input_shape: Sequence[int],
                      boxes: RoIBoxes | None = None) -> FloatArray:
    """Gradient of `roi_pool` with respect to its input.

    Args:
        grad_output: (K, C, height, width) gradient of the pooled output.
        argmax: (K, C, height, width) integer argmax returned by `roi_pool(..., return_argmax=True)`; every value
            must be -1 or an index into the H x W plane.
        input_shape: (N, C, H, W) of the pooled input.
        boxes: the boxes given to `roi_pool` (either form), which say which image each RoI came from. Required when
            N > 1; may be omitted for a single image.

    Returns:
        (N, C, H, W) gradient of `grad_output`'s dtype: each bin's gradient added to the cell its argmax names.
    """
    grad_output = as_float(grad_output, "grad_output")
    argmax = as_index(argmax, "argmax")
    shape = as_shape(input_shape)
    rois = None if boxes is None else as_rois(boxes, grad_output.dtype)
    grad_input = alloc(shape, grad_output.dtype, "input_shape")
    _C.roi_pool_backward(grad_output, rois, argmax, grad_input)
    return grad_input
