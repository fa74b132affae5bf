"""Training a detector on a COCO-format data set: the logic of `swiftrcnn train`, callable from Python.

    >>> from swiftrcnn import training
    >>> from swiftrcnn.datasets import CocoDetection
    >>> model = training.build_model("base.safetensors", num_classes=11)     # or ("random", "maskrcnn_small")
    >>> data = CocoDetection("train/images", "train/annotations.json")
    >>> history = training.fit(model, data, epochs=26, out="detector.safetensors", batch_size=2)
    >>> model, state = training.load_checkpoint("detector.safetensors")         # later: continue the run exactly
    >>> history = training.fit(model, data, epochs=30, out="detector.safetensors", resume=state)

The recipe is torchvision's detection reference script (references/detection/train.py): SGD with momentum 0.9 and
weight decay 1e-4, the learning rate 0.02 for 16 images per iteration scaled linearly (0.02 * batch_size / 16), a
linear warm-up from 0.001 times the rate over the first min(1000, iterations per epoch - 1) iterations, the rate
times 0.1 at epochs 16 and 22, horizontal flips with probability 0.5, images without usable annotations left out,
and batches formed within aspect-ratio groups (`aspect_ratio_groups`, `GroupedBatchSampler`).

Every random choice is seeded: the model's own draws (its `seed` setting and step counter) and the data's -- the
order of epoch `e` and its flips come from NumPy generators seeded with `[seed, e, 0]` and `[seed, e, 1]` -- so a
run replays exactly, and one resumed from a checkpoint continues as if it had not stopped (bit for bit: losses and
weights).

**Checkpoints.** After every epoch, `fit(out=PATH)` writes the weights to PATH (`model.save`: a weight file that
`swiftrcnn detect` / `eval` and `models.load` read) and the rest of the run's state to `PATH.state.safetensors`
(`state_path`): the SGD momentum buffers as its tensors (parameter names), and in its metadata (strings):

| key | value |
| --- | --- |
| `swiftrcnn.train_state` | `1`, the layout's version |
| `swiftrcnn.epoch` | the epochs completed (the next epoch's index: with the seed, the data order's state) |
| `swiftrcnn.steps` | the model's training-step counter (`model.training_state()["steps"]`: seeds its samplers) |
| `swiftrcnn.scheduler` | JSON: `WarmupMultiStepLR.state_dict()` (rate, milestones, gamma, warm-up, iteration, epoch) |
| `swiftrcnn.settings` | JSON: the run's settings (`fit`'s arguments: batch_size, lr, momentum, ..., seed, images) |
| `swiftrcnn.history` | JSON: one record per epoch (mean losses, last rate, seconds) |
| `swiftrcnn.weights_sha256` | the SHA-256 of the weight file written with it (a mismatch is refused on resuming) |

Needs the tools extra (`pip install swiftrcnn[tools]`: tqdm for the progress bars, pycocotools for COCO data and
evaluation), imported when first used.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from . import models as _models
from . import optim
from . import weights as _weights
from ._typing import PathLike
from .datasets.coco import CocoDetection
from .io import require
from .models._saved import build as _build_from_file
from .models._saved import file_digest
from .ops._array import as_int, as_real

__all__ = ["GroupedBatchSampler", "STATE_FORMAT", "aspect_ratio_groups", "build_model", "fit", "hflip",
           "image_aspect_ratios", "load_checkpoint", "read_state", "state_path"]

# The version of the training-state layout (`swiftrcnn.train_state`).
STATE_FORMAT = 1
# The streams of the per-epoch data generators: default_rng([seed, epoch, stream]).
_ORDER, _FLIP = 0, 1
# The settings a checkpoint records and a resumed run must share, in `fit`'s argument order.
_SETTINGS = ("batch_size", "lr", "momentum", "weight_decay", "lr_steps", "lr_gamma", "warmup_iters", "warmup_factor",
             "flip", "aspect_ratio_group_factor", "seed")

Target = dict[str, Any]
Log = Callable[[str], None]
# A training set: a COCO-format data set, or any sequence of (image, target).
Dataset = Union[CocoDetection, Sequence[Any]]


# ---- augmentation and batching ----------------------------------------------------------------------------------

def hflip(image: npt.ArrayLike, target: Mapping[str, Any]) -> tuple[npt.NDArray[Any], Target]:
    """torchvision's detection `RandomHorizontalFlip` when it flips: the image mirrored left to right and its
    target with it. `image` is (C, H, W) (W = width, the last axis); in the target (new arrays, other entries kept),
    "boxes" (N, 4) (x1, y1, x2, y2) in pixel-edge coordinates [0, W] become (W - x2, y1, W - x1, y2), "masks"
    (N, H, W) are mirrored like the image, and "keypoints" (N, K, 3) get x -> W - x where visible (v > 0; left and
    right keypoints are not swapped: which are pairs depends on the keypoint set)."""
    a = np.asarray(image)
    if a.ndim != 3:
        raise ValueError(f"image: expected a (C, H, W) array, got shape {a.shape}")
    if not isinstance(target, Mapping):
        raise TypeError(f"target: expected a dict, got {type(target).__name__}")
    width = a.shape[2]
    out: Target = dict(target)
    if "boxes" in target:
        boxes = np.asarray(target["boxes"])
        if boxes.size and (boxes.ndim != 2 or boxes.shape[1] != 4):
            raise ValueError(f"target['boxes']: expected an (N, 4) array, got shape {boxes.shape}")
        flipped = boxes.reshape(-1, 4).copy()
        flipped[:, 0] = width - boxes.reshape(-1, 4)[:, 2]
        flipped[:, 2] = width - boxes.reshape(-1, 4)[:, 0]
        out["boxes"] = flipped
    if "masks" in target:
        masks = np.asarray(target["masks"])
        if masks.size and masks.shape[-1] != width:
            raise ValueError(f"target['masks']: expected (N, H, {width}) masks, got shape {masks.shape}")
        out["masks"] = np.ascontiguousarray(masks[..., ::-1])
    if "keypoints" in target:
        points = np.array(target["keypoints"], copy=True)
        if points.size:
            visible = points[..., 2] > 0
            points[..., 0] = np.where(visible, width - points[..., 0], points[..., 0])
        out["keypoints"] = points
    return np.ascontiguousarray(a[:, :, ::-1]), out


def aspect_ratio_groups(aspect_ratios: npt.ArrayLike, group_factor: int = 3) -> npt.NDArray[np.int64]:
    """The aspect-ratio group of each image, as torchvision's reference `create_aspect_ratio_groups` forms them:
    the ratios (width / height) are cut at the 2 * group_factor + 1 edges 2 ** linspace(-1, 1, 2 * group_factor + 1)
    (for group_factor 0, the single edge 1), and an image's group is the number of edges at or below its ratio --
    group_factor 3 gives 8 groups, from ratios under 1/2 (group 0) to 2 and over (group 7). (N,) int64."""
    k = as_int(group_factor, "group_factor")
    if k < 0:
        raise ValueError(f"group_factor: expected an int >= 0, got {k}")
    ratios = np.asarray(aspect_ratios, dtype=np.float64)
    if ratios.ndim != 1:
        raise ValueError(f"aspect_ratios: expected a 1-d array, got shape {ratios.shape}")
    if not np.all(ratios > 0) or not np.all(np.isfinite(ratios)):
        raise ValueError("aspect_ratios: expected positive finite width / height ratios")
    edges = np.exp2(np.linspace(-1.0, 1.0, 2 * k + 1)) if k > 0 else np.ones(1)
    return np.searchsorted(edges, ratios, side="right").astype(np.int64)


class GroupedBatchSampler:
    """torchvision's reference `GroupedBatchSampler` over a seeded shuffle: the batches of indices 0 ... N-1 for
    one epoch, every batch within one group.

    `group_ids` (N,) gives each image's group (`aspect_ratio_groups`; all equal for plain batches). Epoch `e`
    walks a permutation of the indices drawn from `numpy.random.default_rng([seed, e, 0])`, adding each index to
    its group's pending batch and emitting that batch when it holds `batch_size` indices; the batches still pending
    at the end are emitted last, smaller (torchvision's sampler instead tops them up with repeated images and keeps
    N // batch_size batches). So every image is used exactly once per epoch, and the number of batches per epoch,
    `len(sampler)`, is the sum over the groups of ceil(group size / batch_size), the same every epoch."""

    def __init__(self, group_ids: npt.ArrayLike, batch_size: int, seed: int = 0) -> None:
        groups = np.asarray(group_ids)
        if groups.ndim != 1 or (groups.size and groups.dtype.kind not in "iu"):
            raise ValueError(f"group_ids: expected a 1-d array of ints, got {groups.dtype} of shape {groups.shape}")
        self.batch_size = as_int(batch_size, "batch_size")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {self.batch_size}")
        self.seed = as_int(seed, "seed")
        if self.seed < 0:
            raise ValueError(f"seed: expected an int >= 0, got {self.seed}")
        self.group_ids = groups.astype(np.int64)

    def __len__(self) -> int:
        _, counts = np.unique(self.group_ids, return_counts=True)
        return int(sum(-(-int(c) // self.batch_size) for c in counts))

    def batches(self, epoch: int) -> list[list[int]]:
        """The batches of epoch `epoch` (from 0), in order: lists of dataset indices."""
        epoch = as_int(epoch, "epoch")
        if epoch < 0:
            raise ValueError(f"epoch: expected an int >= 0, got {epoch}")
        order = np.random.default_rng([self.seed, epoch, _ORDER]).permutation(len(self.group_ids))
        pending: dict[int, list[int]] = {}
        out: list[list[int]] = []
        for index in order.tolist():
            batch = pending.setdefault(int(self.group_ids[index]), [])
            batch.append(index)
            if len(batch) == self.batch_size:
                out.append(batch)
                pending[int(self.group_ids[index])] = []
        out.extend(batch for batch in pending.values() if batch)
        return out


def image_aspect_ratios(dataset: Dataset) -> npt.NDArray[np.float64]:
    """Width / height of every image of `dataset`: for a `CocoDetection`, from the annotation file's "width" and
    "height" (or the picture file's header where they are missing); for another sequence of (image, target), from
    the images' shapes (every item read)."""
    if isinstance(dataset, CocoDetection):
        images = {image["id"]: image for image in dataset.dataset["images"]}
        ratios = []
        for i, image_id in enumerate(dataset.image_ids):
            entry = images[image_id]
            width, height = entry.get("width"), entry.get("height")
            if not (isinstance(width, (int, float)) and isinstance(height, (int, float)) and width > 0 and height > 0):
                pil = require("PIL.Image", "aspect-ratio grouping")
                try:
                    with pil.open(dataset.image_path(i)) as picture:
                        width, height = picture.size
                except (OSError, pil.UnidentifiedImageError) as e:
                    raise ValueError(f"{dataset.image_path(i)}: cannot read the picture's size ({e})") from None
            ratios.append(float(width) / float(height))
        return np.array(ratios, np.float64)
    ratios = []
    for i in range(len(dataset)):
        shape = np.shape(dataset[i][0])
        if len(shape) != 3:
            raise ValueError(f"dataset[{i}]: expected a (3, H, W) image, got shape {shape}")
        ratios.append(shape[2] / shape[1])
    return np.array(ratios, np.float64)


def _annotated(dataset: Dataset) -> list[int]:
    """The indices of a `CocoDetection`'s images that have an annotation to learn from (torchvision's reference
    `_coco_remove_images_without_annotations`: at least one whose box is more than 1 pixel wide and high); every
    index for other data sets."""
    if not isinstance(dataset, CocoDetection):
        return list(range(len(dataset)))
    keep = []
    for i in range(len(dataset)):
        if any(len(a["bbox"]) == 4 and a["bbox"][2] > 1 and a["bbox"][3] > 1 for a in dataset.annotations(i)):
            keep.append(i)
    return keep


# ---- models -----------------------------------------------------------------------------------------------------

def build_model(weights: PathLike, model: str | None = None, num_classes: int | None = None, *,
                seed: int | None = None, trainable_backbone_layers: int | None = None) -> _models.FasterRCNN:
    """The model to train, in eval mode (`fit` switches it to training), from:

    - a weight file `model.save` wrote (no `model`): `swiftrcnn.models.load`, or for another `num_classes` than
      the file's, its model rebuilt for that number with the predictors re-initialised as torchvision's builders
      do when fine-tuning (`swiftrcnn.models._saved.build`; a warning names them);
    - a plain checkpoint with a builder name `model` (`swiftrcnn.tools.BUILDERS`): `tools.load_model` (the
      predictors re-initialised likewise when `num_classes` differs from the checkpoint's);
    - "random" with a builder name: the builder's `weights="random"` (torchvision's initialisation, from `seed`),
      with `trainable_backbone_layers` 5 by default (torchvision's default without pretrained weights).

    `seed` (default: the file's, else 0) seeds the model's initialisation and its training draws;
    `trainable_backbone_layers` (ResNet-50-FPN's; default: the file's, else the builder's 3) freezes the rest."""
    from . import tools

    overrides: dict[str, Any] = {}
    if seed is not None:
        overrides["seed"] = as_int(seed, "seed")
    if trainable_backbone_layers is not None:
        overrides["trainable_backbone_layers"] = as_int(trainable_backbone_layers, "trainable_backbone_layers")
    if num_classes is not None:
        num_classes = as_int(num_classes, "num_classes")
    names = (*tools.BUILDERS,)
    if model is not None and model not in names:
        raise ValueError(f"model: expected one of {', '.join(names)}, got {model!r}")
    if isinstance(weights, str) and weights == "random":
        if model is None:
            raise ValueError("model: weights 'random' needs a builder name (e.g. maskrcnn_small)")
        overrides.setdefault("trainable_backbone_layers", 5)
        if num_classes is not None:
            overrides["num_classes"] = num_classes
        built: _models.FasterRCNN = getattr(_models, model)(weights="random", **overrides)
        return built
    if not isinstance(weights, (str, bytes, os.PathLike)):
        raise TypeError(f"weights: expected a weight file path or 'random', got {type(weights).__name__}")
    if model is not None:
        return tools.load_model(weights, model, num_classes, **overrides)
    return _build_from_file(weights, num_classes, **overrides)


# ---- checkpoints ------------------------------------------------------------------------------------------------

def state_path(out: PathLike) -> Path:
    """Where the training state of the checkpoint `out` goes: `out` + ".state.safetensors"."""
    return Path(os.fsdecode(out) + ".state.safetensors")


def read_state(checkpoint: PathLike) -> dict[str, Any]:
    """The training state written next to the weight file `checkpoint` (`state_path(checkpoint)`): {"epoch",
    "training_state" ({"momentum": {name: array}, "steps"}, as `model.training_state()`), "scheduler",
    "settings", "history", "weights_sha256"}. ValueError naming the file when it is missing, of a newer layout,
    or does not belong to `checkpoint` (its recorded SHA-256 differs from the weight file's)."""
    weights_file = os.fsdecode(checkpoint)
    where = str(state_path(checkpoint))
    if not os.path.exists(where):
        raise ValueError(f"resume: no training state next to {weights_file} (expected {where}, which `swiftrcnn "
                         f"train` writes with each checkpoint)")
    metadata = _weights.read_metadata(where)
    if "swiftrcnn.train_state" not in metadata:
        raise ValueError(f"{where}: not a swiftrcnn training state (no swiftrcnn.train_state metadata)")
    try:
        version = int(metadata["swiftrcnn.train_state"])
    except ValueError:
        raise ValueError(f"{where}: swiftrcnn.train_state should be an integer") from None
    if version > STATE_FORMAT:
        raise ValueError(f"{where}: training-state format {version} is newer than this version reads "
                         f"({STATE_FORMAT}); upgrade swiftrcnn")
    state = {"epoch": _weights.metadata_json(metadata, "swiftrcnn.epoch", where),
             "scheduler": _weights.metadata_json(metadata, "swiftrcnn.scheduler", where),
             "settings": _weights.metadata_json(metadata, "swiftrcnn.settings", where),
             "history": _weights.metadata_json(metadata, "swiftrcnn.history", where),
             "weights_sha256": metadata.get("swiftrcnn.weights_sha256", "")}
    steps = _weights.metadata_json(metadata, "swiftrcnn.steps", where)
    if not isinstance(state["epoch"], int) or not isinstance(steps, int) or not isinstance(state["settings"], dict):
        raise ValueError(f"{where}: corrupt training state (epoch, steps or settings)")
    digest = file_digest(weights_file)
    if digest != state["weights_sha256"]:
        raise ValueError(f"{where}: recorded for other weights than {weights_file}'s (SHA-256 differs): the weight "
                         f"file was replaced or the state is from another run")
    momentum = _weights.load_state_dict(where)
    state["training_state"] = {"momentum": momentum, "steps": steps}
    return state


def load_checkpoint(checkpoint: PathLike) -> tuple[_models.FasterRCNN, dict[str, Any]]:
    """(model, state) to continue the run that wrote `checkpoint` (a weight file `fit(out=...)` wrote): the model
    rebuilt from the file with its saved settings and seed (`models.load`), and `read_state(checkpoint)` to pass to
    `fit(..., resume=state)`, which restores the momentum buffers, the step counter and the schedule."""
    state = read_state(checkpoint)
    return _models.load(checkpoint), state


def _write_checkpoint(model: _models.FasterRCNN, out: PathLike, epoch: int, scheduler: optim.WarmupMultiStepLR,
                      settings: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> None:
    """The weights to `out` and the training state to `state_path(out)` (each replaced atomically; the state
    records the weight file's SHA-256, so a state left from an interrupted write is refused)."""
    target = Path(os.fsdecode(out))
    if target.parent != Path():
        target.parent.mkdir(parents=True, exist_ok=True)
    model.save(target)
    training_state = model.training_state()
    metadata = {
        "swiftrcnn.train_state": str(STATE_FORMAT),
        "swiftrcnn.epoch": str(epoch),
        "swiftrcnn.steps": str(training_state["steps"]),
        "swiftrcnn.scheduler": json.dumps(scheduler.state_dict(), separators=(",", ":")),
        "swiftrcnn.settings": json.dumps(dict(settings), separators=(",", ":")),
        "swiftrcnn.history": json.dumps(list(history), separators=(",", ":")),
        "swiftrcnn.weights_sha256": file_digest(str(target)),
    }
    _weights.save_safetensors(training_state["momentum"], state_path(target), metadata=metadata)


# ---- the loop ---------------------------------------------------------------------------------------------------

def _settings(resume: Mapping[str, Any] | None, given: dict[str, Any]) -> dict[str, Any]:
    """The run's settings: those given, else a resumed run's, else torchvision's reference defaults; a given one
    that differs from the resumed run's is a ValueError naming it."""
    saved = dict(resume["settings"]) if resume is not None else {}
    out: dict[str, Any] = {}
    for name in _SETTINGS:
        value = given.get(name)
        if name in saved and value is not None and value != saved[name]:
            raise ValueError(f"{name}: the resumed run used {saved[name]!r}, not {value!r}; a resumed run continues "
                             f"with its own settings (leave {name} out)")
        out[name] = saved[name] if name in saved else value
    defaults: dict[str, Any] = {"batch_size": 2, "momentum": 0.9, "weight_decay": 1e-4, "lr_steps": [16, 22],
                                "lr_gamma": 0.1, "warmup_factor": 1e-3, "flip": True, "aspect_ratio_group_factor": 3}
    for name, value in defaults.items():
        if out[name] is None:
            out[name] = value
    if out["lr"] is None:
        out["lr"] = 0.02 * out["batch_size"] / 16
    return out


def _check_settings(s: dict[str, Any]) -> None:
    s["batch_size"] = as_int(s["batch_size"], "batch_size")
    if s["batch_size"] < 1:
        raise ValueError(f"batch_size: expected a positive int, got {s['batch_size']}")
    for name in ("lr", "momentum", "weight_decay", "lr_gamma", "warmup_factor"):
        s[name] = as_real(s[name], name)
        if not (s[name] >= 0 and math.isfinite(s[name])):
            raise ValueError(f"{name}: expected a finite number >= 0, got {s[name]}")
    if isinstance(s["lr_steps"], (str, bytes)) or not isinstance(s["lr_steps"], Sequence):
        raise TypeError(f"lr_steps: expected a sequence of epochs, got {type(s['lr_steps']).__name__}")
    s["lr_steps"] = [as_int(v, "lr_steps") for v in s["lr_steps"]]
    if any(v < 0 for v in s["lr_steps"]):
        raise ValueError(f"lr_steps: expected epochs >= 0, got {s['lr_steps']}")
    s["warmup_iters"] = as_int(s["warmup_iters"], "warmup_iters")
    if s["warmup_iters"] < 0:
        raise ValueError(f"warmup_iters: expected an int >= 0, got {s['warmup_iters']}")
    if not isinstance(s["flip"], (bool, np.bool_)):
        raise TypeError(f"flip: expected a bool, got {type(s['flip']).__name__}")
    s["flip"] = bool(s["flip"])
    s["aspect_ratio_group_factor"] = as_int(s["aspect_ratio_group_factor"], "aspect_ratio_group_factor")
    s["seed"] = as_int(s["seed"], "seed")
    if s["seed"] < 0:
        raise ValueError(f"seed: expected an int >= 0, got {s['seed']}")


def _categories(model: _models.FasterRCNN, dataset: Dataset) -> list[str] | None:
    """The label names of a COCO data set whose category ids are exactly 1 ... num_classes - 1, with the
    background first; None otherwise."""
    if not isinstance(dataset, CocoDetection):
        return None
    k = model.config["num_classes"]
    if sorted(dataset.categories) != list(range(1, k)):
        return None
    return ["__background__"] + [dataset.categories[i] for i in range(1, k)]


def _format_losses(losses: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in losses.items())


def _format_stats(stats: Mapping[str, Mapping[str, float]]) -> str:
    return "; ".join(f"{t} AP {s['AP']:.4f} AP50 {s['AP50']:.4f} AP75 {s['AP75']:.4f}" for t, s in stats.items())


def fit(model: _models.FasterRCNN, dataset: Dataset, epochs: int, *, out: PathLike | None = None,
        batch_size: int | None = None, lr: float | None = None, momentum: float | None = None,
        weight_decay: float | None = None, lr_steps: Sequence[int] | None = None, lr_gamma: float | None = None,
        warmup_iters: int | None = None, warmup_factor: float | None = None, flip: bool | None = None,
        aspect_ratio_group_factor: int | None = None, seed: int | None = None,
        resume: Mapping[str, Any] | None = None, val_dataset: CocoDetection | None = None,
        progress: bool | None = None, log: Log | None = print) -> list[dict[str, Any]]:
    """Trains `model` (a Faster or Mask R-CNN) on `dataset` for epochs up to `epochs` (the total, counting those
    of a resumed run), with torchvision's reference recipe (see the module). Returns one record per epoch of this
    call: {"epoch" (from 1), "losses" {name: mean over the epoch, "loss": their sum}, "lr" (the rate of the last
    iteration), "iterations", "seconds", and "val" (`tools.evaluate`'s {iou_type: {"AP", ...}}) with a
    `val_dataset`}.

    - `dataset`: a `CocoDetection` (its images without a usable annotation left out, labels = category ids, so
      `num_classes` must exceed the largest id), or any sequence of (image (3, H, W) float in [0, 1], target as
      torchvision's: "boxes", "labels", and "masks" for Mask R-CNN).
    - Settings (None: a resumed run's, else the default): `batch_size` (2) images per iteration; `lr` (0.02 *
      batch_size / 16); `momentum` (0.9); `weight_decay` (1e-4); `lr_steps` ([16, 22]: epochs after which the rate
      is multiplied by `lr_gamma` (0.1)); `warmup_iters` (min(1000, iterations per epoch - 1)) and `warmup_factor`
      (0.001): a linear warm-up over the first iterations; `flip` (True): each image flipped with probability 0.5
      (`hflip`); `aspect_ratio_group_factor` (3; -1 for no grouping): `aspect_ratio_groups`; `seed` (the model's
      `seed` setting) seeds the data order and flips.
    - `out`: after every epoch, the weights to `out` and the training state to `state_path(out)` (see the
      module); with `model.categories` set from a COCO data set whose category ids are 1 ... num_classes - 1.
    - `resume`: `load_checkpoint(path)[1]` (with its model): continues that run from its next epoch, exactly.
      Settings given here must equal the run's (ValueError naming one that differs).
    - `val_dataset`: a `CocoDetection` evaluated after every epoch (`tools.evaluate`: box AP, and mask AP for Mask
      R-CNN), printed through `log`.
    - `progress`: a tqdm bar per epoch on stderr with the running mean losses and the rate (None: on terminals);
      `log(line)`: one line per epoch (None: silent).

    A non-finite loss stops the run with ValueError (lower the rate), as torchvision's script stops."""
    if not isinstance(model, _models.FasterRCNN):
        raise TypeError(f"model: expected a swiftrcnn detection model, got {type(model).__name__}")
    if model.kind not in ("faster", "mask"):
        raise ValueError(f"model: training covers Faster and Mask R-CNN models, not {type(model).__name__}")
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise TypeError(f"dataset: expected a sequence of (image, target), got {type(dataset).__name__}")
    epochs = as_int(epochs, "epochs")
    if epochs < 1:
        raise ValueError(f"epochs: expected a positive int, got {epochs}")
    if val_dataset is not None and not isinstance(val_dataset, CocoDetection):
        raise TypeError(f"val_dataset: expected a swiftrcnn.datasets.CocoDetection, got {type(val_dataset).__name__}")
    if resume is not None and not (isinstance(resume, Mapping) and {"epoch", "settings", "scheduler",
                                                                    "training_state"} <= set(resume)):
        raise TypeError("resume: expected the state of load_checkpoint(path) or read_state(path)")
    num_classes = model.config["num_classes"]
    if isinstance(dataset, CocoDetection):
        if dataset.num_classes > num_classes:
            raise ValueError(f"num_classes: the model has {num_classes} classes (background included), but the data "
                             f"set's category ids reach {dataset.num_classes - 1}")
        if model.kind == "mask" and not dataset.masks:
            raise ValueError("dataset: a Mask R-CNN learns from masks: read the data set with CocoDetection(..., "
                             "masks=True)")

    given = dict(batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay,
                 lr_steps=None if lr_steps is None else list(lr_steps), lr_gamma=lr_gamma, warmup_iters=warmup_iters,
                 warmup_factor=warmup_factor, flip=flip, aspect_ratio_group_factor=aspect_ratio_group_factor,
                 seed=seed)
    settings = _settings(resume, given)
    if settings["seed"] is None:
        settings["seed"] = model.config["seed"]
    settings["batch_size"] = as_int(settings["batch_size"], "batch_size")
    if settings["batch_size"] < 1:
        raise ValueError(f"batch_size: expected a positive int, got {settings['batch_size']}")
    usable = _annotated(dataset)
    if not usable:
        raise ValueError("dataset: no image with an annotation to learn from")
    factor = as_int(settings["aspect_ratio_group_factor"], "aspect_ratio_group_factor")
    if factor >= 0:
        groups = aspect_ratio_groups(image_aspect_ratios(dataset)[usable], factor)
    else:
        groups = np.zeros(len(usable), np.int64)
    sampler = GroupedBatchSampler(groups, settings["batch_size"], as_int(settings["seed"], "seed"))
    if settings["warmup_iters"] is None:
        settings["warmup_iters"] = min(1000, len(sampler) - 1)
    _check_settings(settings)
    settings["images"] = len(usable)
    if resume is not None and resume["settings"].get("images", len(usable)) != len(usable):
        raise ValueError(f"dataset: the resumed run trained on {resume['settings']['images']} images, this data set "
                         f"has {len(usable)}")

    categories = _categories(model, dataset)
    if categories is not None:
        model.categories = categories
    model.train()
    optimizer = optim.SGD(model.parameters(), lr=settings["lr"], momentum=settings["momentum"],
                          weight_decay=settings["weight_decay"])
    scheduler = optim.WarmupMultiStepLR(optimizer, milestones=settings["lr_steps"], gamma=settings["lr_gamma"],
                                        warmup_factor=settings["warmup_factor"],
                                        warmup_iters=settings["warmup_iters"])
    start = 0
    history: list[dict[str, Any]] = []
    if resume is not None:
        model.load_training_state(resume["training_state"])
        scheduler.load_state_dict(resume["scheduler"])
        start = as_int(resume["epoch"], "resume['epoch']")
        history = list(resume.get("history", []))
    records: list[dict[str, Any]] = []
    if start >= epochs and log is not None:
        log(f"nothing to do: {start} epochs done already (epochs {epochs})")
    if log is not None and start < epochs:
        left = len(dataset) - len(usable)
        note = f" ({left} without annotations left out)" if left else ""
        log(f"training on {len(usable)} images{note}, {len(sampler)} iterations per epoch, epochs {start + 1} to "
            f"{epochs}, lr {settings['lr']:g}")

    for epoch in range(start, epochs):
        started = time.perf_counter()
        batches = sampler.batches(epoch)
        flips = np.random.default_rng([settings["seed"], epoch, _FLIP]).random(len(usable)) < 0.5
        sums: dict[str, float] = {}
        bar = _bar(len(batches), f"epoch {epoch + 1}/{epochs}", progress)
        try:
            for iteration, batch in enumerate(batches, 1):
                images, targets = [], []
                for position in batch:
                    image, target = dataset[usable[position]]
                    if settings["flip"] and flips[position]:
                        image, target = hflip(image, target)
                    images.append(image)
                    targets.append(target)
                lr_used = optimizer.param_groups[0]["lr"]
                losses = model.train_step(images, targets, optimizer)
                total = sum(losses.values())
                if not math.isfinite(total):
                    raise ValueError(f"loss: {total} at epoch {epoch + 1}, iteration {iteration} "
                                     f"({_format_losses(losses)}); stopping (try a lower lr)")
                scheduler.step()
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                sums["loss"] = sums.get("loss", 0.0) + total
                if bar is not None:
                    shown = {"loss": sums["loss"], **{k[5:]: v for k, v in sums.items() if k.startswith("loss_")}}
                    bar.set_postfix({**{k: f"{v / iteration:.4f}" for k, v in shown.items()}, "lr": f"{lr_used:.3g}"},
                                    refresh=False)
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        scheduler.step_epoch()
        means = {k: v / len(batches) for k, v in sums.items()}
        record: dict[str, Any] = {"epoch": epoch + 1, "losses": means, "lr": lr_used, "iterations": len(batches),
                                  "seconds": round(time.perf_counter() - started, 3)}
        history.append(dict(record))
        if log is not None:
            log(f"epoch {epoch + 1}/{epochs}: loss {means['loss']:.4f} ("
                + _format_losses({k: v for k, v in means.items() if k != "loss"})
                + f"), lr {lr_used:.3g}, {len(batches)} iterations, {record['seconds']:.1f} s")
        if out is not None:
            _write_checkpoint(model, out, epoch + 1, scheduler, settings, history)
        if val_dataset is not None:
            from . import tools

            model.eval()
            try:
                record["val"] = tools.evaluate(model, val_dataset, progress=progress)
            finally:
                model.train()
            if log is not None:
                log(f"epoch {epoch + 1}/{epochs} val: {_format_stats(record['val'])}")
        records.append(record)
    return records


def _bar(total: int, what: str, enabled: bool | None) -> Any:
    """A tqdm bar on stderr (None: shown on terminals), or None."""
    if enabled is False:
        return None
    tqdm = require("tqdm", "progress bars").tqdm
    return tqdm(total=total, unit="it", desc=what, file=sys.stderr, disable=None if enabled is None else False,
                leave=True, dynamic_ncols=True)
