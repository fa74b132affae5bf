"""Faster R-CNN and Mask R-CNN with a ResNet-50-FPN backbone: torchvision's builders in eval mode.

A model is built from a torchvision state dict and the eval-mode arguments of `fasterrcnn_resnet50_fpn` /
`maskrcnn_resnet50_fpn` (same names and defaults). Images are (3, H, W) float arrays in [0, 1], any sizes; every
computation is float32, as torchvision's on float32 images.
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _C
from .._typing import StateDictSource
from .. import weights as _weights
from ..ops._array import as_int, as_real

__all__ = ["FasterRCNN", "MaskRCNN", "fasterrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn"]

# torchvision's GeneralizedRCNN defaults: ImageNet statistics.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# srcnn_dtype codes of the arrays a model call returns.
_DTYPES: dict[int, np.dtype] = {_C.FLOAT32: np.dtype(np.float32), _C.INT64: np.dtype(np.int64)}
_LEVELS = ("0", "1", "2", "3", "pool")


def _read(result: object) -> dict[str, npt.NDArray[Any]]:
    """The named arrays of a model call (an srcnn_arrays capsule) as {name: np.ndarray}."""
    out = {}
    for index, (name, code, shape) in enumerate(_C.arrays_info(result)):
        array = np.empty(shape, _DTYPES[code])
        _C.arrays_read(result, index, array)
        out[name] = array
    return out


def _images(images: Iterable[npt.ArrayLike]) -> list[npt.NDArray[np.float32]]:
    """A sequence of (3, H, W) float images (or an (N, 3, H, W) array) as C-contiguous float32 arrays."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    try:
        items = list(images)
    except TypeError:
        raise TypeError(f"images: expected a sequence of (3, H, W) arrays, got {type(images).__name__}") from None
    out = []
    for i, image in enumerate(items):
        a = np.asarray(image)
        if a.dtype.kind != "f":
            raise TypeError(f"images[{i}]: expected input images to be of floating type (in range [0, 1]), "
                            f"but found dtype {a.dtype}")
        if a.ndim != 3:
            raise ValueError(f"images[{i}]: expected a 3d array of shape (C, H, W), got shape {a.shape}")
        out.append(np.ascontiguousarray(a, dtype=np.float32))
    return out


def _triple(values: Iterable[float] | None, name: str, default: tuple[float, float, float]) -> tuple[float, ...]:
    if values is None:
        return default
    try:
        items = list(values)
    except TypeError:
        raise TypeError(f"{name}: expected 3 numbers, got {type(values).__name__}") from None
    if len(items) != 3:
        raise ValueError(f"{name}: expected 3 numbers (one per channel), got {len(items)}")
    return tuple(as_real(v, name) for v in items)


def _side(value: float, name: str) -> float:
    """min_size / max_size: an int, or a float as torchvision's transform takes it (its resize scale is computed in
    floating point either way)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return as_int(value, name)
    return as_real(value, name)


def _state_dict(weights: StateDictSource | None) -> tuple[list[str], list[npt.NDArray[np.float32]]]:
    """(names, float32 arrays) of a checkpoint path or mapping; BatchNorm `num_batches_tracked` counters are
    dropped (torchvision's FrozenBatchNorm2d ignores them too)."""
    if weights is None:
        raise ValueError("weights: swiftrcnn cannot initialise a model randomly; pass a torchvision state dict "
                         "(a checkpoint path or a mapping of names to arrays)")
    state = _weights.load_state_dict(weights)
    names, arrays = [], []
    for name, array in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        if array.dtype.kind != "f":
            raise TypeError(f"weights['{name}']: expected a floating-point array, got dtype {array.dtype}")
        names.append(name)
        arrays.append(np.ascontiguousarray(array, dtype=np.float32))
    return names, arrays


class FasterRCNN:
    """torchvision's `FasterRCNN` (ResNet-50-FPN) in eval mode. Build it with `fasterrcnn_resnet50_fpn`.

    `config` holds the builder's arguments. Calls release the GIL and may run concurrently on one model.
    """

    _KIND = _C.FASTER_RCNN

    def __init__(self, weights: StateDictSource | None, config: Mapping[str, Any]) -> None:
        self.config = dict(config)
        names, arrays = _state_dict(weights)
        self._model = _C.model_create(self._config_tuple(), names, arrays)

    def _config_tuple(self) -> tuple[Any, ...]:
        """The eval-mode config as _C.model_create takes it."""
        c = self.config
        return (self._KIND, c["num_classes"], c["min_size"], c["max_size"], c["image_mean"], c["image_std"],
                c["rpn_pre_nms_top_n_test"], c["rpn_post_nms_top_n_test"], c["rpn_nms_thresh"],
                c["rpn_score_thresh"], c["box_score_thresh"], c["box_nms_thresh"], c["box_detections_per_img"])

    def __call__(self, images: Iterable[npt.ArrayLike]) -> list[dict[str, npt.NDArray[Any]]]:
        """Detects objects in `images`, a list of (3, H, W) float arrays in [0, 1] of any sizes.

        Returns one dict per image, as torchvision's eval-mode forward: "boxes" (N, 4) float32 (x1, y1, x2, y2) in
        the image's pixels, "labels" (N,) int64, "scores" (N,) float32 in decreasing order, and for Mask R-CNN
        "masks" (N, 1, H, W) float32 probabilities."""
        images = _images(images)
        out = _read(_C.model_detect(self._model, images))
        results = []
        for i in range(len(images)):
            result = {k: out[f"{k}.{i}"] for k in ("boxes", "labels", "scores")}
            if f"masks.{i}" in out:
                result["masks"] = out[f"masks.{i}"]
            results.append(result)
        return results

    def transform(self, images: Iterable[npt.ArrayLike]) -> tuple[npt.NDArray[np.float32], list[tuple[int, ...]]]:
        """GeneralizedRCNNTransform: normalise, resize (short side to min_size, long side at most max_size) and
        pad. Returns the batch (N, 3, H, W) float32, zero-padded top-left aligned to multiples of 32, and each
        image's (height, width) after resizing."""
        out = _read(_C.model_transform(self._model, _images(images)))
        return out["images"], [tuple(int(v) for v in row) for row in out["image_sizes"]]

    def features(self, images: Iterable[npt.ArrayLike],
                 ) -> tuple[dict[str, npt.NDArray[np.float32]], list[tuple[int, ...]]]:
        """The backbone on the transformed batch: ({"0", "1", "2", "3", "pool": (N, 256, H_l, W_l) float32}, the
        FPN levels at strides 4, 8, 16, 32 and 64, and each image's (height, width) after resizing)."""
        out = _read(_C.model_features(self._model, _images(images)))
        return {k: out[k] for k in _LEVELS}, [tuple(int(v) for v in row) for row in out["image_sizes"]]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


class MaskRCNN(FasterRCNN):
    """torchvision's `MaskRCNN` (ResNet-50-FPN) in eval mode. Build it with `maskrcnn_resnet50_fpn`."""

    _KIND = _C.MASK_RCNN


def _config(builder: str, num_classes: int | None, min_size: float, max_size: float,
            image_mean: Sequence[float] | None, image_std: Sequence[float] | None, rpn_pre_nms_top_n_test: int,
            rpn_post_nms_top_n_test: int, rpn_nms_thresh: float, rpn_score_thresh: float, box_score_thresh: float,
            box_nms_thresh: float, box_detections_per_img: int, kwargs: Mapping[str, object]) -> dict[str, Any]:
    if kwargs:
        names = ", ".join(repr(k) for k in kwargs)
        raise TypeError(f"{builder}() got unexpected keyword arguments: {names}")
    return dict(
        num_classes=91 if num_classes is None else as_int(num_classes, "num_classes"),
        min_size=_side(min_size, "min_size"),
        max_size=_side(max_size, "max_size"),
        image_mean=_triple(image_mean, "image_mean", _IMAGENET_MEAN),
        image_std=_triple(image_std, "image_std", _IMAGENET_STD),
        rpn_pre_nms_top_n_test=as_int(rpn_pre_nms_top_n_test, "rpn_pre_nms_top_n_test"),
        rpn_post_nms_top_n_test=as_int(rpn_post_nms_top_n_test, "rpn_post_nms_top_n_test"),
        rpn_nms_thresh=as_real(rpn_nms_thresh, "rpn_nms_thresh"),
        rpn_score_thresh=as_real(rpn_score_thresh, "rpn_score_thresh"),
        box_score_thresh=as_real(box_score_thresh, "box_score_thresh"),
        box_nms_thresh=as_real(box_nms_thresh, "box_nms_thresh"),
        box_detections_per_img=as_int(box_detections_per_img, "box_detections_per_img"),
    )


def fasterrcnn_resnet50_fpn(*, weights: StateDictSource | None = None, num_classes: int | None = 91,
                            min_size: float = 800, max_size: float = 1333, image_mean: Sequence[float] | None = None,
                            image_std: Sequence[float] | None = None, rpn_pre_nms_top_n_test: int = 1000,
                            rpn_post_nms_top_n_test: int = 1000, rpn_nms_thresh: float = 0.7,
                            rpn_score_thresh: float = 0.0, box_score_thresh: float = 0.05, box_nms_thresh: float = 0.5,
                            box_detections_per_img: int = 100, **kwargs: object) -> FasterRCNN:
    """torchvision.models.detection.fasterrcnn_resnet50_fpn in eval mode.

    `weights`: a torchvision state dict of the model -- a checkpoint path (.pth/.pt or .safetensors) or a mapping
    of names to arrays (read with `swiftrcnn.weights.load_state_dict`); every key must be used and have
    torchvision's shape. `image_mean` / `image_std` default to the ImageNet statistics. The other arguments are
    torchvision's eval-mode ones with its defaults; unknown keyword arguments raise TypeError.
    """
    return FasterRCNN(weights, _config(
        "fasterrcnn_resnet50_fpn", num_classes, min_size, max_size, image_mean, image_std, rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test, rpn_nms_thresh, rpn_score_thresh, box_score_thresh, box_nms_thresh,
        box_detections_per_img, kwargs))


def maskrcnn_resnet50_fpn(*, weights: StateDictSource | None = None, num_classes: int | None = 91,
                          min_size: float = 800, max_size: float = 1333, image_mean: Sequence[float] | None = None,
                          image_std: Sequence[float] | None = None, rpn_pre_nms_top_n_test: int = 1000,
                          rpn_post_nms_top_n_test: int = 1000, rpn_nms_thresh: float = 0.7,
                          rpn_score_thresh: float = 0.0, box_score_thresh: float = 0.05, box_nms_thresh: float = 0.5,
                          box_detections_per_img: int = 100, **kwargs: object) -> MaskRCNN:
    """torchvision.models.detection.maskrcnn_resnet50_fpn in eval mode; arguments as `fasterrcnn_resnet50_fpn`."""
    return MaskRCNN(weights, _config(
        "maskrcnn_resnet50_fpn", num_classes, min_size, max_size, image_mean, image_std, rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test, rpn_nms_thresh, rpn_score_thresh, box_score_thresh, box_nms_thresh,
        box_detections_per_img, kwargs))
