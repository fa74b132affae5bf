"""Matching predictions to ground truths and sampling training examples: torchvision.models.detection._utils's
Matcher and BalancedPositiveNegativeSampler on NumPy arrays."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from .. import _C
from .._typing import IndexArray, MaskArray, SeedLike
from ._array import as_float, as_index, as_int, as_real


class Matcher:
    """Assigns to each prediction (e.g. a proposal box) at most one ground-truth element.

    Args:
        high_threshold: qualities >= high_threshold are matches.
        low_threshold: predictions whose best quality is in [low_threshold, high_threshold) get BETWEEN_THRESHOLDS
            (-2), below low_threshold BELOW_LOW_THRESHOLD (-1). Must be <= high_threshold.
        allow_low_quality_matches: if True, for each ground truth every prediction with that ground truth's best
            quality (all ties) keeps its best match even below the thresholds.

    Calling it on a match-quality matrix (M ground truths, N predictions), e.g. `box_iou(gt_boxes, proposals)`,
    returns int64 (N,): the index in [0, M) of the ground truth of highest quality for each prediction (the first
    one on ties), or a negative value. Thresholds are compared in the matrix's float type, as torch does.

    Raises ValueError for an empty matrix (no ground-truth boxes / no proposal boxes, as torchvision) and for NaN
    in the matrix (torchvision's result is then meaningless); torchvision's AssertionError for
    low_threshold > high_threshold is a ValueError here.
    """

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high_threshold: float, low_threshold: float, allow_low_quality_matches: bool = False) -> None:
        self.high_threshold = as_real(high_threshold, "high_threshold")
        self.low_threshold = as_real(low_threshold, "low_threshold")
        if not self.low_threshold <= self.high_threshold:
            raise ValueError(f"low_threshold should be <= high_threshold, got {low_threshold} and {high_threshold}")
        self.allow_low_quality_matches = bool(allow_low_quality_matches)

    def __call__(self, match_quality_matrix: npt.ArrayLike) -> IndexArray:
        quality = as_float(match_quality_matrix, "match_quality_matrix")
        n = quality.shape[1] if quality.ndim == 2 else 0
        matches = np.empty(n, np.int64)
        _C.matcher(quality, self.high_threshold, self.low_threshold, self.allow_low_quality_matches, matches)
        return matches


class BalancedPositiveNegativeSampler:
    """Samples, per image, a batch holding at most a fixed fraction of positives.

    Args:
        batch_size_per_image: number of elements to select per image (>= 0).
        positive_fraction: largest fraction of positives in the batch, in [0, 1].
        seed: seed of the sampler's random stream (anything `numpy.random.default_rng` accepts); None draws one
            from the OS. Not in torchvision, whose draws come from torch's global generator.

    Calling it on a list of per-image `matched_idxs` (N_i,) integer arrays (>= 1 positive, 0 negative, < 0 ignored)
    returns `(pos_masks, neg_masks)`: lists of uint8 (N_i,) 0/1 masks. Per image, num_pos = min(#positives,
    int(batch_size_per_image * positive_fraction)) positives and min(#negatives, batch_size_per_image - num_pos)
    negatives are chosen uniformly at random without replacement. Each image of each call uses a fresh 64-bit seed
    from the sampler's stream, so successive calls differ while two samplers with the same seed give the same masks.
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float, seed: SeedLike = None) -> None:
        self.batch_size_per_image = as_int(batch_size_per_image, "batch_size_per_image")
        self.positive_fraction = as_real(positive_fraction, "positive_fraction")
        self._rng = np.random.default_rng(seed)

    def __call__(self, matched_idxs: Iterable[npt.ArrayLike]) -> tuple[list[MaskArray], list[MaskArray]]:
        pos_idx, neg_idx = [], []
        for per_image in matched_idxs:
            idx = as_index(per_image, "matched_idxs")
            pos = np.empty(idx.shape, np.uint8)
            neg = np.empty(idx.shape, np.uint8)
            seed = int(self._rng.integers(0, 2**64, dtype=np.uint64))
            _C.balanced_sampler(idx, self.batch_size_per_image, self.positive_fraction, seed, pos, neg)
            pos_idx.append(pos)
            neg_idx.append(neg)
        return pos_idx, neg_idx
