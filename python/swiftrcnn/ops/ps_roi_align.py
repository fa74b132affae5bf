"""Position-sensitive RoI Align (Light-Head R-CNN): torchvision.ops.ps_roi_align on NumPy arrays, and its
gradient."""
from __future__ import annotations

from collections.abc import Sequence

import numpy.typing as npt

from .. import _C
from .._typing import FloatArray, RoIBoxes
from ._array import alloc, as_float, as_int, as_real, pair, rows
from ._rois import as_rois, as_shape, channels


def ps_roi_align(input: npt.ArrayLike, boxes: RoIBoxes, output_size: int | Sequence[int], spatial_scale: float = 1.0,
                 sampling_ratio: int = -1) -> FloatArray:
    """Position-sensitive Region of Interest Align.

    Output channel c at bin (i, j) averages input channel (c * height + i) * width + j over a grid of bilinearly
    interpolated points in the bin. Boxes are scaled by `spatial_scale` and shifted by -0.5 (pixel centres), with
    no minimum size; samples outside [-1, H] x [-1, W] count as 0.

    Args:
        input: (N, C, H, W) feature map, float32 or float64; C must be a multiple of height * width.
        boxes: (K, 5) rows [batch_index, x1, y1, x2, y2], or a list of per-image (L, 4) arrays [x1, y1, x2, y2].
            Converted to `input`'s float type.
        output_size: int or (height, width) of the pooled output.
        spatial_scale: factor mapping box coordinates to `input` cells.
        sampling_ratio: sampling points per bin side when > 0; otherwise ceil(roi_size / output_size) per side
            (then a zero-size box gives NaN, as in torchvision). At most 2^20 points per bin are allowed.

    Returns:
        (K, C / (height * width), height, width) array of `input`'s dtype.
    """
    input = as_float(input, "input")
    rois = as_rois(boxes, input.dtype)
    ph, pw = pair(output_size, "output_size")
    ph, pw = as_int(ph, "output_size"), as_int(pw, "output_size")
    scale = as_real(spatial_scale, "spatial_scale")
    ratio = as_int(sampling_ratio, "sampling_ratio")
    bins = ph * pw
    out = alloc((rows(rois), channels(input) // bins if bins > 0 else 0, ph, pw), input.dtype, "output_size")
    _C.ps_roi_align(input, rois, ph, pw, scale, ratio, out)
    return out


def ps_roi_align_backward(grad_output: npt.ArrayLike, boxes: RoIBoxes, input_shape: Sequence[int],
                          spatial_scale: float = 1.0, sampling_ratio: int = -1) -> FloatArray:
    """Gradient of `ps_roi_align` with respect to its input.

    Args:
        grad_output: (K, C / (height * width), height, width) gradient of the pooled output.
        boxes: the boxes given to `ps_roi_align` (either form).
        input_shape: (N, C, H, W) of the pooled input.
        spatial_scale, sampling_ratio: as given to `ps_roi_align`.

    Returns:
        (N, C, H, W) gradient of `grad_output`'s dtype.
    """
    grad_output = as_float(grad_output, "grad_output")
    rois = as_rois(boxes, grad_output.dtype)
    shape = as_shape(input_shape)
    scale = as_real(spatial_scale, "spatial_scale")
    ratio = as_int(sampling_ratio, "sampling_ratio")
    grad_input = alloc(shape, grad_output.dtype, "input_shape")
    _C.ps_roi_align_backward(grad_output, rois, scale, ratio, grad_input)
    return grad_input
