"""Box coding: torchvision.models.detection._utils.BoxCoder on NumPy arrays.

Boxes are `(x1, y1, x2, y2)` with width `x2 - x1`. A box b is coded relative to a reference box a as
    dx = wx (cx_b - cx_a) / w_a,  dy = wy (cy_b - cy_a) / h_a,  dw = ww log(w_b / w_a),  dh = wh log(h_b / h_a)
for weights (wx, wy, ww, wh). Decoding inverts it, with dw and dh clamped above at `bbox_xform_clip`.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _C
from .._typing import FloatArray
from ._array import as_float, as_floats, as_real

# Default `bbox_xform_clip`: the largest dw, dh a decoded box may have, log(1000 / 16), i.e. a decoded box is at most
# 1000 / 16 = 62.5 times wider or taller than its reference box (anchor). It comes from Detectron (Faster R-CNN with
# 16-pixel feature strides and images up to 1000 pixels), kept by torchvision, and keeps exp() from overflowing.
BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def _weights(weights: Iterable[float]) -> npt.NDArray[np.float64]:
    try:
        values = tuple(weights)
    except TypeError:
        raise TypeError(f"weights: expected 4 numbers (wx, wy, ww, wh), got {type(weights).__name__}") from None
    if len(values) != 4:
        raise ValueError(f"weights: expected 4 numbers (wx, wy, ww, wh), got {len(values)}")
    return np.array([as_real(v, "weights") for v in values], np.float64)


def _concat(boxes: Sequence[npt.ArrayLike], name: str) -> tuple[npt.NDArray[Any], list[int]]:
    """A list of per-image (n_i, 4) arrays -> their concatenation (common float type) and the n_i."""
    if not isinstance(boxes, (list, tuple)):
        raise TypeError(f"{name}: expected a list of arrays (one per image), got {type(boxes).__name__}")
    if not boxes:
        raise ValueError(f"{name}: expected at least one array")
    arrays = as_floats({f"{name}[{i}]": b for i, b in enumerate(boxes)})
    for i, a in enumerate(arrays):
        if a.ndim != 2 or a.shape[1] != 4:
            raise ValueError(f"{name}[{i}]: expected shape (N, 4), got {a.shape}")
    return np.concatenate(arrays), [a.shape[0] for a in arrays]


class BoxCoder:
    """Encodes boxes relative to reference boxes and decodes them back (torchvision's BoxCoder).

    Args:
        weights: (wx, wy, ww, wh), finite and > 0, e.g. (1, 1, 1, 1) for the RPN and (10, 10, 5, 5) for the box head.
        bbox_xform_clip: upper clamp of the decoded dw, dh (finite); default log(1000 / 16).

    Non-finite boxes or codes propagate into the results (NaN in, NaN out), as in torchvision.
    """

    def __init__(self, weights: Sequence[float], bbox_xform_clip: float = BBOX_XFORM_CLIP) -> None:
        _weights(weights)
        as_real(bbox_xform_clip, "bbox_xform_clip")
        self.weights = weights
        self.bbox_xform_clip = bbox_xform_clip

    def encode(self, reference_boxes: Sequence[npt.ArrayLike], proposals: Sequence[npt.ArrayLike]) -> list[FloatArray]:
        """Per-image lists of (n_i, 4) arrays -> the targets of each image, a list of (n_i, 4) arrays (split by
        the sizes of `reference_boxes`)."""
        ref, counts = _concat(reference_boxes, "reference_boxes")
        prop, _ = _concat(proposals, "proposals")
        targets = self.encode_single(ref, prop)
        return np.split(targets, np.cumsum(counts)[:-1])

    def encode_single(self, reference_boxes: npt.ArrayLike, proposals: npt.ArrayLike) -> FloatArray:
        """Codes of `reference_boxes` (N, 4) (e.g. matched ground truth) relative to `proposals` (N, 4) (e.g.
        anchors) -> (N, 4), in the common float type of the two.

        With float32 and float64 inputs mixed, both are converted to float64 first (torchvision computes the
        widths and centres of each input in its own dtype, so results agree to float32 precision there).
        """
        ref, prop = as_floats({"reference_boxes": reference_boxes, "proposals": proposals})
        targets = np.empty(ref.shape, ref.dtype)
        _C.box_encode(ref, prop, _weights(self.weights), targets)
        return targets

    def decode(self, rel_codes: npt.ArrayLike, boxes: Sequence[npt.ArrayLike]) -> FloatArray:
        """`rel_codes` (sum n_i, 4k) (or any shape with sum n_i rows' worth of values) relative to the per-image
        list `boxes` of (n_i, 4) arrays -> (sum n_i, k, 4). With no boxes at all, returns
        `decode_single(rel_codes, boxes)` unreshaped, as torchvision does."""
        concat, counts = _concat(boxes, "boxes")
        codes = as_float(rel_codes, "rel_codes")
        box_sum = sum(counts)
        if box_sum > 0:
            if codes.size % box_sum:
                raise ValueError(f"rel_codes: {codes.size} values cannot be split over {box_sum} boxes")
            codes = codes.reshape(box_sum, -1)
        pred = self.decode_single(codes, concat)
        return pred.reshape(box_sum, -1, 4) if box_sum > 0 else pred

    def decode_single(self, rel_codes: npt.ArrayLike, boxes: npt.ArrayLike) -> FloatArray:
        """Decodes `rel_codes` (N, 4k) relative to `boxes` (N, 4) -> (N, 4k) boxes, in the dtype of `rel_codes`
        (`boxes` are converted to it)."""
        codes = as_float(rel_codes, "rel_codes")
        boxes = as_float(boxes, "boxes", codes.dtype)
        pred = np.empty(codes.shape, codes.dtype)
        _C.box_decode(codes, boxes, _weights(self.weights), as_real(self.bbox_xform_clip, "bbox_xform_clip"), pred)
        return pred
