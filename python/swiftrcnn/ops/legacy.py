"""The box conventions of py-faster-rcnn (Girshick et al.), for models trained with it.

Pixel boxes `(x1, y1, x2, y2)` include both end pixels: a box's width is `x2 - x1 + 1`, its centre `x1 + 0.5 w`
(torchvision's boxes have width `x2 - x1`). Results keep the input's float type, as the original NumPy code does;
arrays of shape (N, 4k) hold k boxes per row (one per class).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .. import _C
from .._typing import FloatArray, IndexArray
from ._array import as_float, as_floats, as_real, rows


def generate_anchors(base_size: float = 16, ratios: npt.ArrayLike = (0.5, 1, 2),
                     scales: npt.ArrayLike = (8, 16, 32)) -> npt.NDArray[np.float64]:
    """The reference anchors of py-faster-rcnn: (len(ratios) * len(scales), 4) float64, ratio-major.

    The base box is [0, 0, base_size - 1, base_size - 1]. For each aspect ratio r (height / width) the box of the
    same area gets width round(sqrt(base_size² / r)) and height round(width * r) (ties to even, as np.round), then
    each scale multiplies that width and height; every anchor keeps the centre of the base box. The defaults give
    the classic table whose first row is [-84, -40, 99, 55].
    """
    r = as_float(ratios, "ratios", np.float64)
    s = as_float(scales, "scales", np.float64)
    n = r.size * s.size if r.ndim == 1 and s.ndim == 1 else 0
    anchors = np.empty((n, 4), np.float64)
    _C.legacy_generate_anchors(as_real(base_size, "base_size"), r, s, anchors)
    return anchors


def bbox_transform(ex_rois: npt.ArrayLike, gt_rois: npt.ArrayLike) -> FloatArray:
    """Regression targets of `gt_rois` (N, 4) relative to `ex_rois` (N, 4) -> (N, 4) [dx, dy, dw, dh]:
    dx = (gt_cx - ex_cx) / ex_w, dw = log(gt_w / ex_w), and likewise for y, with "+1" widths."""
    ex, gt = as_floats({"ex_rois": ex_rois, "gt_rois": gt_rois})
    targets = np.empty(ex.shape, ex.dtype)
    _C.legacy_bbox_transform(ex, gt, targets)
    return targets


def bbox_transform_inv(boxes: npt.ArrayLike, deltas: npt.ArrayLike) -> FloatArray:
    """Applies `deltas` (N, 4k) to `boxes` (N, 4) -> (N, 4k) boxes in the dtype of `deltas`.

    Centre (dx w + cx, dy h + cy), size (exp(dw) w, exp(dh) h) (dw, dh are not clamped), and corners
    x1 = cx' - 0.5 w', x2 = cx' + 0.5 w' - 1 (likewise for y), so that the width is again x2 - x1 + 1.
    """
    d = as_float(deltas, "deltas")
    b = as_float(boxes, "boxes", d.dtype)
    pred = np.empty(d.shape, d.dtype)
    _C.legacy_bbox_transform_inv(b, d, pred)
    return pred


def clip_boxes(boxes: npt.ArrayLike, im_shape: Sequence[float]) -> FloatArray:
    """Clips `boxes` (N, 4k) to an image of `im_shape` = (height, width, ...): x into [0, width - 1], y into
    [0, height - 1]. NaN stays NaN."""
    b = as_float(boxes, "boxes")
    try:
        height, width = im_shape[0], im_shape[1]
    except (TypeError, IndexError, KeyError):
        raise ValueError(f"im_shape: expected (height, width, ...), got {im_shape!r}") from None
    out = np.empty(b.shape, b.dtype)
    _C.legacy_clip_boxes(b, as_real(height, "im_shape"), as_real(width, "im_shape"), out)
    return out


def nms(dets: npt.ArrayLike, thresh: float) -> IndexArray:
    """Greedy non-maximum suppression of py-faster-rcnn.

    Args:
        dets: (N, 5) rows [x1, y1, x2, y2, score].
        thresh: a box is kept only if its overlap with every box kept before it is <= thresh.

    Returns:
        int64 (K,) indices of the kept boxes in decreasing order of score. Equal scores are visited lower index
        first (the original's reversed `argsort` leaves their order unspecified).

    Overlaps use "+1" areas ((x2 - x1 + 1) * (y2 - y1 + 1)); an overlap that is NaN (infinite coordinates)
    suppresses, as `ovr <= thresh` is false there. NaN in `dets` raises ValueError.
    """
    d = as_float(dets, "dets")
    keep = np.empty(rows(d), np.int64)
    n = _C.legacy_nms(d, as_real(thresh, "thresh"), keep)
    return keep[:n].copy()
