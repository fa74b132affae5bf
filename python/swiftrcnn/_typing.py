"""Type aliases of the public API's signatures (private: the public names are in the modules that use them).

Inputs are anything `numpy.asarray` accepts (`numpy.typing.ArrayLike`); results are NumPy arrays.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Union

import numpy as np
import numpy.typing as npt

# A result in the float type of an op's inputs: float32 or float64.
FloatArray = npt.NDArray[np.floating[Any]]
# Indices (kept boxes, argmax, matches, labels).
IndexArray = npt.NDArray[np.int64]
# 0/1 masks (BalancedPositiveNegativeSampler).
MaskArray = npt.NDArray[np.uint8]
# Boxes of the RoI ops: a (K, 5) array of [batch_index, x1, y1, x2, y2] rows, or one (L, 4) array per image.
RoIBoxes = Union[npt.ArrayLike, Sequence[npt.ArrayLike]]
# A file the checkpoint readers and writers take.
PathLike = Union[str, bytes, os.PathLike[str], os.PathLike[bytes]]
# A state dict, or where to read one: a checkpoint path or a mapping of names to arrays.
StateDictSource = Union[PathLike, Mapping[str, npt.ArrayLike]]
# AnchorGenerator's sizes and aspect ratios: one tuple per feature map, or a flat tuple (sizes: one per feature map;
# aspect ratios: the same for every feature map).
AnchorLevels = Union[Sequence[float], Sequence[Sequence[float]]]
# What `BalancedPositiveNegativeSampler(seed=...)` takes: anything `numpy.random.default_rng` accepts.
SeedLike = Union[int, Sequence[int], np.random.SeedSequence, np.random.BitGenerator, np.random.Generator, None]
