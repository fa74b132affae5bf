"""A small, reproducible detection data set: the digits 0 ... 9 drawn over photographs, in COCO format.

    >>> from swiftrcnn.datasets import CocoDetection, synthetic
    >>> annotations = synthetic.make_scenes("digits/train", count=500, seed=0)
    >>> data = CocoDetection("digits/train/images", annotations)      # 10 categories: ids 1 ... 10 = "0" ... "9"

Each scene is a random crop (random scale and flips, colour jitter) of one of scikit-image's sample photographs,
with 2 to 6 digits in Pillow's scalable default font, each 28 to 110 pixels tall, turned by up to 20 degrees (so
6 and 9 stay distinct), in a random colour that contrasts with the photograph under it. Digits may overlap, but
none hides more than 30% of another; the masks are the visible pixels (occlusion applied) and the boxes their
tight boxes. Scene `i` of seed `s` depends on (s, i) alone, so the files are bit-for-bit the same on every run
(with the same versions of NumPy, Pillow and its FreeType, and scikit-image). Needs Pillow with FreeType,
pycocotools and scikit-image (`pip install swiftrcnn[tools,data]`), imported when first used; the photographs
ship inside scikit-image (no download).
"""
from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._typing import PathLike
from ..io import require

__all__ = ["BACKGROUNDS", "CATEGORIES", "make_scenes", "scene"]

# scikit-image sample photographs stored in its wheel (readable offline); none shows digits or text.
BACKGROUNDS = ("astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "hubble_deep_field",
               "immunohistochemistry", "moon", "retina", "rocket")
# COCO categories: id d + 1 is the digit d.
CATEGORIES = tuple({"id": d + 1, "name": str(d), "supercategory": "digit"} for d in range(10))


def _check_range(value: Sequence[float], name: str, low: float, integer: bool = False) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a (low, high) pair of numbers, got {value!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)) or a < low or b < a or (integer and (a % 1 or b % 1)):
        kind = "integers" if integer else "numbers"
        raise ValueError(f"{name}: expected {kind} low <= high, low >= {low}, got {value!r}")
    return a, b


def _size(size: Sequence[int]) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise TypeError(f"size: expected (width, height) ints, got {size!r}") from None
    if width < 16 or height < 16 or (width, height) != tuple(size):
        raise ValueError(f"size: expected (width, height) ints of at least 16, got {size!r}")
    return width, height


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> Any:
    """The scikit-image sample photograph `name` as a PIL RGB image."""
    data = require("skimage.data", "synthetic scenes")
    image = require("PIL.Image", "synthetic scenes")
    array = np.asarray(getattr(data, name)())
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return image.fromarray(np.ascontiguousarray(array[:, :, :3], dtype=np.uint8), "RGB")


@functools.lru_cache(maxsize=256)
def _font(size: int) -> Any:
    font = require("PIL.ImageFont", "synthetic scenes")
    try:
        return font.load_default(size=size)
    except (TypeError, ImportError, OSError) as e:
        raise ImportError(f"synthetic scenes need Pillow built with FreeType (scalable fonts): {e}") from e


@functools.lru_cache(maxsize=None)
def _ink_ratio(digit: int) -> float:
    """The digit's ink height per point of font size."""
    left, top, right, bottom = _font(200).getbbox(str(digit))
    return (bottom - top) / 200.0


def _glyph(digit: int, height: float, angle: float) -> npt.NDArray[np.float32]:
    """The coverage (0 ... 1) of `digit` drawn `height` pixels tall and turned by `angle` degrees
    (counter-clockwise), cropped to its ink."""
    pil = require("PIL.Image", "synthetic scenes")
    draw = require("PIL.ImageDraw", "synthetic scenes")
    font = _font(max(4, int(round(height / _ink_ratio(digit)))))
    left, top, right, bottom = font.getbbox(str(digit))
    pad = 4
    canvas = pil.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    draw.Draw(canvas).text((pad - left, pad - top), str(digit), font=font, fill=255)
    canvas = canvas.rotate(angle, resample=pil.Resampling.BICUBIC, expand=True, fillcolor=0)
    alpha = np.asarray(canvas, dtype=np.float32) / 255.0
    rows, cols = np.flatnonzero(alpha.max(axis=1) > 0), np.flatnonzero(alpha.max(axis=0) > 0)
    return np.ascontiguousarray(alpha[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])


def _background(rng: np.random.Generator, width: int, height: int) -> npt.NDArray[np.float32]:
    """A random crop of a random photograph, scaled to (height, width), flipped and colour-jittered: (H, W, 3)
    float32 in [0, 1]."""
    pil = require("PIL.Image", "synthetic scenes")
    photo = _photo(BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))])
    sw, sh = photo.size
    scale = max(width / sw, height / sh) * math.exp(rng.uniform(0.0, math.log(2.5)))
    cw, ch = width / scale, height / scale
    x0, y0 = rng.uniform(0.0, sw - cw), rng.uniform(0.0, sh - ch)
    crop = photo.resize((width, height), pil.Resampling.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
    out = np.asarray(crop, dtype=np.float32) / 255.0
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if rng.random() < 0.25:
        out = out[::-1]
    gain = rng.uniform(0.75, 1.25) * rng.uniform(0.8, 1.2, size=3)
    return np.ascontiguousarray(np.clip(out * gain.astype(np.float32), 0.0, 1.0), dtype=np.float32)


def _luminance(rgb: npt.NDArray[Any]) -> float:
    return float(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])


def _colour(rng: np.random.Generator, under: npt.NDArray[np.float32], neighbours: list[npt.NDArray[np.float32]],
            min_contrast: float) -> npt.NDArray[np.float32]:
    """A random fill colour whose luminance differs from the mean of `under` by at least `min_contrast`, and
    which differs from the colours of the digits it touches; black or white (the farther) if none is found."""
    base = _luminance(under)
    for _ in range(64):
        colour = rng.uniform(0.0, 1.0, size=3).astype(np.float32)
        if abs(_luminance(colour) - base) < min_contrast:
            continue
        if all(float(np.abs(colour - c).sum()) >= 0.6 for c in neighbours):
            return colour
    return np.full(3, 0.0 if base > 0.5 else 1.0, np.float32)


def _visible(full: list[npt.NDArray[np.bool_]]) -> list[npt.NDArray[np.bool_]]:
    """The visible part of each mask when `full` is in drawing order (later ones on top)."""
    covered = np.zeros_like(full[0]) if full else None
    out: list[npt.NDArray[np.bool_]] = []
    for mask in reversed(full):
        assert covered is not None
        out.append(mask & ~covered)
        covered |= mask
    return out[::-1]


def scene(seed: int, index: int = 0, *, size: tuple[int, int] = (320, 240), objects: tuple[int, int] = (2, 6),
          heights: tuple[float, float] = (28.0, 110.0), max_rotation: float = 20.0, max_hidden: float = 0.3,
          min_contrast: float = 0.3) -> tuple[npt.NDArray[np.uint8], dict[str, npt.NDArray[Any]]]:
    """Scene `index` of `seed`: `(image, target)`, image an (H, W, 3) uint8 RGB array of `size` = (width,
    height), target torchvision's training format -- "boxes" (N, 4) float32 (x1, y1, x2, y2), the tight boxes
    of the visible pixels, "labels" (N,) int64 category ids (digit + 1), "masks" (N, H, W) uint8, the visible
    pixels -- with the digits in drawing order (later ones on top).

    `objects`: the (fewest, most) digits tried per scene (a digit that cannot be placed in 20 tries without
    hiding more than `max_hidden` of another, or being hidden as much itself, is left out); `heights`: the range
    of digit heights in pixels (uniform); `max_rotation`: the largest turn in degrees; `min_contrast`: the least
    luminance difference between a digit and the mean of the photograph under it."""
    seed, index = int(seed), int(index)
    if seed < 0 or index < 0:
        raise ValueError(f"seed, index: expected non-negative ints, got {seed}, {index}")
    width, height = _size(size)
    lo, hi = (int(v) for v in _check_range(objects, "objects", 0, integer=True))
    h_lo, h_hi = _check_range(heights, "heights", 4.0)
    if h_hi > min(width, height) * 0.9:
        raise ValueError(f"heights: digits up to {h_hi} px do not fit an image of {width} x {height}")
    if not 0.0 <= max_hidden < 1.0:
        raise ValueError(f"max_hidden: expected a fraction in [0, 1), got {max_hidden}")
    rng = np.random.default_rng([seed, index])
    background = _background(rng, width, height)
    digits: list[int] = []
    alphas: list[npt.NDArray[np.float32]] = []  # full-image coverage per digit, drawing order
    full: list[npt.NDArray[np.bool_]] = []
    colours: list[npt.NDArray[np.float32]] = []
    for _ in range(int(rng.integers(lo, hi + 1))):
        for _attempt in range(20):
            digit = int(rng.integers(10))
            glyph = _glyph(digit, rng.uniform(h_lo, h_hi), rng.uniform(-max_rotation, max_rotation))
            gh, gw = glyph.shape
            if gh > height or gw > width:
                continue
            y, x = int(rng.integers(0, height - gh + 1)), int(rng.integers(0, width - gw + 1))
            alpha = np.zeros((height, width), np.float32)
            alpha[y:y + gh, x:x + gw] = glyph
            mask = alpha >= 0.5
            depth = int(rng.integers(0, len(full) + 1))
            trial = full[:depth] + [mask] + full[depth:]
            if all(v.sum() >= (1.0 - max_hidden) * m.sum() > 0 for v, m in zip(_visible(trial), trial)):
                break
        else:
            continue
        neighbours = [c for m, c in zip(full, colours) if _boxes_touch(m, mask)]
        colour = _colour(rng, background[mask].mean(axis=0), neighbours, min_contrast)
        digits.insert(depth, digit)
        alphas.insert(depth, alpha)
        full.insert(depth, mask)
        colours.insert(depth, colour)
    image = background
    for alpha, colour in zip(alphas, colours):
        a = alpha[:, :, None]
        image = image * (1.0 - a) + colour * a
    rgb = np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    visible = _visible(full)
    masks = np.stack(visible).astype(np.uint8) if visible else np.zeros((0, height, width), np.uint8)
    boxes = np.zeros((len(visible), 4), np.float32)
    for i, v in enumerate(visible):
        rows, cols = np.flatnonzero(v.any(axis=1)), np.flatnonzero(v.any(axis=0))
        boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return rgb, {"boxes": boxes, "labels": np.array(digits, np.int64) + 1, "masks": masks}


def _boxes_touch(a: npt.NDArray[np.bool_], b: npt.NDArray[np.bool_]) -> bool:
    """Whether the bounding boxes of two masks overlap."""
    def box(m: npt.NDArray[np.bool_]) -> tuple[int, int, int, int]:
        rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])

    ax0, ay0, ax1, ay1 = box(a)
    bx0, by0, bx1, by1 = box(b)
    return ax0 <= bx1 and bx0 <= ax1 and ay0 <= by1 and by0 <= ay1


def make_scenes(out_dir: PathLike, count: int, seed: int = 0, **options: Any) -> Path:
    """Writes `count` scenes (see `scene`; `options` are its keywords) as `out_dir/images/000001.png`, ... and
    their COCO annotations as `out_dir/annotations.json`, which it returns. The JSON has "images" (ids 1 ...
    count, file names relative to `out_dir/images`), "categories" (ids 1 ... 10 named "0" ... "9") and
    "annotations" with "bbox" [x, y, width, height], "area" (visible pixels), "iscrowd" 0 and "segmentation" as
    compressed RLE (pycocotools' `mask.encode`, counts as text); "info" records the seed and options. Existing
    files of the same names are replaced. Same `seed`, `count` and options, same bytes."""
    if not isinstance(out_dir, (str, bytes, os.PathLike)):
        raise TypeError(f"out_dir: expected a folder path, got {type(out_dir).__name__}")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count: expected a non-negative int, got {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    pil = require("PIL.Image", "synthetic scenes")
    mask_api = require("pycocotools.mask", "synthetic scenes")
    root = Path(os.fsdecode(out_dir))
    (root / "images").mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i in range(int(count)):
        rgb, target = scene(int(seed), i, **options)
        name = f"{i + 1:06d}.png"
        pil.fromarray(rgb, "RGB").save(root / "images" / name, format="PNG", compress_level=6)
        images.append({"id": i + 1, "file_name": name, "width": rgb.shape[1], "height": rgb.shape[0]})
        for box, label, mask in zip(target["boxes"], target["labels"], target["masks"]):
            rle = mask_api.encode(np.asfortranarray(mask))
            x0, y0, x1, y1 = (float(v) for v in box)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(label),
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float(mask.sum()), "iscrowd": 0,
                                "segmentation": {"size": [int(v) for v in rle["size"]],
                                                 "counts": rle["counts"].decode("ascii")}})
    info = {"description": "swiftrcnn synthetic digits", "seed": int(seed), "count": int(count),
            "options": {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(options.items())}}
    data = {"info": info, "images": images, "categories": [dict(c) for c in CATEGORIES],
            "annotations": annotations}
    path = root / "annotations.json"
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    return path
