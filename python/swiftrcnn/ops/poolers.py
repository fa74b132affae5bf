"""MultiScaleRoIAlign: torchvision.ops.MultiScaleRoIAlign on NumPy arrays."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from .. import _C
from .._typing import FloatArray
from ._array import alloc, as_float, as_index, as_int, float_dtype, pair
from ._rois import convert_boxes_to_roi_format


class MultiScaleRoIAlign:
    """RoIAlign over a feature pyramid: each box is pooled from the level its size selects (FPN, Lin et al. 2017,
    eq. 1).

    A box of area w * h goes to level floor(canonical_level + log2(sqrt(w * h) / canonical_scale) + 1e-6), clamped
    to the pyramid's levels; a box of canonical_scale x canonical_scale lands on canonical_level. Level scales are
    inferred as powers of two from the feature-map heights over the largest image height; levels are the maps of
    `featmap_names` in the order of the features dict. Pooling is `roi_align(..., aligned=False)`.

    Args:
        featmap_names: names of the feature maps to pool from.
        output_size: int or (height, width) of the pooled output.
        sampling_ratio: as in `roi_align`.
        canonical_scale, canonical_level: the FPN heuristic's 224 and k0 = 4 (keyword-only).

    Call `m(features, boxes, image_shapes)` with `features` a dict name -> (N, C, H_l, W_l) array (all of one batch
    size and channel count), `boxes` a list of per-image (L, 4) boxes in image coordinates and `image_shapes` the
    (height, width) of each image before padding. Returns (sum L, C, output_size[0], output_size[1]).

    Unlike torchvision, scales are inferred on every call rather than cached from the first one.
    """

    def __init__(self, featmap_names: Iterable[str], output_size: int | Sequence[int], sampling_ratio: int, *,
                 canonical_scale: int = 224, canonical_level: int = 4) -> None:
        self.featmap_names = list(featmap_names)
        self.output_size = pair(output_size, "output_size")
        self.sampling_ratio = as_int(sampling_ratio, "sampling_ratio")
        self.canonical_scale = as_int(canonical_scale, "canonical_scale")
        self.canonical_level = as_int(canonical_level, "canonical_level")

    def __call__(self, features: Mapping[str, npt.ArrayLike], boxes: Sequence[npt.ArrayLike],
                 image_shapes: Iterable[Sequence[int]]) -> FloatArray:
        selected = [v for k, v in features.items() if k in self.featmap_names]
        if not selected:
            raise ValueError(f"features: none of the feature maps {list(features)} is in featmap_names "
                             f"{self.featmap_names}")
        raw = [np.asarray(m) for m in selected]
        dtype = float_dtype(*raw)
        maps = [as_float(m, "features", dtype) for m in raw]
        if not isinstance(boxes, (list, tuple)):
            raise TypeError(f"boxes: expected a list of per-image (L, 4) arrays, got {type(boxes).__name__}")
        rois = convert_boxes_to_roi_format(boxes, dtype)
        image_shapes = list(image_shapes)
        if not image_shapes:
            raise ValueError("image_shapes: images list should not be empty")
        shapes = as_index(image_shapes, "image_shapes")
        ph, pw = self.output_size
        channels = maps[0].shape[1] if maps[0].ndim > 1 else 0
        out = alloc((rois.shape[0], channels, ph, pw), dtype, "output_size")
        _C.multiscale_roi_align(maps, rois, shapes, ph, pw, self.sampling_ratio, self.canonical_scale,
                                self.canonical_level, out)
        return out

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(featmap_names={self.featmap_names}, "
                f"output_size={self.output_size}, sampling_ratio={self.sampling_ratio})")
