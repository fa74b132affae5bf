"""Self-describing weight files: `load(path)` rebuilds a model from a .safetensors file `model.save` wrote."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from .._typing import PathLike
from .. import weights as _weights
from ..ops._array import as_int
from . import parts
from .detection import FasterRCNN, KeypointRCNN, MaskRCNN

__all__ = ["FORMAT_VERSION", "build", "describe", "load"]

# The version of the metadata layout `FasterRCNN.metadata` writes ("swiftrcnn.format").
FORMAT_VERSION = 1

_CLASSES: dict[str, type[FasterRCNN]] = {"faster": FasterRCNN, "mask": MaskRCNN, "keypoint": KeypointRCNN}
# Arguments `load` does not take as overrides: the file fixes them.
_FIXED = ("backbone", "num_classes", "weights", "rpn_anchor_generator", "rpn_head", "box_roi_pool", "box_head",
          "box_predictor", "mask_roi_pool", "mask_head", "mask_predictor", "keypoint_roi_pool", "keypoint_head",
          "keypoint_predictor")


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
    categories = _weights.metadata_json(metadata, "swiftrcnn.categories", name, None)
    transform = _weights.metadata_json(metadata, "swiftrcnn.transform", name, {})
    detection = _weights.metadata_json(metadata, "swiftrcnn.detection", name, {})
    training = _weights.metadata_json(metadata, "swiftrcnn.training", name, {})
    if not isinstance(training, dict):
        raise ValueError(f"{name}: metadata swiftrcnn.training should be a JSON object")
    if not isinstance(transform, dict) or not isinstance(detection, dict):
        raise ValueError(f"{name}: metadata swiftrcnn.transform and swiftrcnn.detection should be JSON objects")
    return {"format": version, "version": metadata.get("swiftrcnn.version"), "kind": kind,
            "builder": metadata.get("swiftrcnn.builder", _CLASSES[kind].__name__),
            "architecture": _weights.metadata_json(metadata, "swiftrcnn.architecture", name),
            "num_classes": num_classes, "transform": transform, "detection": detection, "training": training,
            "categories": categories}


def load(path: PathLike, **overrides: Any) -> FasterRCNN:
    """The model a weight file written by `model.save(path)` describes, with its weights: the general builder
    (`FasterRCNN`, `MaskRCNN` or `KeypointRCNN`) on the parts of its "swiftrcnn.architecture", its number of
    classes, transform and detection settings and its `categories`.

    `overrides` are builder arguments that replace the saved ones -- the transform (`min_size`, `max_size`,
    `image_mean`, `image_std`), the eval-mode settings (`box_score_thresh`, `box_detections_per_img`, ...), the
    training ones, `categories` -- but not the architecture, `num_classes` or `weights` (TypeError). A checkpoint
    without swiftrcnn metadata (a torchvision .pth, or a state dict saved by other means) is a ValueError: build
    it with its builder, e.g. `models.fasterrcnn_resnet50_fpn(weights=path, num_classes=...)`.

    The model remembers the file: it pickles as (the file's absolute path, `overrides`, the file's SHA-256), and
    unpickling loads the file again (see `FasterRCNN.__reduce__`)."""
    fixed = sorted(set(overrides) & set(_FIXED))
    if fixed:
        raise TypeError(f"load() cannot override {', '.join(fixed)}: the weight file fixes the architecture")
    return build(path, None, **overrides)


def build(path: PathLike, num_classes: int | None = None, **overrides: Any) -> FasterRCNN:
    """`load(path, **overrides)`, or with another `num_classes` than the file's, the file's model for that number
    of classes: every tensor loaded except the predictors' (roi_heads.box_predictor.*, and for Mask R-CNN
    roi_heads.mask_predictor.mask_fcn_logits.*), which are initialised as torchvision initialises them (from the
    `seed` setting, with a warning naming them: the builders' fine-tuning path); the file's categories are then
    dropped. `overrides` as `load`'s (not checked here)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path: expected a weight file path, got {type(path).__name__}")
    name = os.fsdecode(path)
    stamp = _stamp(name)
    info = describe(path)
    if info is None:
        raise ValueError(f"{name}: a plain checkpoint without swiftrcnn metadata; build the model with its builder "
                         f"(e.g. swiftrcnn.models.fasterrcnn_resnet50_fpn(weights=..., num_classes=...)), or "
                         f"--model NAME on the command line")
    spec = info["architecture"]
    if not isinstance(spec, dict):
        raise ValueError(f"{name}: metadata swiftrcnn.architecture should be a JSON object")
    k = info["num_classes"] if num_classes is None else as_int(num_classes, "num_classes")
    if k < 1:
        raise ValueError(f"num_classes: expected a positive int, got {k}")
    built = parts.from_architecture(spec, k, info["kind"])
    arguments: dict[str, Any] = {**info["transform"], **info["detection"], **info["training"]}
    arguments["categories"] = info["categories"] if k == info["num_classes"] else None
    arguments.update(overrides)
    backbone = built.pop("backbone")
    model = _CLASSES[info["kind"]](backbone, None, weights=path, _builder=info["builder"], **built, **arguments)
    if k == info["num_classes"]:
        model._source = (os.path.abspath(name), dict(overrides), stamp)
    return model


def _stamp(name: str) -> tuple[int, int]:
    """(size, modification time in ns) of a file: what tells a model that its file was rewritten."""
    st = os.stat(name)
    return st.st_size, st.st_mtime_ns


def file_digest(name: str) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(name, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def reduce_model(model: FasterRCNN) -> tuple[Any, ...]:
    """`FasterRCNN.__reduce__`: (`reload`, (absolute path, overrides, SHA-256)) for a model `load` built and whose
    weights are still the file's; TypeError otherwise."""
    source = model._source
    how = ("save it first with model.save(path) and pickle swiftrcnn.models.load(path): a model pickles as its "
           "weight file's path, not as arrays")
    if source is None:
        raise TypeError(f"cannot pickle {type(model).__name__}: it was not loaded from a weight file; {how}")
    if model._trainer is not None:
        raise TypeError(f"cannot pickle {type(model).__name__}: it has been in training mode, so its weights may no "
                        f"longer be its file's; {how}")
    path, overrides, stamp = source
    try:
        unchanged = _stamp(path) == stamp
    except OSError as e:
        raise TypeError(f"cannot pickle {type(model).__name__}: its weight file {path} cannot be read "
                        f"({e.strerror or e})") from None
    if not unchanged:
        raise TypeError(f"cannot pickle {type(model).__name__}: its weight file {path} was rewritten since the model "
                        f"was loaded; load it again")
    overrides = {**overrides, "categories": model.categories}
    return (reload, (path, overrides, file_digest(path)))


def reload(path: str, overrides: dict[str, Any], digest: str) -> FasterRCNN:
    """Unpickling a model: `load(path, **overrides)` after checking that the file's SHA-256 is still `digest`
    (ValueError naming the file otherwise: it was replaced since the model was pickled)."""
    if not isinstance(path, str) or not isinstance(overrides, dict) or not isinstance(digest, str):
        raise TypeError("reload: expected (path, overrides, digest) as FasterRCNN.__reduce__ writes them")
    try:
        current = file_digest(path)
    except OSError as e:
        raise ValueError(f"{path}: cannot read the weight file of a pickled model ({e.strerror or e})") from None
    if current != digest:
        raise ValueError(f"{path}: the weight file changed since the model was pickled (SHA-256 {current[:12]}..., "
                         f"pickled {digest[:12]}...)")
    return load(path, **overrides)



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
