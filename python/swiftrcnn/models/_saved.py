"""Self-describing weight files: `load(path)` rebuilds a model from a .safetensors file `model.save` wrote."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._typing import PathLike
from .. import weights as _weights
from . import parts
from .detection import FasterRCNN, KeypointRCNN, MaskRCNN

__all__ = ["FORMAT_VERSION", "load", "describe"]

# The version of the metadata layout `FasterRCNN.metadata` writes ("swiftrcnn.format").
FORMAT_VERSION = 1

_CLASSES: dict[str, type[FasterRCNN]] = {"faster": FasterRCNN, "mask": MaskRCNN, "keypoint": KeypointRCNN}
# Arguments `load` does not take as overrides: the file fixes them.
_FIXED = ("backbone", "num_classes", "weights", "rpn_anchor_generator", "rpn_head", "box_roi_pool", "box_head",
          "box_predictor", "mask_roi_pool", "mask_head", "mask_predictor", "keypoint_roi_pool", "keypoint_head",
          "keypoint_predictor")


def _json(metadata: dict[str, str], key: str, name: str) -> Any:
    try:
        return json.loads(metadata[key])
    except KeyError:
        raise ValueError(f"{name}: the swiftrcnn metadata has no '{key}'") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{name}: metadata '{key}' is not JSON ({e})") from None


def describe(path: PathLike) -> dict[str, Any] | None:
    """The description a swiftrcnn weight file carries (its safetensors metadata decoded): {"format", "version",
    "kind", "builder", "architecture", "num_classes", "transform", "detection", "training", "categories"}, or None for a
    plain checkpoint (a torch.save file, or a .safetensors file without swiftrcnn metadata)."""
    name = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else repr(path)
    metadata = _weights.read_metadata(path)
    if "swiftrcnn.format" not in metadata:
        return None
    try:
        version = int(metadata["swiftrcnn.format"])
    except ValueError:
        raise ValueError(f"{name}: metadata swiftrcnn.format should be an integer, got "
                         f"{metadata['swiftrcnn.format']!r}") from None
    if version > FORMAT_VERSION:
        raise ValueError(f"{name}: written in swiftrcnn weight-file format {version}, newer than this version "
                         f"reads ({FORMAT_VERSION}); upgrade swiftrcnn")
    kind = metadata.get("swiftrcnn.kind")
    if kind not in _CLASSES:
        raise ValueError(f"{name}: metadata swiftrcnn.kind should be 'faster', 'mask' or 'keypoint', got {kind!r}")
    try:
        num_classes = int(metadata.get("swiftrcnn.num_classes", ""))
    except ValueError:
        raise ValueError(f"{name}: metadata swiftrcnn.num_classes should be an integer") from None
    categories = _json(metadata, "swiftrcnn.categories", name) if "swiftrcnn.categories" in metadata else None
    transform = _json(metadata, "swiftrcnn.transform", name) if "swiftrcnn.transform" in metadata else {}
    detection = _json(metadata, "swiftrcnn.detection", name) if "swiftrcnn.detection" in metadata else {}
    training = _json(metadata, "swiftrcnn.training", name) if "swiftrcnn.training" in metadata else {}
    if not isinstance(training, dict):
        raise ValueError(f"{name}: metadata swiftrcnn.training should be a JSON object")
    if not isinstance(transform, dict) or not isinstance(detection, dict):
        raise ValueError(f"{name}: metadata swiftrcnn.transform and swiftrcnn.detection should be JSON objects")
    return {"format": version, "version": metadata.get("swiftrcnn.version"), "kind": kind,
            "builder": metadata.get("swiftrcnn.builder", _CLASSES[kind].__name__),
            "architecture": _json(metadata, "swiftrcnn.architecture", name), "num_classes": num_classes,
            "transform": transform, "detection": detection, "training": training, "categories": categories}


def load(path: PathLike, **overrides: Any) -> FasterRCNN:
    """The model a weight file written by `model.save(path)` describes, with its weights: the general builder
    (`FasterRCNN`, `MaskRCNN` or `KeypointRCNN`) on the parts of its "swiftrcnn.architecture", its number of
    classes, transform and detection settings and its `categories`.

    `overrides` are builder arguments that replace the saved ones -- the transform (`min_size`, `max_size`,
    `image_mean`, `image_std`), the eval-mode settings (`box_score_thresh`, `box_detections_per_img`, ...), the
    training ones, `categories` -- but not the architecture, `num_classes` or `weights` (TypeError). A checkpoint
    without swiftrcnn metadata (a torchvision .pth, or a state dict saved by other means) is a ValueError: build
    it with its builder, e.g. `models.fasterrcnn_resnet50_fpn(weights=path, num_classes=...)`."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path: expected a weight file path, got {type(path).__name__}")
    name = os.fsdecode(path)
    fixed = sorted(set(overrides) & set(_FIXED))
    if fixed:
        raise TypeError(f"load() cannot override {', '.join(fixed)}: the weight file fixes the architecture")
    info = describe(path)
    if info is None:
        raise ValueError(f"{name}: a plain checkpoint without swiftrcnn metadata; build the model with its builder "
                         f"(e.g. swiftrcnn.models.fasterrcnn_resnet50_fpn(weights=..., num_classes=...)), or "
                         f"--model NAME on the command line")
    spec = info["architecture"]
    if not isinstance(spec, dict):
        raise ValueError(f"{name}: metadata swiftrcnn.architecture should be a JSON object")
    built = parts.from_architecture(spec, info["num_classes"], info["kind"])
    arguments: dict[str, Any] = {**info["transform"], **info["detection"], **info["training"]}
    arguments["categories"] = info["categories"]
    arguments.update(overrides)
    backbone = built.pop("backbone")
    return _CLASSES[info["kind"]](backbone, None, weights=path, _builder=info["builder"], **built, **arguments)


#: The built-in model's weight file (`default_model`), installed with the package.
BUILTIN_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "maskrcnn_small_digits.safetensors"


def default_model(**overrides: Any) -> FasterRCNN:
    """swiftrcnn's built-in model: `maskrcnn_small` trained by swiftrcnn itself (scripts/train_default_model.py)
    on generated scenes of the digits 0 ... 9 over photographs (`datasets.synthetic`), categories "0" ... "9"
    (labels 1 ... 10). `overrides` as `load`'s (e.g. box_score_thresh)."""
    if not BUILTIN_WEIGHTS.is_file():
        raise ValueError(f"the built-in model's weights are missing ({BUILTIN_WEIGHTS}); reinstall swiftrcnn or "
                         "regenerate them with scripts/train_default_model.py")
    return load(BUILTIN_WEIGHTS, **overrides)
