"""Faster R-CNN and Mask R-CNN with a ResNet-50-FPN backbone: torchvision's builders in eval mode.

A model is built from a torchvision state dict and the eval-mode arguments of `fasterrcnn_resnet50_fpn` /
`maskrcnn_resnet50_fpn` (same names and defaults). Images are (3, H, W) float arrays in [0, 1], any sizes; every
computation is float32, as torchvision's on float32 images.
"""
from __future__ import annotations

import json
import numbers
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .. import _C
from .._typing import StateDictSource
from .. import weights as _weights
from . import _init, parts
from ..ops._array import as_int, as_real

__all__ = ["FasterRCNN", "KeypointRCNN", "MaskRCNN", "fasterrcnn_resnet50_c4", "fasterrcnn_resnet50_fpn",
           "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_vgg16", "keypointrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn",
           "maskrcnn_resnet50_fpn_v2"]

# torchvision's GeneralizedRCNN defaults: ImageNet statistics.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# srcnn_dtype codes of the arrays a model call returns.
_DTYPES: dict[int, np.dtype] = {_C.FLOAT32: np.dtype(np.float32), _C.INT64: np.dtype(np.int64)}


def _read(result: object) -> dict[str, npt.NDArray[Any]]:
    """The named arrays of a model call (an srcnn_arrays capsule) as {name: np.ndarray}.

    Each array is moved out of the result and wrapped without a copy (a Mask R-CNN's pasted masks are ~1 MB per
    detection at 640 x 480: a copy would hold them twice).
    """
    out = {}
    for index, (name, code, shape) in enumerate(_C.arrays_info(result)):
        dtype = _DTYPES[code]
        if 0 in shape:
            out[name] = np.empty(shape, dtype)
            continue
        array = np.asarray(_C.arrays_take(result, index))
        if array.dtype != dtype or array.shape != tuple(shape):
            raise RuntimeError(f"{name}: got a {array.dtype} array of shape {array.shape}, expected {dtype} {shape}")
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
        raise ValueError("weights: expected a torchvision state dict (a checkpoint path or a mapping of names to "
                         "arrays), or 'random' to initialise the model as torchvision's constructor does")
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


class Parameter:
    """A trainable tensor of a model in training: its name and shape; `data` and `grad` read the current values
    (copies)."""

    def __init__(self, model: FasterRCNN, name: str, shape: tuple[int, ...]) -> None:
        self.model = model
        self.name = name
        self.shape = shape

    @property
    def data(self) -> npt.NDArray[np.float32]:
        return self.model.state_dict()[self.name]

    @property
    def grad(self) -> npt.NDArray[np.float32]:
        return self.model.gradients()[self.name]

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={self.shape})"


def _targets(targets: Sequence[Mapping[str, npt.ArrayLike]], images: list[npt.NDArray[np.float32]], masks: bool,
             ) -> tuple[list[npt.NDArray[np.float32]], list[npt.NDArray[np.int64]],
                        list[npt.NDArray[np.uint8]] | None]:
    """torchvision's training targets as the arrays the C ABI takes (it checks shapes and values)."""
    if isinstance(targets, Mapping) or not isinstance(targets, Sequence):
        raise TypeError(f"targets: expected a list of dicts (one per image), got {type(targets).__name__}")
    if len(targets) != len(images):
        raise ValueError(f"targets: expected one per image ({len(images)}), got {len(targets)}")
    boxes, labels, mask_list = [], [], []
    for i, t in enumerate(targets):
        if not isinstance(t, Mapping):
            raise TypeError(f"targets[{i}]: expected a dict, got {type(t).__name__}")
        for key in ("boxes", "labels") + (("masks",) if masks else ()):
            if key not in t:
                raise ValueError(f"targets[{i}]: missing '{key}'")
        b = np.asarray(t["boxes"])
        if b.dtype.kind != "f":
            raise TypeError(f"targets[{i}]['boxes']: expected a floating-point array, got dtype {b.dtype}")
        if b.size == 0:
            b = b.reshape(0, 4)
        boxes.append(np.ascontiguousarray(b, dtype=np.float32))
        lab = np.asarray(t["labels"])
        if lab.dtype.kind not in "iu":
            raise TypeError(f"targets[{i}]['labels']: expected an integer array, got dtype {lab.dtype}")
        labels.append(np.ascontiguousarray(lab, dtype=np.int64))
        if masks:
            m = np.asarray(t["masks"])
            if m.dtype.kind not in "biuf":
                raise TypeError(f"targets[{i}]['masks']: expected a numeric array, got dtype {m.dtype}")
            if m.size == 0:
                m = m.reshape(0, *images[i].shape[1:])
            mask_list.append(np.ascontiguousarray(m != 0, dtype=np.uint8))
    return boxes, labels, (mask_list if masks else None)


class FasterRCNN:
    """torchvision's `FasterRCNN(backbone, num_classes, ...)`, in eval mode until `train()`: the general builder.

    The parts that differ between models are chosen independently, with `swiftrcnn.models.parts` (descriptions
    of torchvision's modules): `backbone` (`parts.ResNet50FPN()` or a `parts.Sequential` network), and as
    keywords `rpn_anchor_generator` (`parts.AnchorGenerator`), `rpn_head` (`parts.RPNHead`), `box_roi_pool`
    (`parts.MultiScaleRoIAlign` or `parts.RoIPool`), `box_head` (`parts.TwoMLPHead`, or a `parts.Sequential`
    ending flat) and `box_predictor` (`parts.FastRCNNPredictor`, which then gives the number of classes:
    `num_classes` must be None, as in torchvision); parts not given are torchvision's defaults (those of
    `fasterrcnn_resnet50_fpn`). `weights` is the model's torchvision state dict (see `fasterrcnn_resnet50_fpn`),
    or "random" for a model initialised as torchvision's constructor initialises it (from `seed`; Faster and
    Mask R-CNN, to train from scratch);
    the other keyword arguments are torchvision's, with its defaults. `fasterrcnn_resnet50_fpn` and the other
    builders are compositions of these parts. Calls release the GIL and may run concurrently on one model.

    `categories` (keyword, also an attribute) names the labels: a list of `num_classes` names, index = label id
    (torchvision's `weights.meta["categories"]`), or None; `save` records it with the architecture, and
    `swiftrcnn.models.load` rebuilds the model from such a file alone.
    """

    _KIND = _C.FASTER_RCNN
    _PARTS: tuple[str, ...] = ()  # the branch parts a subclass takes

    def __init__(self, backbone: parts.ResNet50FPN | parts.MobileNetV3LargeFPN | parts.Sequential,
                 num_classes: int | None = None, *,
                 weights: StateDictSource | None = None, min_size: float | Sequence[float] = 800,
                 max_size: float = 1333, image_mean: Sequence[float] | None = None,
                 image_std: Sequence[float] | None = None, rpn_anchor_generator: parts.AnchorGenerator | None = None,
                 rpn_head: parts.RPNHead | None = None,
                 rpn_pre_nms_top_n_test: int = 1000, rpn_post_nms_top_n_test: int = 1000,
                 rpn_nms_thresh: float = 0.7, rpn_score_thresh: float = 0.0,
                 box_roi_pool: parts.MultiScaleRoIAlign | parts.RoIPool | None = None,
                 box_head: parts.TwoMLPHead | parts.Sequential | None = None,
                 box_predictor: parts.FastRCNNPredictor | None = None, box_score_thresh: float = 0.05,
                 box_nms_thresh: float = 0.5, box_detections_per_img: int = 100, **kwargs: Any) -> None:
        mask_parts = {k: kwargs.pop(k) for k in self._PARTS if k in kwargs}
        if mask_parts and not self._PARTS:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments: "
                            + ", ".join(repr(k) for k in mask_parts))
        builder = kwargs.pop("_builder", type(self).__name__)
        legacy = bool(kwargs.pop("_legacy", False))
        categories = kwargs.pop("categories", None)
        if mask_parts.get("mask_predictor") is not None and num_classes is not None:
            raise ValueError("num_classes: should be None when mask_predictor is specified (as torchvision's)")
        if box_predictor is not None:
            if num_classes is not None:
                raise ValueError("num_classes: should be None when box_predictor is specified (as torchvision's)")
            num_classes = box_predictor.num_classes
        elif num_classes is None:
            raise ValueError("num_classes: should not be None when box_predictor is not specified")
        self.config = _config(builder, num_classes, min_size, max_size, image_mean, image_std,
                              rpn_pre_nms_top_n_test, rpn_post_nms_top_n_test, rpn_nms_thresh, rpn_score_thresh,
                              box_score_thresh, box_nms_thresh, box_detections_per_img, kwargs)
        spec = parts.architecture(backbone, self.config["num_classes"], rpn_anchor_generator, rpn_head, box_roi_pool,
                                  box_head, box_predictor, **mask_parts)
        if legacy:
            spec["legacy"] = True
        self.backbone = backbone
        self.architecture = spec
        self.builder = builder
        self.categories = categories
        # The default parts cross as None (the library's own ResNet-50-FPN description).
        self._architecture_json: str | None = None if spec == {"backbone": {"type": "resnet50_fpn"}} else (
            json.dumps(spec, separators=(",", ":")))
        self.reinitialized: list[str] = []
        self._weights = weights
        names, arrays = self._load_state()
        self._model: object | None = _C.model_create(self._config_tuple(), names, arrays)
        del names, arrays
        # The checkpoint is read again when training starts (a mapping is kept by reference, not copied).
        self._trainer: object | None = None
        self.training = False
        self.last_samples: dict[str, npt.NDArray[Any]] = {}
        # (absolute path, overrides, (size, mtime)) when `models.load` built this model from a file: what it
        # pickles as.
        self._source: tuple[str, dict[str, Any], tuple[int, int]] | None = None

    def _config_tuple(self) -> tuple[Any, ...]:
        """The eval-mode config as _C.model_create takes it."""
        c = self.config
        return (self._KIND, c["num_classes"], c["min_size"], c["max_size"], c["image_mean"], c["image_std"],
                c["rpn_pre_nms_top_n_test"], c["rpn_post_nms_top_n_test"], c["rpn_nms_thresh"],
                c["rpn_score_thresh"], c["box_score_thresh"], c["box_nms_thresh"], c["box_detections_per_img"],
                self._architecture_json)

    def __call__(self, images: Iterable[npt.ArrayLike], targets: Sequence[Mapping[str, npt.ArrayLike]] | None = None,
                 ) -> list[dict[str, npt.NDArray[Any]]] | dict[str, float]:
        """Detects objects in `images`, a list of (3, H, W) float arrays in [0, 1] of any sizes.

        Returns one dict per image, as torchvision's eval-mode forward: "boxes" (N, 4) float32 (x1, y1, x2, y2) in
        the image's pixels, "labels" (N,) int64, "scores" (N,) float32 in decreasing order, and for Mask R-CNN
        "masks" (N, 1, H, W) float32 probabilities.

        In training mode (`train()`) `targets` are required, one dict per image as torchvision's ("boxes" (N, 4)
        xyxy floats, "labels" (N,) ints, and for Mask R-CNN "masks" (N, H, W) 0/1 at the image's size), and the
        call returns torchvision's loss dict {"loss_classifier", "loss_box_reg", ("loss_mask",) "loss_objectness",
        "loss_rpn_box_reg"} as floats; `backward()` then adds their sum's gradient to the parameters'."""
        images = _images(images)
        if self.training:
            if targets is None:
                raise ValueError("targets: in training mode, targets should be passed")
            return self._forward_train(images, targets, backward=False)
        if targets is not None:
            raise ValueError("targets: only taken in training mode (call model.train() first)")
        if self._trainer is not None:
            out = _read(_C.trainer_detect(self._trainer, images))
        else:
            out = _read(_C.model_detect(self._eval_model(), images))
        results = []
        for i in range(len(images)):
            result = {k: out[f"{k}.{i}"] for k in ("boxes", "labels", "scores")}
            for key in ("masks", "keypoints", "keypoints_scores"):
                if f"{key}.{i}" in out:
                    result[key] = out[f"{key}.{i}"]
            results.append(result)
        return results

    def transform(self, images: Iterable[npt.ArrayLike]) -> tuple[npt.NDArray[np.float32], list[tuple[int, ...]]]:
        """GeneralizedRCNNTransform: normalise, resize (short side to min_size, long side at most max_size) and
        pad. Returns the batch (N, 3, H, W) float32, zero-padded top-left aligned to multiples of 32, and each
        image's (height, width) after resizing."""
        out = _read(_C.model_transform(self._eval_model(), _images(images)))
        return out["images"], [tuple(int(v) for v in row) for row in out["image_sizes"]]

    def features(self, images: Iterable[npt.ArrayLike],
                 ) -> tuple[dict[str, npt.NDArray[np.float32]], list[tuple[int, ...]]]:
        """The backbone on the transformed batch: ({"0", "1", "2", "3", "pool": (N, 256, H_l, W_l) float32}, the
        FPN levels at strides 4, 8, 16, 32 and 64, and each image's (height, width) after resizing)."""
        out = _read(_C.model_features(self._eval_model(), _images(images)))
        return ({k: v for k, v in out.items() if k != "image_sizes"},
                [tuple(int(v) for v in row) for row in out["image_sizes"]])

    # ---- training ------------------------------------------------------------------------------------------------

    def _eval_model(self) -> object:
        """The eval-mode model of the current parameters (rebuilt from the trainer after training)."""
        if self._model is None:
            state = self.state_dict()
            self._model = _C.model_create(self._config_tuple(), list(state), list(state.values()))
        return self._model

    def _training_tuple(self) -> tuple[Any, ...]:
        c = self.config
        return (c["rpn_pre_nms_top_n_train"], c["rpn_post_nms_top_n_train"], c["rpn_fg_iou_thresh"],
                c["rpn_bg_iou_thresh"], c["rpn_batch_size_per_image"], c["rpn_positive_fraction"],
                c["box_fg_iou_thresh"], c["box_bg_iou_thresh"], c["box_batch_size_per_image"],
                c["box_positive_fraction"], c["bbox_reg_weights"], c["trainable_backbone_layers"],
                c["min_sizes"], c["seed"])

    def _load_state(self) -> tuple[list[str], list[npt.NDArray[np.float32]]]:
        """The checkpoint's (names, arrays); when its predictor was trained for another number of classes than
        `num_classes`, the predictor's tensors are initialised as torchvision initialises them (from `seed`),
        with a warning naming them (`self.reinitialized`). `weights="random"`: the whole model initialised as
        torchvision's constructor initialises it, from `seed`."""
        kind: Literal["faster", "mask"] = "mask" if self._KIND == _C.MASK_RCNN else "faster"
        k = self.config["num_classes"]
        if isinstance(self._weights, str) and self._weights == "random":
            if self._KIND == _C.KEYPOINT_RCNN:
                raise ValueError("weights: 'random' initialisation covers Faster and Mask R-CNN models")
            state = _init.initial_state(kind, k, seed=self.config["seed"], architecture=self._architecture_json)
            return list(state), list(state.values())
        names, arrays = _state_dict(self._weights)
        index = {n: i for i, n in enumerate(names)}
        cls = index.get("roi_heads.box_predictor.cls_score.weight")
        if (cls is not None and self._KIND != _C.KEYPOINT_RCNN and arrays[cls].ndim == 2
                and arrays[cls].shape[0] != k):
            trained_for = arrays[cls].shape[0]
            fresh = _init.initial_state(kind, k, seed=self.config["seed"], predictors_only=True,
                                        architecture=self._architecture_json)
            for name, array in fresh.items():
                if name in index:
                    arrays[index[name]] = array
                else:
                    names.append(name)
                    arrays.append(array)
            if not self.reinitialized:
                warnings.warn(f"weights: the checkpoint's predictor is for {trained_for} classes, num_classes is {k}; "
                              f"re-initialised as torchvision does (seed {self.config['seed']}): "
                              + ", ".join(sorted(fresh)), stacklevel=4)
            self.reinitialized = sorted(fresh)
        return names, arrays

    def _get_trainer(self) -> object:
        if self._trainer is None:
            names, arrays = self._load_state()
            self._trainer = _C.trainer_create(self._config_tuple(), self._training_tuple(), names, arrays)
            self._weights = None
        return self._trainer

    def train(self, mode: bool = True) -> FasterRCNN:
        """torchvision's `train()`: in training mode a call takes targets and returns the losses. The first call
        builds the trainer (parameters with gradients and SGD state) from the checkpoint. Returns the model."""
        if mode:
            self._get_trainer()
            self._model = None
        self.training = bool(mode)
        return self

    def eval(self) -> FasterRCNN:
        """Eval mode: calls detect with the current parameters. Returns the model."""
        return self.train(False)

    def _forward_train(self, images: list[npt.NDArray[np.float32]], targets: Sequence[Mapping[str, npt.ArrayLike]],
                       backward: bool) -> dict[str, float]:
        boxes, labels, masks = _targets(targets, images, self._KIND == _C.MASK_RCNN)
        out = _read(_C.trainer_forward(self._get_trainer(), images, boxes, labels, masks, backward))
        self._model = None
        self.last_samples = {k: v for k, v in out.items() if not k.startswith("loss_")}
        return {k: float(v) for k, v in out.items() if k.startswith("loss_")}

    def backward(self, losses: Mapping[str, float] | None = None) -> None:
        """Adds the gradient of the summed losses of the last training-mode call to every trainable parameter's
        gradient (torchvision's `sum(losses.values()).backward()`); each call can be differentiated once.
        `losses` is accepted for symmetry with torch and not read."""
        del losses
        _C.trainer_backward(self._get_trainer())

    def zero_grad(self) -> None:
        """Sets every parameter's gradient to zero."""
        _C.trainer_zero_grad(self._get_trainer())

    def train_step(self, images: Iterable[npt.ArrayLike], targets: Sequence[Mapping[str, npt.ArrayLike]],
                   optimizer: Any = None) -> dict[str, float]:
        """One training step: zero_grad, the losses and their gradients in one pass, then `optimizer.step()`
        (when given). Returns the losses. The model must be in training mode."""
        if not self.training:
            raise ValueError("train_step: the model is in eval mode (call model.train() first)")
        self.zero_grad()
        losses = self._forward_train(_images(images), targets, backward=True)
        if optimizer is not None:
            optimizer.step()
        return losses

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """(name, parameter) of every parameter torchvision trains with this model's trainable_backbone_layers,
        in sorted name order."""
        grads = _read(_C.trainer_state(self._get_trainer(), 1))
        return [(name, Parameter(self, name, tuple(array.shape))) for name, array in grads.items()]

    def parameters(self) -> list[Parameter]:
        """The trainable parameters (for `swiftrcnn.optim.SGD`)."""
        return [p for _, p in self.named_parameters()]

    def state_dict(self) -> dict[str, npt.NDArray[np.float32]]:
        """Every tensor by torchvision name, the current values (torchvision's `state_dict()`: frozen norms
        included, as float32)."""
        if self._trainer is None:
            names, arrays = self._load_state()
            return dict(zip(names, arrays))
        return _read(_C.trainer_state(self._trainer, 0))

    def gradients(self) -> dict[str, npt.NDArray[np.float32]]:
        """The gradient of every trainable parameter by name (zeros before the first backward pass)."""
        return _read(_C.trainer_state(self._get_trainer(), 1))

    def training_state(self) -> dict[str, Any]:
        """What continuing this run exactly needs besides `state_dict()`: {"momentum": {name: float32 array} (the
        SGD momentum buffers that exist), "steps": int (the forward passes taken, which seed the next one's
        random choices)}. Save it with the weights; `load_training_state` on a model built from those weights
        (with the same training settings and seed) continues where this one stopped."""
        out = _read(_C.trainer_state(self._get_trainer(), 2))
        steps = int(out.pop("steps"))
        return {"momentum": out, "steps": steps}

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        """Restores `training_state()`'s momentum buffers and step counter (see there). ValueError naming the
        first buffer that is not a trainable parameter of this model or has another size."""
        if not isinstance(state, Mapping) or "momentum" not in state or "steps" not in state:
            raise TypeError("state: expected the dict of training_state(), with 'momentum' and 'steps'")
        momentum = state["momentum"]
        if not isinstance(momentum, Mapping):
            raise TypeError(f"state['momentum']: expected a mapping of names to arrays, got {type(momentum).__name__}")
        names = [str(n) for n in momentum]
        arrays = [np.ascontiguousarray(momentum[n], dtype=np.float32) for n in names]
        _C.trainer_restore(self._get_trainer(), names, arrays, as_int(state["steps"], "state['steps']"))

    @property
    def categories(self) -> list[str] | None:
        """The label names (index = label id), or None."""
        return self._categories

    @categories.setter
    def categories(self, names: Sequence[str] | None) -> None:
        if names is None:
            self._categories: list[str] | None = None
            return
        if isinstance(names, str) or not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"categories: expected a list of names (str), got {type(names).__name__}")
        if len(names) != self.config["num_classes"]:
            raise ValueError(f"categories: expected one name per class ({self.config['num_classes']}, the "
                             f"background included), got {len(names)}")
        self._categories = list(names)

    @property
    def kind(self) -> str:
        """"faster", "mask" or "keypoint"."""
        return {_C.FASTER_RCNN: "faster", _C.MASK_RCNN: "mask", _C.KEYPOINT_RCNN: "keypoint"}[self._KIND]

    def metadata(self) -> dict[str, str]:
        """What `save` writes in the file's safetensors header (`__metadata__`, strings): "swiftrcnn.format" (the
        layout's version, "1"), "swiftrcnn.version" (the library's), "swiftrcnn.kind" ("faster" / "mask" /
        "keypoint"), "swiftrcnn.builder" (the builder's name), "swiftrcnn.architecture" (the `architecture` JSON),
        "swiftrcnn.num_classes", "swiftrcnn.transform" (JSON: min_size -- a list when training draws from one --,
        max_size, image_mean, image_std), "swiftrcnn.detection" (JSON: the rpn_* / box_* eval-mode settings),
        "swiftrcnn.training" (JSON: the training settings and seed, so that a run continues with them) and, when
        set, "swiftrcnn.categories" (JSON list of names)."""
        c = self.config
        transform = dict(min_size=list(c["min_sizes"]) if c["min_sizes"] else c["min_size"],
                         max_size=c["max_size"], image_mean=list(c["image_mean"]), image_std=list(c["image_std"]))
        detection = {k: c[k] for k in ("rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_test", "rpn_nms_thresh",
                                       "rpn_score_thresh", "box_score_thresh", "box_nms_thresh",
                                       "box_detections_per_img")}
        out = {"swiftrcnn.format": "1", "swiftrcnn.version": str(_C.VERSION), "swiftrcnn.kind": self.kind,
               "swiftrcnn.builder": self.builder,
               "swiftrcnn.architecture": json.dumps(self.architecture, separators=(",", ":")),
               "swiftrcnn.num_classes": str(c["num_classes"]),
               "swiftrcnn.transform": json.dumps(transform, separators=(",", ":")),
               "swiftrcnn.detection": json.dumps(detection, separators=(",", ":")),
               "swiftrcnn.training": json.dumps({k: list(c[k]) if isinstance(c[k], tuple) else c[k]
                                                 for k in _TRAINING_DEFAULTS}, separators=(",", ":"))}
        if self.categories is not None:
            out["swiftrcnn.categories"] = json.dumps(self.categories, separators=(",", ":"))
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the state dict as .safetensors with torchvision's names and shapes (it loads into torchvision
        with `model.load_state_dict(safetensors.torch.load_file(path))`) and this model's description in the
        header (`metadata()`), from which `swiftrcnn.models.load(path)` rebuilds it."""
        _weights.save_safetensors(self.state_dict(), path, metadata=self.metadata())

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickling (and `copy`) without copying arrays: a model that `swiftrcnn.models.load(path, **overrides)`
        built pickles as (the file's absolute path, `overrides` and the current `categories`, the file's SHA-256),
        and unpickling calls `load` again -- the weights are read from the file wherever the pickle is loaded
        (a process pool, Ray actors), which must see the same file at the same path. Unpickling checks the SHA-256
        and raises ValueError if the file was replaced. The pickle holds only that path, a dict of settings and a
        reference to the loading function (nothing else is run).

        TypeError for a model whose weights are not a file's: built from a checkpoint or `weights="random"`, put
        in training mode since (its weights may have changed), or whose file was rewritten after loading. Save it
        first: `model.save(path)`, then pickle `swiftrcnn.models.load(path)`."""
        from ._saved import reduce_model

        return reduce_model(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


class MaskRCNN(FasterRCNN):
    """torchvision's `MaskRCNN(backbone, num_classes, ...)`: `FasterRCNN`'s arguments and the mask branch's parts,
    `mask_roi_pool` (`parts.MultiScaleRoIAlign`), `mask_head` (`parts.MaskRCNNHeads`) and `mask_predictor`
    (`parts.MaskRCNNPredictor`)."""

    _KIND = _C.MASK_RCNN
    _PARTS = ("mask_roi_pool", "mask_head", "mask_predictor")


class KeypointRCNN(FasterRCNN):
    """torchvision's `KeypointRCNN(backbone, num_classes, ...)`: `FasterRCNN`'s arguments and the keypoint branch's
    parts, `keypoint_roi_pool` (`parts.MultiScaleRoIAlign`), `keypoint_head` (`parts.KeypointRCNNHeads`) and
    `keypoint_predictor` (`parts.KeypointRCNNPredictor`; 17 keypoints by default). A call returns, beside the boxes,
    "keypoints" (N, K, 3) float32 rows (x, y, 1) in the image's pixels and "keypoints_scores" (N, K). Eval mode
    only (training covers Faster and Mask R-CNN so far)."""

    _KIND = _C.KEYPOINT_RCNN
    _PARTS = ("keypoint_roi_pool", "keypoint_head", "keypoint_predictor")


_TRAINING_DEFAULTS: dict[str, Any] = dict(
    trainable_backbone_layers=None, rpn_pre_nms_top_n_train=2000, rpn_post_nms_top_n_train=2000,
    rpn_fg_iou_thresh=0.7, rpn_bg_iou_thresh=0.3, rpn_batch_size_per_image=256, rpn_positive_fraction=0.5,
    box_fg_iou_thresh=0.5, box_bg_iou_thresh=0.5, box_batch_size_per_image=512, box_positive_fraction=0.25,
    bbox_reg_weights=None, seed=0)


def _config(builder: str, num_classes: int | None, min_size: float | Sequence[float], max_size: float,
            image_mean: Sequence[float] | None, image_std: Sequence[float] | None, rpn_pre_nms_top_n_test: int,
            rpn_post_nms_top_n_test: int, rpn_nms_thresh: float, rpn_score_thresh: float, box_score_thresh: float,
            box_nms_thresh: float, box_detections_per_img: int, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    unknown = [k for k in kwargs if k not in _TRAINING_DEFAULTS]
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise TypeError(f"{builder}() got unexpected keyword arguments: {names}")
    t = {**_TRAINING_DEFAULTS, **kwargs}
    # torchvision: a tuple of sizes is drawn from at random per batch in training; eval uses the last.
    if isinstance(min_size, (list, tuple)):
        if not min_size:
            raise ValueError("min_size: expected a size or a non-empty tuple of sizes")
        sizes = tuple(_side(v, "min_size") for v in min_size)
    else:
        sizes = (_side(min_size, "min_size"),)  # type: ignore[arg-type]
    layers = 3 if t["trainable_backbone_layers"] is None else as_int(t["trainable_backbone_layers"],
                                                                        "trainable_backbone_layers")
    if not 0 <= layers <= 5:
        raise ValueError(f"trainable_backbone_layers: expected an int in [0, 5], got {layers}")
    weights = t["bbox_reg_weights"]
    return dict(
        num_classes=91 if num_classes is None else as_int(num_classes, "num_classes"),
        min_size=sizes[-1],
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
        min_sizes=sizes if len(sizes) > 1 else (),
        trainable_backbone_layers=layers,
        rpn_pre_nms_top_n_train=as_int(t["rpn_pre_nms_top_n_train"], "rpn_pre_nms_top_n_train"),
        rpn_post_nms_top_n_train=as_int(t["rpn_post_nms_top_n_train"], "rpn_post_nms_top_n_train"),
        rpn_fg_iou_thresh=as_real(t["rpn_fg_iou_thresh"], "rpn_fg_iou_thresh"),
        rpn_bg_iou_thresh=as_real(t["rpn_bg_iou_thresh"], "rpn_bg_iou_thresh"),
        rpn_batch_size_per_image=as_int(t["rpn_batch_size_per_image"], "rpn_batch_size_per_image"),
        rpn_positive_fraction=as_real(t["rpn_positive_fraction"], "rpn_positive_fraction"),
        box_fg_iou_thresh=as_real(t["box_fg_iou_thresh"], "box_fg_iou_thresh"),
        box_bg_iou_thresh=as_real(t["box_bg_iou_thresh"], "box_bg_iou_thresh"),
        box_batch_size_per_image=as_int(t["box_batch_size_per_image"], "box_batch_size_per_image"),
        box_positive_fraction=as_real(t["box_positive_fraction"], "box_positive_fraction"),
        bbox_reg_weights=(10.0, 10.0, 5.0, 5.0) if weights is None else _quad(weights, "bbox_reg_weights"),
        seed=as_int(t["seed"], "seed"),
    )


def _quad(values: Iterable[float], name: str) -> tuple[float, ...]:
    try:
        items = list(values)
    except TypeError:
        raise TypeError(f"{name}: expected 4 numbers, got {type(values).__name__}") from None
    if len(items) != 4:
        raise ValueError(f"{name}: expected 4 numbers, got {len(items)}")
    return tuple(as_real(v, name) for v in items)


def fasterrcnn_resnet50_fpn(*, weights: StateDictSource | None = None, num_classes: int | None = 91,
                            min_size: float | Sequence[float] = 800, max_size: float = 1333,
                            image_mean: Sequence[float] | None = None, image_std: Sequence[float] | None = None,
                            rpn_pre_nms_top_n_test: int = 1000, rpn_post_nms_top_n_test: int = 1000,
                            rpn_nms_thresh: float = 0.7, rpn_score_thresh: float = 0.0, box_score_thresh: float = 0.05,
                            box_nms_thresh: float = 0.5, box_detections_per_img: int = 100,
                            **kwargs: Any) -> FasterRCNN:
    """torchvision.models.detection.fasterrcnn_resnet50_fpn (eval mode until `train()`).

    `weights`: a torchvision state dict of the model -- a checkpoint path (.pth/.pt or .safetensors) or a mapping
    of names to arrays (read with `swiftrcnn.weights.load_state_dict`); every key must be used and have
    torchvision's shape. `image_mean` / `image_std` default to the ImageNet statistics. The other arguments are
    torchvision's, with its defaults: the eval-mode ones above, and as keywords the training ones
    (`trainable_backbone_layers` (3), `rpn_pre_nms_top_n_train` (2000), `rpn_post_nms_top_n_train` (2000),
    `rpn_fg_iou_thresh` (0.7), `rpn_bg_iou_thresh` (0.3), `rpn_batch_size_per_image` (256),
    `rpn_positive_fraction` (0.5), `box_fg_iou_thresh` (0.5), `box_bg_iou_thresh` (0.5),
    `box_batch_size_per_image` (512), `box_positive_fraction` (0.25), `bbox_reg_weights` ((10, 10, 5, 5))) and
    `seed` (0), which seeds every random choice of training (a seeded run replays exactly). `min_size` may be a
    tuple: training draws one per batch, eval uses the last. Unknown keyword arguments raise TypeError.
    """
    return FasterRCNN(
        parts.ResNet50FPN(), 91 if num_classes is None else num_classes, weights=weights, min_size=min_size,
        max_size=max_size, image_mean=image_mean, image_std=image_std, rpn_pre_nms_top_n_test=rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=rpn_post_nms_top_n_test, rpn_nms_thresh=rpn_nms_thresh,
        rpn_score_thresh=rpn_score_thresh, box_score_thresh=box_score_thresh, box_nms_thresh=box_nms_thresh,
        box_detections_per_img=box_detections_per_img, _builder="fasterrcnn_resnet50_fpn", **kwargs)


def maskrcnn_resnet50_fpn(*, weights: StateDictSource | None = None, num_classes: int | None = 91,
                          min_size: float | Sequence[float] = 800, max_size: float = 1333,
                          image_mean: Sequence[float] | None = None, image_std: Sequence[float] | None = None,
                          rpn_pre_nms_top_n_test: int = 1000, rpn_post_nms_top_n_test: int = 1000,
                          rpn_nms_thresh: float = 0.7, rpn_score_thresh: float = 0.0, box_score_thresh: float = 0.05,
                          box_nms_thresh: float = 0.5, box_detections_per_img: int = 100,
                          **kwargs: Any) -> MaskRCNN:
    """torchvision.models.detection.maskrcnn_resnet50_fpn (eval mode until `train()`); arguments as
    `fasterrcnn_resnet50_fpn`."""
    return MaskRCNN(
        parts.ResNet50FPN(), 91 if num_classes is None else num_classes, weights=weights, min_size=min_size,
        max_size=max_size, image_mean=image_mean, image_std=image_std, rpn_pre_nms_top_n_test=rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=rpn_post_nms_top_n_test, rpn_nms_thresh=rpn_nms_thresh,
        rpn_score_thresh=rpn_score_thresh, box_score_thresh=box_score_thresh, box_nms_thresh=box_nms_thresh,
        box_detections_per_img=box_detections_per_img, _builder="maskrcnn_resnet50_fpn", **kwargs)


def _v2_parts() -> dict[str, Any]:
    return dict(rpn_head=parts.RPNHead(256, 3, conv_depth=2),
                box_head=parts.FastRCNNConvFCHead((256, 7, 7), [256, 256, 256, 256], [1024], "batch_norm2d"))


def fasterrcnn_resnet50_fpn_v2(*, weights: StateDictSource | None = None, num_classes: int | None = 91,
                               **kwargs: Any) -> FasterRCNN:
    """torchvision.models.detection.fasterrcnn_resnet50_fpn_v2 (eval mode until `train()`): the ResNet-50-FPN
    model with batch norms in the FPN, a two-convolution RPN head and a box head of four 3x3 convolutions with batch
    norms and one fully connected layer (FastRCNNConvFCHead); every norm folded at load. Arguments as
    `fasterrcnn_resnet50_fpn`."""
    return FasterRCNN(parts.ResNet50FPN(fpn_norm=True), 91 if num_classes is None else num_classes, weights=weights,
                      **_v2_parts(), _builder="fasterrcnn_resnet50_fpn_v2", **kwargs)


def maskrcnn_resnet50_fpn_v2(*, weights: StateDictSource | None = None, num_classes: int | None = 91,
                             **kwargs: Any) -> MaskRCNN:
    """torchvision.models.detection.maskrcnn_resnet50_fpn_v2: `fasterrcnn_resnet50_fpn_v2`'s parts and a mask head
    whose four convolutions have batch norms. Arguments as `fasterrcnn_resnet50_fpn`."""
    return MaskRCNN(parts.ResNet50FPN(fpn_norm=True), 91 if num_classes is None else num_classes, weights=weights,
                    **_v2_parts(), mask_head=parts.MaskRCNNHeads(256, [256, 256, 256, 256], 1, "batch_norm2d"),
                    _builder="maskrcnn_resnet50_fpn_v2", **kwargs)


def keypointrcnn_resnet50_fpn(*, weights: StateDictSource | None = None, num_classes: int | None = 2,
                              num_keypoints: int = 17, min_size: float | Sequence[float] = (640, 672, 704, 736, 768,
                                                                                            800),
                              **kwargs: Any) -> KeypointRCNN:
    """torchvision.models.detection.keypointrcnn_resnet50_fpn (eval mode): the ResNet-50-FPN Faster R-CNN (2 classes
    by default: background and person) with the keypoint branch: 14 x 14 MultiScaleRoIAlign, eight 3x3
    convolutions of 512 channels, a 4x4 transposed convolution and bilinear upsampling to 56 x 56 heat maps, decoded
    as torchvision's `heatmaps_to_keypoints` (bicubic resize to the box, arg-max). `min_size` defaults to
    torchvision's tuple (eval uses its last, 800). Other arguments as `fasterrcnn_resnet50_fpn`."""
    return KeypointRCNN(
        parts.ResNet50FPN(), 2 if num_classes is None else num_classes, weights=weights, min_size=min_size,
        keypoint_predictor=parts.KeypointRCNNPredictor(512, num_keypoints), _builder="keypointrcnn_resnet50_fpn",
        **kwargs)


def _mobilenet(builder: str, weights: StateDictSource | None, num_classes: int | None,
               defaults: dict[str, Any], kwargs: dict[str, Any]) -> FasterRCNN:
    anchor_sizes = ((32, 64, 128, 256, 512),) * 3
    return FasterRCNN(
        parts.MobileNetV3LargeFPN(), 91 if num_classes is None else num_classes, weights=weights,
        rpn_anchor_generator=parts.AnchorGenerator(anchor_sizes, ((0.5, 1.0, 2.0),) * 3), _builder=builder,
        **{**defaults, **kwargs})


def fasterrcnn_mobilenet_v3_large_fpn(*, weights: StateDictSource | None = None, num_classes: int | None = 91,
                                      **kwargs: Any) -> FasterRCNN:
    """torchvision's `fasterrcnn_mobilenet_v3_large_fpn`: MobileNetV3-Large (depthwise convolutions, hard-swish,
    squeeze-and-excitation; its batch norms folded) with a two-level FPN (`parts.MobileNetV3LargeFPN`), 15 anchors
    per location on each of the levels "0", "1", "pool" (sizes 32 ... 512 × aspect ratios 0.5, 1, 2), the default
    MultiScaleRoIAlign (which finds "0" and "1"), TwoMLPHead and predictor; `rpn_score_thresh` 0.05. State-dict
    keys torchvision's (`backbone.body.<i>` = MobileNetV3's `features.<i>`). Other arguments as
    `fasterrcnn_resnet50_fpn` (torchvision's defaults: min_size 800, max_size 1333)."""
    return _mobilenet("fasterrcnn_mobilenet_v3_large_fpn", weights, num_classes, {"rpn_score_thresh": 0.05}, kwargs)


def fasterrcnn_mobilenet_v3_large_320_fpn(*, weights: StateDictSource | None = None, num_classes: int | None = 91,
                                          **kwargs: Any) -> FasterRCNN:
    """torchvision's `fasterrcnn_mobilenet_v3_large_320_fpn`: `fasterrcnn_mobilenet_v3_large_fpn` for low
    resolution — min_size 320, max_size 640, rpn_pre_nms_top_n_test 150, rpn_post_nms_top_n_test 150,
    rpn_score_thresh 0.05 (each can still be passed)."""
    defaults = {"min_size": 320, "max_size": 640, "rpn_pre_nms_top_n_test": 150, "rpn_post_nms_top_n_test": 150,
                "rpn_score_thresh": 0.05}
    return _mobilenet("fasterrcnn_mobilenet_v3_large_320_fpn", weights, num_classes, defaults, kwargs)


def _legacy_settings(legacy: bool, kwargs: dict[str, Any]) -> dict[str, Any]:
    """faster-rcnn.pytorch's test-time numbers (its `cfg.TEST`) as defaults, when `legacy`; `kwargs` override."""
    if not isinstance(legacy, (bool, np.bool_)):
        raise TypeError(f"legacy: expected a bool, got {type(legacy).__name__}")
    if not legacy:
        return kwargs
    return {"min_size": 600, "max_size": 1000, "rpn_pre_nms_top_n_test": 6000, "rpn_post_nms_top_n_test": 300,
            "rpn_nms_thresh": 0.7, "box_nms_thresh": 0.3, "box_score_thresh": 0.05, "box_detections_per_img": 100,
            **kwargs, "_legacy": True}


_LEGACY_DOC = """

    `legacy=True` switches to faster-rcnn.pytorch's conventions where they differ from torchvision's (for a model
    trained there and converted to these keys; inference only): py-faster-rcnn's anchor table (base 16, scales
    size / 16, centred on pixel 7.5 of each cell), its "+1" pixel boxes (`ops.legacy.bbox_transform_inv`, no clamp;
    `clip_boxes` to [0, W - 1]; `ops.legacy.nms`), a proposal layer that drops proposals under 16 pixels (at the
    original scale) before the pre-NMS top-n, and per-class postprocessing whose `box_detections_per_img` limit is
    an image threshold (ties stay); boxes are divided by the resize scale. Its test-time numbers become the defaults
    (any can still be passed): min_size 600, max_size 1000, rpn_pre_nms_top_n_test 6000, rpn_post_nms_top_n_test
    300, rpn_nms_thresh 0.7, box_nms_thresh 0.3, box_score_thresh 0.05, box_detections_per_img 100. The image
    normalisation stays the model's (faster-rcnn.pytorch's caffe models take BGR pixels in 0 ... 255 minus
    (102.98, 115.95, 122.77): pass image_mean=(0.4815, 0.4547, 0.4038), image_std=(1/255,) * 3 and reverse the
    first convolution's input channels when converting)."""


def fasterrcnn_vgg16(*, weights: StateDictSource | None = None, num_classes: int = 91, pooler: str = "roi_pool",
                     legacy: bool = False, **kwargs: Any) -> FasterRCNN:
    """The classic Faster R-CNN of the paper and of faster-rcnn.pytorch, as torchvision expresses it: VGG16's
    features up to conv5_3 (stride 16, 512 channels) as a single-map backbone, an RPN on 9 anchors per location
    (sizes 128, 256, 512 × aspect ratios 0.5, 1, 2), RoIPool 7 × 7 at 1/16 (or, with `pooler="roi_align"`,
    MultiScaleRoIAlign(["0"], 7, 2)), VGG's classifier as the box head (fc6, fc7: 4096) and the class and box
    layers. In torchvision:

        backbone = torchvision.models.vgg16().features[:-1]; backbone.out_channels = 512
        model = FasterRCNN(backbone, rpn_anchor_generator=AnchorGenerator(((128, 256, 512),), ((0.5, 1.0, 2.0),)),
                           box_head=TwoMLPHead(512 * 7 * 7, 4096), box_predictor=FastRCNNPredictor(4096, num_classes))
        model.roi_heads.box_roi_pool = <a module returning torchvision.ops.roi_pool(features["0"], proposals, 7,
                                        1 / 16)>          # MultiScaleRoIAlign(["0"], 7, 2) for pooler="roi_align"

    State-dict keys: `backbone.{0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28}.{weight, bias}` (VGG16's
    `features` indices: an ImageNet VGG16's `features.N.*` renamed), `rpn.head.conv.0.0.*`, `rpn.head.cls_logits.*`,
    `rpn.head.bbox_pred.*`, `roi_heads.box_head.fc6.*` / `fc7.*` (VGG16's `classifier.0` / `classifier.3`),
    `roi_heads.box_predictor.cls_score.*` / `bbox_pred.*`. The other arguments are `FasterRCNN`'s, with
    torchvision's defaults (min_size 800, max_size 1333, ...)."""
    kwargs = _legacy_settings(legacy, kwargs)
    if pooler not in ("roi_pool", "roi_align"):
        raise ValueError(f"pooler: expected 'roi_pool' or 'roi_align', got {pooler!r}")
    box_roi_pool: parts.RoIPool | parts.MultiScaleRoIAlign = (
        parts.RoIPool(7, 1 / 16) if pooler == "roi_pool" else parts.MultiScaleRoIAlign(["0"], 7, 2))
    return FasterRCNN(
        parts.vgg16_features(), weights=weights,
        rpn_anchor_generator=parts.AnchorGenerator(((128, 256, 512),), ((0.5, 1.0, 2.0),)),
        box_roi_pool=box_roi_pool, box_head=parts.TwoMLPHead(512 * 7 * 7, 4096),
        box_predictor=parts.FastRCNNPredictor(4096, num_classes), _builder="fasterrcnn_vgg16", **kwargs)


def fasterrcnn_resnet50_c4(*, weights: StateDictSource | None = None, num_classes: int = 91,
                           pooler: str = "roi_align", legacy: bool = False, **kwargs: Any) -> FasterRCNN:
    """Faster R-CNN with the ResNet-50 C4 split of the source documents (`../shared/seeds/004`), as torchvision
    expresses it: resnet50's stem and layer1 ... layer3 as a single-map backbone (stride 16, 1024 channels), an RPN
    on 9 anchors per location (sizes 128, 256, 512 × aspect ratios 0.5, 1, 2), regions pooled to 14 × 14
    (MultiScaleRoIAlign(["0"], 14, 2), or RoIPool at 1/16 with `pooler="roi_pool"`), layer4 + global average
    pooling as the box head (2048 features) and FastRCNNPredictor(2048, num_classes). In torchvision:

        r = torchvision.models.resnet50(norm_layer=torchvision.ops.FrozenBatchNorm2d)
        backbone = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3)
        backbone.out_channels = 1024
        model = FasterRCNN(backbone, rpn_anchor_generator=AnchorGenerator(((128, 256, 512),), ((0.5, 1.0, 2.0),)),
                           box_roi_pool=MultiScaleRoIAlign(["0"], 14, 2),
                           box_head=nn.Sequential(r.layer4, nn.AdaptiveAvgPool2d(1), nn.Flatten()),
                           box_predictor=FastRCNNPredictor(2048, num_classes))

    State-dict keys: `backbone.0.weight` (conv1), `backbone.1.*` (bn1), `backbone.{4, 5, 6}.*` (layer1 ...
    layer3: an ImageNet resnet50's `layer1.*` is `backbone.4.*`), `rpn.head.*`, `roi_heads.box_head.0.*` (layer4),
    `roi_heads.box_predictor.*`. The other arguments are `FasterRCNN`'s, with torchvision's defaults."""
    kwargs = _legacy_settings(legacy, kwargs)
    if pooler not in ("roi_pool", "roi_align"):
        raise ValueError(f"pooler: expected 'roi_pool' or 'roi_align', got {pooler!r}")
    box_roi_pool: parts.RoIPool | parts.MultiScaleRoIAlign = (
        parts.RoIPool(14, 1 / 16) if pooler == "roi_pool" else parts.MultiScaleRoIAlign(["0"], 14, 2))
    backbone, head = parts.resnet50_c4()
    return FasterRCNN(
        backbone, weights=weights, rpn_anchor_generator=parts.AnchorGenerator(((128, 256, 512),), ((0.5, 1.0, 2.0),)),
        box_roi_pool=box_roi_pool, box_head=head, box_predictor=parts.FastRCNNPredictor(2048, num_classes),
        _builder="fasterrcnn_resnet50_c4", **kwargs)


for _builder in (fasterrcnn_vgg16, fasterrcnn_resnet50_c4):
    _builder.__doc__ = (_builder.__doc__ or "") + _LEGACY_DOC


def random_state_dict(kind: str = "faster", num_classes: int = 91, seed: int = 0) -> dict[str, npt.NDArray[np.float32]]:
    """A whole state dict initialised as torchvision initialises `fasterrcnn_resnet50_fpn` ("faster") or
    `maskrcnn_resnet50_fpn` ("mask") for training (frozen batch norms at identity), from `seed`: pass it as
    `weights` to train a model from scratch. Values come from swiftrcnn's generator; the distributions are
    torchvision's."""
    if kind not in ("faster", "mask"):
        raise ValueError(f"kind: expected 'faster' or 'mask', got {kind!r}")
    return _init.initial_state("mask" if kind == "mask" else "faster", num_classes, seed=seed)


def maskrcnn_small(*, weights: StateDictSource | None = None, num_classes: int | None = 11,
                   min_size: float | Sequence[float] = (208, 224, 256, 272, 240), max_size: float = 400,
                   **kwargs: Any) -> MaskRCNN:
    """A small Mask R-CNN for small pictures and few classes, trained from scratch (`weights="random"`): the
    architecture of swiftrcnn's built-in model. The backbone is a plain stack of 3 × 3 convolutions with ReLUs
    (32, 64, 96, 96, 128, 128 channels; stride 8 through a stride-2 first convolution and two 2 × 2 max-pools, no
    batch norms, no FPN); the RPN has 8 anchors per location (sizes 24, 40, 64, 100 × aspect ratios 1 and 2, for
    upright objects); the box branch is MultiScaleRoIAlign(["0"], 7, 2), a TwoMLPHead of 256 and the predictor; the
    mask branch MultiScaleRoIAlign(["0"], 14, 2), two 3 × 3 convolutions of 64 and a predictor of 64. About 2.4 M
    parameters (9.6 MB in float32). `min_size` defaults to a tuple (training draws one per batch; eval uses the last,
    240), `max_size` to 400. In torchvision:

        layers = [nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                  nn.MaxPool2d(2), nn.Conv2d(64, 96, 3, padding=1), nn.ReLU(), nn.Conv2d(96, 96, 3, padding=1),
                  nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(96, 128, 3, padding=1), nn.ReLU(),
                  nn.Conv2d(128, 128, 3, padding=1), nn.ReLU()]
        backbone = nn.Sequential(*layers); backbone.out_channels = 128
        model = MaskRCNN(backbone, num_classes, rpn_anchor_generator=AnchorGenerator(((24, 40, 64, 100),),
                         ((1.0, 2.0),)), box_roi_pool=MultiScaleRoIAlign(["0"], 7, 2),
                         box_head=TwoMLPHead(128 * 7 * 7, 256), mask_roi_pool=MultiScaleRoIAlign(["0"], 14, 2),
                         mask_head=MaskRCNNHeads(128, (64, 64), 1),
                         mask_predictor=MaskRCNNPredictor(64, 64, num_classes), min_size=..., max_size=...)

    (then `num_classes` is given by the predictor: pass it here). The other arguments are `MaskRCNN`'s, with
    torchvision's defaults."""
    if num_classes is None:
        raise ValueError("num_classes: should not be None")
    backbone = parts.Sequential(
        parts.Conv2d(3, 32, 3, stride=2, padding=1), parts.ReLU(), parts.Conv2d(32, 64, 3, padding=1), parts.ReLU(),
        parts.MaxPool2d(2), parts.Conv2d(64, 96, 3, padding=1), parts.ReLU(), parts.Conv2d(96, 96, 3, padding=1),
        parts.ReLU(), parts.MaxPool2d(2), parts.Conv2d(96, 128, 3, padding=1), parts.ReLU(),
        parts.Conv2d(128, 128, 3, padding=1), parts.ReLU())
    return MaskRCNN(
        backbone, weights=weights, min_size=min_size, max_size=max_size,
        rpn_anchor_generator=parts.AnchorGenerator(((24, 40, 64, 100),), ((1.0, 2.0),)),
        box_roi_pool=parts.MultiScaleRoIAlign(["0"], 7, 2), box_head=parts.TwoMLPHead(128 * 7 * 7, 256),
        box_predictor=parts.FastRCNNPredictor(256, num_classes),
        mask_roi_pool=parts.MultiScaleRoIAlign(["0"], 14, 2), mask_head=parts.MaskRCNNHeads(128, (64, 64), 1),
        mask_predictor=parts.MaskRCNNPredictor(64, 64, num_classes), _builder="maskrcnn_small", **kwargs)
