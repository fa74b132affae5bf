"""RoIAlign (Mask R-CNN): torchvision.ops.roi_align on NumPy arrays, and its backward pass.

Feature maps are (N, C, H, W). Boxes are either a (K, 5) array of rows [batch_index, x1, y1, x2, y2] (also as a
plain list of such rows) or a list of per-image (L, 4) arrays of [x1, y1, x2, y2] (image i's boxes get batch index
i). Results have the input's float
type (float32 or float64; other real inputs become float32) and boxes are converted to it.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy.typing as npt

from .. import _C
from .._typing import FloatArray, RoIBoxes
from ._array import alloc, as_float, as_int, as_real, pair
from ._rois import as_rois


def roi_align(input: npt.ArrayLike, boxes: RoIBoxes, output_size: int | Sequence[int], spatial_scale: float = 1.0,
              sampling_ratio: int = -1, aligned: bool = False) -> FloatArray:
    """Region-of-interest pooling by averaging bilinear samples (RoIAlign, He et al. 2017).

    Args:
        input: (N, C, H, W) feature maps.
        boxes: (K, 5) rows [batch_index, x1, y1, x2, y2], or a list of per-image (L, 4) arrays, in image
            coordinates (mapped onto `input` by `spatial_scale`). batch_index must be an integer in [0, N).
        output_size: int or (height, width) of the pooled output, in bins.
        spatial_scale: factor from box coordinates to `input` coordinates (e.g. 1/4 for a stride-4 map).
        sampling_ratio: samples per bin along each axis; <= 0 means adaptive, ceil(roi size / output size).
        aligned: if True, shift boxes by -0.5 pixel (Detectron2's alignment); if False, the legacy behaviour,
            where boxes are at least 1 x 1.

    Returns:
        (K, C, output_size[0], output_size[1]) pooled features.

    Raises ValueError for out-of-range batch indices, non-finite coordinates, non-positive sizes or scales, and
    boxes whose adaptive sampling would be absurdly large (see swiftrcnn's RoIAlign limits).
    """
    ph, pw = pair(output_size, "output_size")
    input = as_float(input, "input")
    rois = as_rois(boxes, input.dtype)
    out = alloc((rois.shape[0] if rois.ndim else 0, input.shape[1] if input.ndim > 1 else 0, ph, pw), input.dtype,
                "output_size")
    _C.roi_align(input, rois, ph, pw, as_real(spatial_scale, "spatial_scale"), as_int(sampling_ratio,
                 "sampling_ratio"), bool(aligned), out)
    return out


def roi_align_backward(grad_output: npt.ArrayLike, boxes: RoIBoxes, input_shape: Sequence[int],
                       spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = False) -> FloatArray:
    """Gradient of `roi_align` with respect to its input.

    Args:
        grad_output: (K, C, PH, PW) gradient of the pooled output; the output size is taken from its shape.
        boxes: the boxes given to `roi_align` (either form).
        input_shape: (N, C, H, W) of the input.
        spatial_scale, sampling_ratio, aligned: as given to `roi_align`.

    Returns:
        (N, C, H, W) grad_input in grad_output's float type.
    """
    grad_output = as_float(grad_output, "grad_output")
    rois = as_rois(boxes, grad_output.dtype)
    try:
        shape = tuple(as_int(d, "input_shape") for d in input_shape)
    except TypeError:
        raise TypeError(f"input_shape: expected (N, C, H, W) ints, got {input_shape!r}") from None
    if len(shape) != 4 or min(shape) < 0:
        raise ValueError(f"input_shape: expected (N, C, H, W) non-negative ints, got {input_shape!r}")
    grad_input = alloc(shape, grad_output.dtype, "input_shape")
    _C.roi_align_backward(grad_output, rois, as_real(spatial_scale, "spatial_scale"),
                          as_int(sampling_ratio, "sampling_ratio"), bool(aligned), grad_input)
    return grad_input
