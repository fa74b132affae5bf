"""Position-sensitive RoI pooling (R-FCN): torchvision.ops.ps_roi_pool on NumPy arrays, and its gradient."""
from __future__ import annotations

from collections.abc import Sequence

import numpy.typing as npt

from .. import _C
from .._typing import FloatArray, RoIBoxes
from ._array import alloc, as_float, as_int, as_real, pair, rows
from ._rois import as_rois, as_shape, channels


def ps_roi_pool(input: npt.ArrayLike, boxes: RoIBoxes, output_size: int | Sequence[int],
                spatial_scale: float = 1.0) -> FloatArray:
    """Position-sensitive Region of Interest average pooling.

    Output channel c at bin (i, j) averages input channel (c * height + i) * width + j over the bin. Boxes are
    scaled by `spatial_scale` and rounded to whole cells (half away from zero); the rounded extent (at least 1,
    not counting the end cell) is split into bins with integer edges clipped to [0, H - 1] x [0, W - 1] as in
    torchvision, so the last row and column of the map are never pooled. An empty bin gives 0.

    Args:
        input: (N, C, H, W) feature map, float32 or float64; C must be a multiple of height * width.
        boxes: (K, 5) rows [batch_index, x1, y1, x2, y2], or a list of per-image (L, 4) arrays [x1, y1, x2, y2].
            Converted to `input`'s float type.
        output_size: int or (height, width) of the pooled output.
        spatial_scale: factor mapping box coordinates to `input` cells.

    Returns:
        (K, C / (height * width), height, width) array of `input`'s dtype.
    """
    input = as_float(input, "input")
    rois = as_rois(boxes, input.dtype)
    ph, pw = pair(output_size, "output_size")
    ph, pw = as_int(ph, "output_size"), as_int(pw, "output_size")
    scale = as_real(spatial_scale, "spatial_scale")
    bins = ph * pw
    out = alloc((rows(rois), channels(input) // bins if bins > 0 else 0, ph, pw), input.dtype, "output_size")
    _C.ps_roi_pool(input, rois, ph, pw, scale, out)
    return out


def ps_roi_pool_backward(grad_output: npt.ArrayLike, boxes: RoIBoxes, input_shape: Sequence[int],
                         spatial_scale: float = 1.0) -> FloatArray:
    """Gradient of `ps_roi_pool` with respect to its input.

    Args:
        grad_output: (K, C / (height * width), height, width) gradient of the pooled output.
        boxes: the boxes given to `ps_roi_pool` (either form).
        input_shape: (N, C, H, W) of the pooled input.
        spatial_scale: as given to `ps_roi_pool`.

    Returns:
        (N, C, H, W) gradient of `grad_output`'s dtype: each non-empty bin's gradient divided by its area, added to
        every cell of the bin in the bin's input channel.
    """
    grad_output = as_float(grad_output, "grad_output")
    rois = as_rois(boxes, grad_output.dtype)
    shape = as_shape(input_shape)
    scale = as_real(spatial_scale, "spatial_scale")
    grad_input = alloc(shape, grad_output.dtype, "input_shape")
    _C.ps_roi_pool_backward(grad_output, rois, scale, grad_input)
    return grad_input
