"""Box utilities and suppression: torchvision.ops.boxes on NumPy arrays.

Boxes are `(x1, y1, x2, y2)` with `0 <= x1 < x2` and `0 <= y1 < y2` unless a function takes `fmt`. Results have
the input's float type (float32 or float64); indices are int64.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _C
from .._typing import FloatArray, IndexArray
from ._array import as_float, as_floats, as_index, as_real, rows

_FORMATS = {"xyxy": _C.XYXY, "xywh": _C.XYWH, "cxcywh": _C.CXCYWH}
_IOU, _GIOU, _DIOU, _CIOU = _C.IOU, _C.GENERALIZED_IOU, _C.DISTANCE_IOU, _C.COMPLETE_IOU


def _format(fmt: str, name: str) -> int:
    if fmt not in _FORMATS:
        raise ValueError(f"{name}: expected one of {tuple(_FORMATS)}, got {fmt!r}")
    return _FORMATS[fmt]


def _flat_boxes(boxes: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """(..., 4) -> (N, 4); anything else is passed on for the library to reject with the shape it got."""
    return boxes.reshape(-1, 4) if boxes.ndim >= 1 and boxes.shape[-1] == 4 else boxes


def box_convert(boxes: npt.ArrayLike, in_fmt: str, out_fmt: str) -> FloatArray:
    """Converts `boxes` (Tensor[..., 4]) between 'xyxy' (corners), 'xywh' (top-left, size) and 'cxcywh' (centre,
    size). Returns a new array of the same shape."""
    a, b = _format(in_fmt, "in_fmt"), _format(out_fmt, "out_fmt")
    boxes = as_float(boxes, "boxes")
    flat = _flat_boxes(boxes)
    out = np.empty(flat.shape, boxes.dtype)
    _C.box_convert(flat, a, b, out)
    return out.reshape(boxes.shape)


def box_area(boxes: npt.ArrayLike, fmt: str = "xyxy") -> FloatArray:
    """Area of each box: `boxes` (..., 4) in `fmt` -> (...)."""
    code = _format(fmt, "fmt")
    boxes = as_float(boxes, "boxes")
    if code != 0:
        boxes = box_convert(boxes, fmt, "xyxy")
    flat = _flat_boxes(boxes)
    out = np.empty(rows(flat), boxes.dtype)
    _C.box_area(flat, out)
    return out.reshape(boxes.shape[:-1])


def masks_to_boxes(masks: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The box around each mask's non-zero pixels: `masks` (N, H, W) of any dtype -> (N, 4) float32
    (x1, y1, x2, y2) in pixel indices, inclusive; [0, 0, 0, 0] for an empty mask (torchvision.ops.masks_to_boxes)."""
    m = np.asarray(masks)
    if m.size == 0:
        return np.zeros((0, 4), np.float32)
    if m.ndim != 3:
        raise ValueError(f"masks: expected shape (N, H, W), got {m.shape}")
    nonzero = np.ascontiguousarray(m != 0).view(np.uint8)
    out = np.empty((m.shape[0], 4), np.float32)
    _C.masks_to_boxes(nonzero, out)
    return out


def _pairwise(kind: int, boxes1: npt.ArrayLike, boxes2: npt.ArrayLike, eps: float, fmt: str = "xyxy") -> FloatArray:
    code = _format(fmt, "fmt")
    b1, b2 = as_floats({"boxes1": boxes1, "boxes2": boxes2})
    if code != 0:
        b1, b2 = box_convert(b1, fmt, "xyxy"), box_convert(b2, fmt, "xyxy")
    if b1.ndim > 2 and b1.ndim == b2.ndim and b1.shape[:-2] == b2.shape[:-2]:
        # Leading batch dimensions: one (N, M) matrix per batch entry.
        lead = b1.shape[:-2]
        f1, f2 = b1.reshape((-1,) + b1.shape[-2:]), b2.reshape((-1,) + b2.shape[-2:])
        out = np.stack([_pairwise(kind, x, y, eps) for x, y in zip(f1, f2)]) if f1.shape[0] else \
            np.empty((0, b1.shape[-2], b2.shape[-2]), b1.dtype)
        return out.reshape(lead + out.shape[-2:])
    out = np.empty((rows(b1), rows(b2)), b1.dtype)
    _C.box_iou(b1, b2, kind, eps, out)
    return out


def box_iou(boxes1: npt.ArrayLike, boxes2: npt.ArrayLike, fmt: str = "xyxy") -> FloatArray:
    """Pairwise intersection-over-union: `boxes1` (N, 4), `boxes2` (M, 4) in `fmt` -> (N, M)."""
    return _pairwise(_IOU, boxes1, boxes2, 0.0, fmt)


def generalized_box_iou(boxes1: npt.ArrayLike, boxes2: npt.ArrayLike) -> FloatArray:
    """Pairwise generalized IoU (Rezatofighi et al. 2019), in [-1, 1]: (N, 4), (M, 4) -> (N, M)."""
    return _pairwise(_GIOU, boxes1, boxes2, 0.0)


def distance_box_iou(boxes1: npt.ArrayLike, boxes2: npt.ArrayLike, eps: float = 1e-7) -> FloatArray:
    """Pairwise distance IoU (Zheng et al. 2020): IoU minus the squared centre distance over the squared diagonal
    of the enclosing box (+ `eps`, which keeps degenerate boxes finite). (N, 4), (M, 4) -> (N, M)."""
    return _pairwise(_DIOU, boxes1, boxes2, as_real(eps, "eps"))


def complete_box_iou(boxes1: npt.ArrayLike, boxes2: npt.ArrayLike, eps: float = 1e-7) -> FloatArray:
    """Pairwise complete IoU (Zheng et al. 2020): distance IoU minus an aspect-ratio consistency term.
    (N, 4), (M, 4) -> (N, M)."""
    return _pairwise(_CIOU, boxes1, boxes2, as_real(eps, "eps"))


def clip_boxes_to_image(boxes: npt.ArrayLike, size: Sequence[int]) -> FloatArray:
    """Clips `boxes` (..., 4) to an image of `size` = (height, width): x into [0, width], y into [0, height]."""
    boxes = as_float(boxes, "boxes")
    try:
        height, width = size
    except (TypeError, ValueError):
        raise ValueError(f"size: expected (height, width), got {size!r}") from None
    flat = _flat_boxes(boxes)
    out = np.empty(flat.shape, boxes.dtype)
    _C.clip_boxes_to_image(flat, int(height), int(width), out)
    return out.reshape(boxes.shape)


def remove_small_boxes(boxes: npt.ArrayLike, min_size: float) -> IndexArray:
    """Indices (int64) of the boxes (N, 4) whose width and height are both >= `min_size`."""
    boxes = as_float(boxes, "boxes")
    keep = np.empty(rows(boxes), np.int64)
    n = _C.remove_small_boxes(boxes, as_real(min_size, "min_size"), keep)
    return keep[:n].copy()


def nms(boxes: npt.ArrayLike, scores: npt.ArrayLike, iou_threshold: float) -> IndexArray:
    """Non-maximum suppression.

    Visits boxes by decreasing score and discards every box whose IoU with an already kept box is greater than
    `iou_threshold`.

    Args:
        boxes: (N, 4) boxes `(x1, y1, x2, y2)`.
        scores: (N,) score of each box.
        iou_threshold: boxes overlapping a kept box with IoU > iou_threshold are discarded. Any number, as in
            torchvision: at 1 or more (or NaN) nothing is discarded, below 0 every box whose IoU with a kept box is
            defined (not 0 / 0) is.

    Returns:
        int64 (K,) indices of the kept boxes, in decreasing order of score (equal scores: lower index first).

    Raises ValueError for NaN in `boxes` or `scores` (torchvision's result is undefined there).
    """
    boxes, scores = as_floats({"boxes": boxes, "scores": scores})
    keep = np.empty(rows(boxes), np.int64)
    n = _C.nms(boxes, scores, as_real(iou_threshold, "iou_threshold"), keep)
    return keep[:n].copy()


def batched_nms(boxes: npt.ArrayLike, scores: npt.ArrayLike, idxs: npt.ArrayLike, iou_threshold: float) -> IndexArray:
    """Non-maximum suppression done independently per category `idxs` (N,) (any integer dtype).

    Returns int64 indices of the kept boxes in decreasing order of score, as `nms`. Boxes without any element give
    an empty result whatever the other arguments, as torchvision's.
    """
    boxes = as_float(boxes, "boxes")
    if boxes.size == 0:
        return np.empty(0, np.int64)
    boxes, scores = as_floats({"boxes": boxes, "scores": scores})
    idxs = as_index(idxs, "idxs")
    keep = np.empty(rows(boxes), np.int64)
    n = _C.batched_nms(boxes, scores, idxs, as_real(iou_threshold, "iou_threshold"), keep)
    return keep[:n].copy()


def soft_nms(boxes: npt.ArrayLike, scores: npt.ArrayLike, iou_threshold: float = 0.3, sigma: float = 0.5,
             score_threshold: float = 0.001, method: str = "gaussian") -> tuple[IndexArray, FloatArray]:
    """Soft-NMS (Bodla et al., ICCV 2017): decays the scores of overlapping boxes instead of discarding them.

    Repeatedly selects the remaining box M with the highest score and multiplies the score of every other
    remaining box b by
      - 'linear':   1 - IoU(M, b) if IoU(M, b) > iou_threshold, else 1;
      - 'gaussian': exp(-IoU(M, b)^2 / sigma)  (`iou_threshold` unused);
    boxes whose score falls below `score_threshold` are dropped. Not part of torchvision.

    Returns:
        (keep, kept_scores): int64 (K,) indices in the order they were selected and their decayed scores (K,)
        (non-increasing), in the float type of the inputs.
    """
    methods = {"linear": _C.SOFT_NMS_LINEAR, "gaussian": _C.SOFT_NMS_GAUSSIAN}
    if method not in methods:
        raise ValueError(f"method: expected 'linear' or 'gaussian', got {method!r}")
    boxes, scores = as_floats({"boxes": boxes, "scores": scores})
    n_max = rows(boxes)
    keep = np.empty(n_max, np.int64)
    kept_scores = np.empty(n_max, boxes.dtype)
    n = _C.soft_nms(boxes, scores, methods[method], as_real(iou_threshold, "iou_threshold"), as_real(sigma, "sigma"),
                    as_real(score_threshold, "score_threshold"), keep, kept_scores)
    return keep[:n].copy(), kept_scores[:n].copy()
