"""Drawing detections on pictures (torchvision.utils' `draw_bounding_boxes` and `draw_segmentation_masks` in one
call, on a model's result dict).

    >>> from swiftrcnn.io import read_image
    >>> from swiftrcnn.utils import draw_detections
    >>> image = read_image("street.jpg")
    >>> (result,) = model([image])
    >>> draw_detections(image, result, labels=COCO_CATEGORIES).save("street_detections.png")

Needs Pillow (`pip install swiftrcnn[tools]`), imported when first used.
"""
from __future__ import annotations

import colorsys
from collections.abc import Mapping, Sequence
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from .io import require, to_float_image

__all__ = ["class_colour", "draw_detections", "label_name"]

# Label names: a sequence indexed by label id (torchvision's `weights.meta["categories"]`) or {id: name}.
LabelNames = Union[Sequence[str], Mapping[int, str]]

_GOLDEN = 0.6180339887498949


def class_colour(label: int) -> tuple[int, int, int]:
    """The RGB colour of a label id: the same on every call and run, and far apart for nearby ids (hues spaced
    by the golden ratio)."""
    hue = (int(label) * _GOLDEN + 0.11) % 1.0
    value = 0.95 if int(label) % 2 == 0 else 0.8
    r, g, b = colorsys.hsv_to_rgb(hue, 0.8, value)
    return round(r * 255), round(g * 255), round(b * 255)


def label_name(label: int, labels: LabelNames | None) -> str:
    """The name of label id `label` in `labels` (a sequence indexed by id or a mapping), or the id itself."""
    if labels is None:
        return str(label)
    if isinstance(labels, Mapping):
        return str(labels.get(label, label))
    return str(labels[label]) if 0 <= label < len(labels) else str(label)


def _field(result: Mapping[str, Any], key: str, n: int | None, dtype: Any) -> npt.NDArray[Any] | None:
    if key not in result:
        return None
    a = np.asarray(result[key])
    if a.size == 0 and n == 0:
        return a.astype(dtype)
    if n is not None and (a.ndim == 0 or len(a) != n):
        raise ValueError(f"result['{key}']: expected {n} rows (one per box), got shape {a.shape}")
    return a.astype(dtype, copy=False)


def draw_detections(image: Any, result: Mapping[str, Any], labels: LabelNames | None = None,
                    score_threshold: float = 0.5, *, width: int | None = None, font_size: int | None = None,
                    mask_alpha: float = 0.45, mask_threshold: float = 0.5, show_scores: bool = True) -> Any:
    """Draws a detector's result on a copy of `image` and returns it as a PIL RGB image.

    `image`: a (3, H, W) float array in [0, 1] (what the models take), an (H, W, 3) uint8 array or a PIL image.
    `result`: one dict of a model's output -- "boxes" (N, 4) (x1, y1, x2, y2) in pixels, "labels" (N,), "scores"
    (N,) (optional: without scores every box is drawn, e.g. a training target), optional "masks" ((N, 1, H, W)
    probabilities, or (N, H, W)) and "keypoints" ((N, K, 3) (x, y, visibility)). Detections scoring below
    `score_threshold` are left out. `labels` names the label ids: a sequence indexed by id (e.g.
    `swiftrcnn.datasets.COCO_CATEGORIES`) or a mapping {id: name}; without it the ids are shown.

    Each class has one colour (`class_colour`): mask pixels above `mask_threshold` are tinted with it at opacity
    `mask_alpha`, the box is outlined in it (`width` pixels, by default scaled to the image), and a caption "name
    0.97" (or "name" with `show_scores=False`) is written on a band of the colour above the box (inside it at the
    top edge of the picture), in black or white, whichever reads better. Higher scores are drawn last (on top)."""
    pil = require("PIL.Image", "draw_detections")
    draw_module = require("PIL.ImageDraw", "draw_detections")
    font_module = require("PIL.ImageFont", "draw_detections")
    if not isinstance(result, Mapping):
        raise TypeError(f"result: expected a dict of arrays (one image's model output), got {type(result).__name__}")
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float, np.floating)):
        raise TypeError(f"score_threshold: expected a number, got {type(score_threshold).__name__}")
    if not 0.0 <= mask_alpha <= 1.0:
        raise ValueError(f"mask_alpha: expected an opacity in [0, 1], got {mask_alpha}")
    if labels is not None and (isinstance(labels, str) or not isinstance(labels, (Sequence, Mapping))):
        raise TypeError(f"labels: expected a sequence or mapping of names, got {type(labels).__name__}")
    rgb = np.rint(to_float_image(image).clip(0.0, 1.0).transpose(1, 2, 0) * 255.0).astype(np.uint8)
    height, width_px = rgb.shape[:2]

    if "boxes" not in result:
        raise ValueError("result: no 'boxes'")
    boxes = np.asarray(result["boxes"], np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"result['boxes']: expected shape (N, 4), got {boxes.shape}")
    n = len(boxes)
    label_ids = _field(result, "labels", n, np.int64)
    if label_ids is None:
        label_ids = np.ones(n, np.int64)
    scores = _field(result, "scores", n, np.float64)
    masks = _field(result, "masks", n, np.float32)
    keypoints = _field(result, "keypoints", n, np.float64)
    if masks is not None:
        if masks.ndim == 4 and masks.shape[1] == 1:
            masks = masks[:, 0]
        if masks.shape[1:] != (height, width_px):
            raise ValueError(f"result['masks']: expected (N, 1, {height}, {width_px}) or (N, {height}, {width_px}) "
                             f"(the image's size), got {np.shape(result['masks'])}")

    keep = np.arange(n) if scores is None else np.flatnonzero(scores >= score_threshold)
    if scores is not None:
        keep = keep[np.argsort(scores[keep], kind="stable")]  # low scores first: the best end up on top

    if masks is not None and len(keep):
        out = rgb.astype(np.float32)
        for i in keep:
            region = masks[i] > mask_threshold
            tint = np.array(class_colour(int(label_ids[i])), np.float32)
            out[region] = out[region] * (1.0 - mask_alpha) + tint * mask_alpha
        rgb = np.rint(out).astype(np.uint8)

    canvas = pil.fromarray(rgb, "RGB")
    draw = draw_module.Draw(canvas)
    side = min(height, width_px)
    line = max(1, round(side / 240)) if width is None else int(width)
    size = int(font_size) if font_size is not None else int(np.clip(round(side / 24), 10, 36))
    try:
        font = font_module.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: its fixed bitmap font
        font = font_module.load_default()
    for i in keep:
        colour = class_colour(int(label_ids[i]))
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=colour, width=line)
        if keypoints is not None:
            r = max(1.5, line * 1.5)
            for x, y, v in keypoints[i]:
                if v > 0:
                    draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline=(255, 255, 255))
    for i in keep:
        colour = class_colour(int(label_ids[i]))
        caption = label_name(int(label_ids[i]), labels)
        if show_scores and scores is not None:
            caption += f" {scores[i]:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), caption, font=font)
        tw, th = right - left, bottom - top
        pad = max(1, size // 6)
        x1, y1 = float(boxes[i][0]), float(boxes[i][1])
        band_top = y1 - th - 2 * pad - 1 if y1 - th - 2 * pad - 1 >= 0 else y1
        band_left = min(max(0.0, x1), max(0.0, width_px - tw - 2 * pad))
        draw.rectangle([band_left, band_top, band_left + tw + 2 * pad, band_top + th + 2 * pad], fill=colour)
        luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
        ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
        draw.text((band_left + pad - left, band_top + pad - top), caption, font=font, fill=ink)
    return canvas
