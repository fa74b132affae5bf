"""Pasting per-box masks into full images: torchvision.models.detection.roi_heads.paste_masks_in_image on NumPy
arrays."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .. import _C
from .._typing import FloatArray
from ._array import as_float, as_int, rows


def paste_masks_in_image(masks: npt.ArrayLike, boxes: npt.ArrayLike, img_shape: Sequence[int],
                         padding: int = 1) -> FloatArray:
    """Pastes each mask into an image-sized plane at its box.

    Each (M, M) mask is padded with `padding` zeros per side, its box is enlarged about its centre by
    (M + 2 * padding) / M and truncated to integers (x0, y0, x1, y1); the padded mask is resized bilinearly
    (align_corners=False) to (max(y1 - y0 + 1, 1), max(x1 - x0 + 1, 1)) and placed with its top-left pixel at
    (x0, y0), clipped to the image. Pixels outside every box are 0.

    Args:
        masks: (N, 1, M, M) float masks (e.g. Mask R-CNN's per-RoI probabilities).
        boxes: (N, 4) boxes (x1, y1, x2, y2) in image pixels, finite; converted to the masks' float type.
        img_shape: (height, width) of the image, both > 0.
        padding: zeros added around each mask before resizing (>= 0).

    Returns:
        (N, 1, height, width) array of the masks' float type.

    Boxes partly or wholly outside the image are clipped (torchvision raises for some of them). Raises ValueError
    for non-finite boxes, MemoryError for an output too large to allocate.
    """
    masks = as_float(masks, "masks")
    boxes = as_float(boxes, "boxes", dtype=masks.dtype)
    try:
        height, width = img_shape
    except (TypeError, ValueError):
        raise ValueError(f"img_shape: expected (height, width), got {img_shape!r}") from None
    height, width = as_int(height, "img_shape"), as_int(width, "img_shape")
    padding = as_int(padding, "padding")
    try:
        # Negative sizes are left for the library to report; it checks the shape of `out` against them.
        out = np.empty((rows(masks), 1, max(height, 0), max(width, 0)), masks.dtype)
    except (MemoryError, ValueError):
        raise MemoryError(f"img_shape: cannot allocate {rows(masks)} masks of {height} x {width} pixels") from None
    _C.paste_masks_in_image(masks, boxes, height, width, padding, out)
    return out
