"""Anchor boxes: torchvision.models.detection.anchor_utils.AnchorGenerator on NumPy arrays.

Anchors are `(x1, y1, x2, y2)` in pixels of the padded batch. For each feature map (level) of size (h, w) over a
batch of size (H, W), the anchors sit on a grid with integer strides (H // h, W // w): location (y, x) shifts every
cell anchor of the level by (x * stride_w, y * stride_h). The anchors of a level are ordered by location (row y,
then column x), then by cell anchor (aspect ratio, then size); levels are concatenated in order.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _C
from .._typing import AnchorLevels, FloatArray
from ._array import as_index, as_int, as_real

# The library refuses results of more than 2^40 elements (Sources/Core/Errors.swift, `maxElements`); this many
# anchors of 4 values is that limit, checked here too so an absurd request fails before NumPy allocates it.
_MAX_ANCHORS = (1 << 40) // 4
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _levels(values: Iterable[Iterable[float]], name: str) -> tuple[tuple[float, ...], ...]:
    try:
        return tuple(tuple(as_real(v, name) for v in level) for level in values)
    except TypeError:
        raise TypeError(f"{name}: expected a tuple of tuples of numbers (one tuple per feature map)") from None


class AnchorGenerator:
    """Generates anchors for a set of feature maps over a batch of images (torchvision's AnchorGenerator).

    Args:
        sizes: one tuple of anchor sizes (the side of a square anchor of the same area, in pixels) per feature map.
            A flat tuple of numbers means one size per feature map, as in torchvision.
        aspect_ratios: one tuple of aspect ratios (height / width) per feature map; a single flat tuple is used for
            every feature map.

    Each feature map l gets `len(sizes[l]) * len(aspect_ratios[l])` anchors per location. For aspect ratio r and
    size s the cell anchor is round((-w, -h, w, h) / 2) with h = sqrt(r) s, w = s / sqrt(r), rounded half to even
    and computed in float32 like torchvision (whatever dtype the anchors are returned in).

    Differences from torchvision, all on input it accepts but cannot use sensibly: a different number of size
    tuples and aspect-ratio tuples, sizes or ratios that are not finite and > 0 in float32, and feature maps with
    a zero side raise ValueError. A feature map larger than the image is accepted as in torchvision: its stride is
    0 along that side, so all its anchors sit at the origin.
    """

    def __init__(self, sizes: AnchorLevels = ((128, 256, 512),),
                 aspect_ratios: AnchorLevels = ((0.5, 1.0, 2.0),)) -> None:
        try:
            nested_sizes = isinstance(sizes[0], (list, tuple))
            nested_ratios = isinstance(aspect_ratios[0], (list, tuple))
        except (TypeError, IndexError, KeyError):
            raise ValueError("sizes, aspect_ratios: expected non-empty tuples (one entry per feature map)") from None
        size_levels: Sequence[Any] = sizes if nested_sizes else tuple((s,) for s in sizes)
        ratio_levels: Sequence[Any] = aspect_ratios if nested_ratios else (aspect_ratios,) * len(size_levels)
        self.sizes = _levels(size_levels, "sizes")
        self.aspect_ratios = _levels(ratio_levels, "aspect_ratios")
        if len(self.sizes) != len(self.aspect_ratios):
            raise ValueError(f"sizes, aspect_ratios: expected one tuple of each per feature map, got "
                             f"{len(self.sizes)} and {len(self.aspect_ratios)}")
        self._flat_sizes = np.array([s for level in self.sizes for s in level], np.float64)
        self._num_sizes = np.array([len(level) for level in self.sizes], np.int64)
        self._flat_ratios = np.array([r for level in self.aspect_ratios for r in level], np.float64)
        self._num_ratios = np.array([len(level) for level in self.aspect_ratios], np.int64)
        # The cell anchors are the anchors of a 1 x 1 grid over a 1 x 1 image (stride 1, shift 0).
        ones = [(1, 1)] * len(self.sizes)
        cells = self._generate((1, 1), as_index(ones, "feature_hw"), np.dtype(np.float32))
        self.cell_anchors = np.split(cells, np.cumsum(self.num_anchors_per_location())[:-1])

    def num_anchors_per_location(self) -> list[int]:
        """Anchors per location of each feature map: len(sizes[l]) * len(aspect_ratios[l])."""
        return [len(s) * len(a) for s, a in zip(self.sizes, self.aspect_ratios)]

    def _generate(self, batch_hw: tuple[int, int], feature_hw: npt.NDArray[np.int64],
                  dtype: np.dtype[Any]) -> FloatArray:
        height, width = batch_hw
        total = 0
        if feature_hw.ndim == 2 and feature_hw.shape == (len(self.sizes), 2):
            for (h, w), a in zip(feature_hw.tolist(), self.num_anchors_per_location()):
                total += max(h, 0) * max(w, 0) * a
        if total > _MAX_ANCHORS:
            raise MemoryError(f"feature_hw: {total} anchors are too many")
        anchors = np.empty((total, 4), dtype)
        _C.anchor_generator(self._flat_sizes, self._num_sizes, self._flat_ratios, self._num_ratios, height, width,
                            feature_hw, anchors)
        return anchors

    def __call__(self, batch_hw: Sequence[int], feature_hw: Sequence[Sequence[int]] | npt.NDArray[np.integer[Any]],
                 num_images: int = 1, dtype: npt.DTypeLike = np.float32) -> list[FloatArray]:
        """Anchors of every image of a batch, as torchvision's `AnchorGenerator.forward`.

        Args:
            batch_hw: (H, W), the size of the padded batch (`image_list.tensors.shape[-2:]`).
            feature_hw: one (h, w) per feature map (`feature_map.shape[-2:]`), as many as `sizes`.
            num_images: images in the batch (`len(image_list.image_sizes)`); every image gets the same anchors.
            dtype: float32 or float64 (the feature maps' dtype in torchvision).

        Returns:
            `num_images` arrays (sum_l h_l * w_l * A_l, 4) of `dtype`, one per image (separate copies).
        """
        try:
            height, width = batch_hw
        except (TypeError, ValueError):
            raise ValueError(f"batch_hw: expected (height, width), got {batch_hw!r}") from None
        height, width = as_int(height, "batch_hw"), as_int(width, "batch_hw")
        num_images = as_int(num_images, "num_images")
        if num_images < 0:
            raise ValueError(f"num_images: expected a count >= 0, got {num_images}")
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from None
        if dtype not in _DTYPES:
            raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
        fhw = as_index(feature_hw, "feature_hw") if len(feature_hw) else np.zeros((0, 2), np.int64)
        anchors = self._generate((height, width), fhw, dtype)
        return [anchors] + [anchors.copy() for _ in range(num_images - 1)] if num_images else []
