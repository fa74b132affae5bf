"""The detector as a tool: the logic of `swiftrcnn detect` and `swiftrcnn eval`, callable from Python.

    >>> from swiftrcnn import models, tools
    >>> model = tools.load_model("detector.safetensors")                 # or ("coco.pth", "fasterrcnn_resnet50_fpn")
    >>> report = tools.detect(model, ["photos/"], out="drawn/", json_path="detections.json")
    >>> from swiftrcnn.datasets import CocoDetection
    >>> stats = tools.evaluate(model, CocoDetection("val2017", "instances_val2017.json"))
    >>> stats["bbox"]["AP"], stats["segm"]["AP50"]

Results use COCO's results format (`to_coco_results`): one entry per detection with "image_id", "category_id"
(the model's label: labels are category ids, as for torchvision's COCO models), "bbox" [x, y, width, height] in
pixels, "score", and "segmentation" (compressed RLE of the mask thresholded at 0.5, counts as text) for Mask
R-CNN or "keypoints" [x1, y1, v1, ...] for Keypoint R-CNN. Needs `pip install swiftrcnn[tools]` (Pillow, tqdm,
pycocotools), imported when first used.
"""
from __future__ import annotations

import contextlib
import io as _stdio
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from . import models as _models
from ._typing import PathLike
from .datasets.coco import COCO_CATEGORIES, CocoDetection, file_ids, load_coco_json, quiet_coco
from .io import IMAGE_EXTENSIONS, read_image, require
from .utils import LabelNames, draw_detections

__all__ = ["BUILDERS", "DetectReport", "detect", "detect_paths", "evaluate", "find_images", "image_ids",
           "load_model", "resolve_labels", "to_coco_results", "STAT_NAMES"]

# The builders `load_model` (and the command line's --model) take by name.
BUILDERS = ("fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn",
            "maskrcnn_resnet50_fpn_v2", "keypointrcnn_resnet50_fpn", "fasterrcnn_vgg16", "fasterrcnn_resnet50_c4",
            "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn", "maskrcnn_small")

# COCOeval's `stats`, by name, per IoU type.
STAT_NAMES = {
    "bbox": ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"),
    "segm": ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"),
    "keypoints": ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"),
}

Result = dict[str, npt.NDArray[Any]]
ErrorHandler = Callable[[Path, Exception], None]
Labels = Union[str, PathLike, Sequence[str], Mapping[int, str], None]


# ---- models and labels ------------------------------------------------------------------------------------------

def load_model(weights: PathLike | None, model: str | None = None, num_classes: int | None = None,
               **overrides: Any) -> _models.FasterRCNN:
    """The detector of a weight file. `weights` None: the built-in model (`swiftrcnn.models.default_model`).
    Without `model`, the file must describe its model (written by `model.save`):
    `swiftrcnn.models.load(weights, **overrides)`. With `model`, a builder name of `BUILDERS`
    (a torchvision checkpoint, .pth or .safetensors): `num_classes` defaults to the checkpoint's (the rows of its
    `roi_heads.box_predictor.cls_score.weight`), and a swiftrcnn file's categories are kept."""
    if weights is None:
        if model is not None or num_classes is not None:
            raise ValueError("weights: a builder name (model) or num_classes needs a weight file")
        return _models.default_model(**overrides)
    if model is None:
        if num_classes is not None:
            raise ValueError("num_classes: only taken with a builder name (model); a swiftrcnn weight file fixes it")
        return _models.load(weights, **overrides)
    if model not in BUILDERS:
        raise ValueError(f"model: expected one of {', '.join(BUILDERS)}, got {model!r}")
    from . import weights as _weights

    state = _weights.load_state_dict(weights)
    if num_classes is None:
        cls = state.get("roi_heads.box_predictor.cls_score.weight")
        if cls is not None and cls.ndim == 2:
            num_classes = int(cls.shape[0])
    info = _models.describe(weights) if isinstance(weights, (str, bytes, os.PathLike)) else None
    if info is not None and info["categories"] is not None and num_classes in (None, info["num_classes"]):
        overrides.setdefault("categories", info["categories"])
    builder = getattr(_models, model)
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    result: _models.FasterRCNN = builder(weights=state, **overrides)
    return result


def resolve_labels(labels: Labels, model: _models.FasterRCNN | None = None) -> LabelNames | None:
    """Label names for drawing: `labels` "coco" (`COCO_CATEGORIES`), a file (a JSON list of names, index = label;
    a JSON object {"id": name}; or text, one name per line from label 0), a sequence or mapping of names; by
    default the model's `categories`, or COCO's names for a 91-class model; else None (ids are shown)."""
    if labels is None:
        if model is not None and model.categories is not None:
            return model.categories
        if model is not None and model.config["num_classes"] == 91:
            return COCO_CATEGORIES
        return None
    if isinstance(labels, str) and labels.lower() == "coco":
        return COCO_CATEGORIES
    if isinstance(labels, (str, bytes, os.PathLike)):
        name = os.fsdecode(labels)
        try:
            with open(name, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ValueError(f"labels: cannot read {name} ({e.strerror or e})") from None
        except UnicodeDecodeError:
            raise ValueError(f"labels: {name} is not UTF-8 text") from None
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            return [line.strip() for line in text.splitlines()]
        if isinstance(parsed, list) and all(isinstance(n, str) for n in parsed):
            return parsed
        if isinstance(parsed, dict):
            try:
                return {int(k): str(v) for k, v in parsed.items()}
            except ValueError:
                raise ValueError(f"labels: {name}: a JSON object's keys should be label ids") from None
        raise ValueError(f"labels: {name}: expected a JSON list of names or an object {{id: name}}")
    if isinstance(labels, Mapping):
        return {int(k): str(v) for k, v in labels.items()}
    if isinstance(labels, Sequence):
        return [str(n) for n in labels]
    raise TypeError(f"labels: expected 'coco', a file, or names, got {type(labels).__name__}")


# ---- inputs -----------------------------------------------------------------------------------------------------

def find_images(inputs: Iterable[PathLike]) -> list[Path]:
    """The picture files of `inputs`: files as given (whatever their extension), folders searched recursively
    for the extensions Pillow reads (`swiftrcnn.io.IMAGE_EXTENSIONS`, any case; hidden files and folders
    skipped). Sorted by path, without duplicates. ValueError for a path that does not exist."""
    if isinstance(inputs, (str, bytes, os.PathLike)):
        inputs = [inputs]
    found: set[Path] = set()
    for item in inputs:
        path = Path(os.fsdecode(item))
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                found.update(Path(root) / f for f in files
                             if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
        elif path.exists():
            found.add(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    return sorted(found)


def image_ids(paths: Sequence[Path], annotations: PathLike | Mapping[str, Any] | None = None,
              roots: Sequence[PathLike] = ()) -> dict[Path, int]:
    """COCO image ids of pictures: without `annotations`, the position in `paths` from 1 (`find_images`' sorted
    order); with a COCO annotation file, the id of the image whose "file_name" is the picture's path relative to
    one of `roots` (the input folders), else its file name. ValueError naming the pictures not in the file."""
    if annotations is None:
        return {p: i + 1 for i, p in enumerate(paths)}
    names = file_ids(load_coco_json(annotations))
    by_base: dict[str, int] = {}
    for file_name, image_id in names.items():
        by_base.setdefault(os.path.basename(file_name), image_id)
    out: dict[Path, int] = {}
    missing = []
    for p in paths:
        candidates = []
        for root in roots:
            with contextlib.suppress(ValueError):
                candidates.append(p.resolve().relative_to(Path(os.fsdecode(root)).resolve()).as_posix())
        found = next((names[c] for c in candidates if c in names), None)
        if found is None:
            found = names.get(p.as_posix(), by_base.get(p.name))
        if found is None:
            missing.append(str(p))
        else:
            out[p] = found
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ValueError(f"annotations: no image with the file name of {', '.join(missing[:3])}{more}")
    return out


# ---- detection --------------------------------------------------------------------------------------------------

def _progress(total: int, enabled: bool | None, what: str) -> Any:
    """A tqdm bar on stderr (None: shown when more than 3 items and stderr is a terminal), or a no-op."""
    if enabled is False or (enabled is None and total <= 3):
        return contextlib.nullcontext(None)
    tqdm = require("tqdm", "progress bars").tqdm
    return tqdm(total=total, unit="image", desc=what, file=sys.stderr, disable=None if enabled is None else False,
                leave=False)


def detect_paths(model: _models.FasterRCNN, paths: Sequence[PathLike], *, batch_size: int = 1,
                 on_error: ErrorHandler | None = None, progress: bool | None = False,
                 ) -> Iterator[tuple[Path, npt.NDArray[np.float32], Result]]:
    """Runs `model` over picture files, `batch_size` per call, yielding `(path, image, result)` in order: the
    image as read ((3, H, W) float32) and the model's result dict for it. A picture that cannot be read is
    passed to `on_error(path, error)` and skipped, or, without `on_error`, raises its ValueError / OSError.
    `progress`: a tqdm bar on stderr (None: when more than 3 pictures and stderr is a terminal)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    files = [Path(os.fsdecode(p)) for p in paths]
    with _progress(len(files), progress, "detect") as bar:
        batch: list[tuple[Path, npt.NDArray[np.float32]]] = []
        for i, path in enumerate(files):
            try:
                batch.append((path, read_image(path)))
            except (ValueError, OSError) as e:
                if on_error is None:
                    raise
                on_error(path, e)
                if bar is not None:
                    bar.update(1)
            if batch and (len(batch) == batch_size or i == len(files) - 1):
                results = model([image for _, image in batch])
                assert isinstance(results, list)
                for (p, image), result in zip(batch, results):
                    yield p, image, result
                if bar is not None:
                    bar.update(len(batch))
                batch = []


def _short(value: Any) -> float:
    """A float32 as the shortest decimal that reads back as the same float32 (JSON without float64 noise)."""
    return float(str(np.float32(value)))


def to_coco_results(result: Mapping[str, Any], image_id: int, score_threshold: float = 0.0,
                    mask_threshold: float = 0.5) -> list[dict[str, Any]]:
    """One image's detections in COCO's results format (see the module), those scoring at least
    `score_threshold`. Masks ((N, 1, H, W) probabilities) become compressed RLEs of `mask > mask_threshold`; box
    corners, sizes and scores are the float32 values, written as the shortest decimals that read back exactly."""
    boxes = np.asarray(result["boxes"], np.float32).reshape(-1, 4)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    scores = np.asarray(result["scores"], np.float32)
    labels = np.asarray(result["labels"])
    keep = np.flatnonzero(scores >= score_threshold)
    masks = result.get("masks")
    keypoints = result.get("keypoints")
    mask_api = require("pycocotools.mask", "COCO results") if masks is not None else None
    out = []
    for i in keep:
        entry: dict[str, Any] = {"image_id": int(image_id), "category_id": int(labels[i]),
                                 "bbox": [_short(v) for v in xywh[i]], "score": _short(scores[i])}
        if masks is not None and mask_api is not None:
            m = np.asarray(masks[i])
            m = m[0] if m.ndim == 3 else m
            rle = mask_api.encode(np.asfortranarray(m > mask_threshold, dtype=np.uint8))
            entry["segmentation"] = {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
        if keypoints is not None:
            entry["keypoints"] = [_short(v) for v in np.asarray(keypoints[i], np.float32).reshape(-1)]
        out.append(entry)
    return out


@dataclass
class DetectReport:
    """What `detect` did: the pictures processed, those skipped with the reason, the files written, and the
    number of detections kept (drawn / written)."""
    processed: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    detections: int = 0


_PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _output_paths(paths: Sequence[Path], out: Path, roots: Sequence[Path]) -> dict[Path, Path]:
    """Where each input's drawing goes in the folder `out`: its path relative to the input folder it was found
    in (or its name), same stem, .jpg for JPEG inputs and .png otherwise; clashes get "-2", "-3", ..."""
    taken: set[Path] = set()
    out_paths = {}
    for p in paths:
        relative = Path(p.name)
        for root in roots:
            with contextlib.suppress(ValueError):
                relative = p.resolve().relative_to(root.resolve())
                break
        suffix = ".jpg" if p.suffix.lower() in (".jpg", ".jpeg") else ".png"
        target = out / relative.with_suffix(suffix)
        n = 2
        while target in taken:
            target = out / relative.with_name(f"{relative.stem}-{n}{suffix}")
            n += 1
        taken.add(target)
        out_paths[p] = target
    return out_paths


def _save_picture(picture: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        picture.save(path, quality=92)
    else:
        picture.save(path)


def detect(model: _models.FasterRCNN, inputs: Iterable[PathLike], *, out: PathLike | None = None,
           json_path: PathLike | None = None, annotations: PathLike | None = None, labels: Labels = None,
           score_threshold: float = 0.5, batch_size: int = 1, progress: bool | None = None,
           on_error: ErrorHandler | None = None,
           on_result: Callable[[Path, Result, LabelNames | None], None] | None = None) -> DetectReport:
    """`swiftrcnn detect`: runs `model` over the pictures of `inputs` (files, or folders searched recursively:
    `find_images`) and keeps the detections scoring at least `score_threshold`.

    - `out`: where the drawings (`swiftrcnn.utils.draw_detections`) go: a picture file (.png, .jpg, ...) when
      there is one input picture, else a folder, with one picture per input: its path relative to the input
      folder (or its name), same stem, .jpg for JPEG inputs and .png for others.
    - `json_path`: the detections of every picture in COCO's results format (see the module), image ids from
      `image_ids` (position in sorted order from 1, or the ids of an `annotations` COCO file by file name).
    - `labels`: names for the captions (see `resolve_labels`).
    - `on_error(path, error)`: called for a picture that cannot be read, which is skipped (by default the error
      is raised); `on_result(path, result, labels)`: called with each picture's kept detections.

    Returns a `DetectReport`."""
    input_list = [inputs] if isinstance(inputs, (str, bytes, os.PathLike)) else list(inputs)
    roots = [Path(os.fsdecode(p)) for p in input_list if Path(os.fsdecode(p)).is_dir()]
    paths = find_images(input_list)
    if not paths:
        raise ValueError("inputs: no pictures found")
    ids = image_ids(paths, annotations, roots) if json_path is not None else {}
    names = resolve_labels(labels, model)
    out_file: Path | None = None
    out_paths: dict[Path, Path] = {}
    if out is not None:
        out_path = Path(os.fsdecode(out))
        if out_path.suffix.lower() in _PICTURE_SUFFIXES and not out_path.is_dir():
            if len(paths) != 1:
                raise ValueError(f"out: {out_path} is a picture file name, but there are {len(paths)} input pictures "
                                 "(give a folder)")
            out_file = out_path
        else:
            out_paths = _output_paths(paths, out_path, roots)
    report = DetectReport()

    def skipped(path: Path, error: Exception) -> None:
        report.skipped.append((path, str(error)))
        if on_error is None:
            raise error
        on_error(path, error)

    results: list[dict[str, Any]] = []
    for path, image, result in detect_paths(model, paths, batch_size=batch_size, on_error=skipped,
                                            progress=progress):
        keep = np.flatnonzero(result["scores"] >= score_threshold)
        kept = {k: v[keep] for k, v in result.items()}
        report.processed.append(path)
        report.detections += len(keep)
        if on_result is not None:
            on_result(path, kept, names)
        if out_file is not None or out_paths:
            target = out_file if out_file is not None else out_paths[path]
            _save_picture(draw_detections(image, kept, names, score_threshold), target)
            report.written.append(target)
        if json_path is not None:
            results += to_coco_results(kept, ids[path])
    if json_path is not None:
        target = Path(os.fsdecode(json_path))
        if target.parent != Path():
            target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(results, separators=(",", ":")) + "\n", encoding="utf-8")
        report.written.append(target)
    return report


# ---- evaluation -------------------------------------------------------------------------------------------------

def _iou_types(model: _models.FasterRCNN) -> tuple[str, ...]:
    return {"mask": ("bbox", "segm"), "keypoint": ("bbox", "keypoints")}.get(model.kind, ("bbox",))


def _for_iou_type(results: list[dict[str, Any]], iou_type: str) -> list[dict[str, Any]]:
    """The entries COCOeval reads for one IoU type (as torchvision's reference prepares them: segm results carry
    no box, so their area is the mask's)."""
    key = {"bbox": "bbox", "segm": "segmentation", "keypoints": "keypoints"}[iou_type]
    return [{"image_id": r["image_id"], "category_id": r["category_id"], key: r[key], "score": r["score"]}
            for r in results if key in r]


def coco_stats(coco_gt: Any, results: list[dict[str, Any]], iou_type: str, image_ids: Sequence[int] | None = None,
               verbose: bool = False) -> dict[str, float]:
    """pycocotools' COCOeval of `results` (COCO results entries) against the ground truth `coco_gt` (a
    pycocotools COCO) for `iou_type` ("bbox", "segm" or "keypoints"), on `image_ids` (default: every image):
    {"AP": ..., "AP50": ..., ...} (`STAT_NAMES`; -1 where the data set has no object of a size). `verbose`
    prints COCOeval's table."""
    cocoeval = require("pycocotools.cocoeval", "COCO evaluation")
    entries = _for_iou_type(results, iou_type)
    quiet = _stdio.StringIO()
    with contextlib.redirect_stdout(quiet):
        if entries:
            coco_dt = coco_gt.loadRes([dict(e) for e in entries])
        else:  # loadRes cannot take an empty list; no detections score 0 wherever there are objects
            coco_dt = quiet_coco({"images": coco_gt.dataset["images"], "categories": coco_gt.dataset["categories"],
                                  "annotations": []})
        evaluator = cocoeval.COCOeval(coco_gt, coco_dt, iou_type)
        if image_ids is not None:
            evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
    table = _stdio.StringIO()
    with contextlib.redirect_stdout(table):
        evaluator.summarize()
    if verbose:
        print(f"IoU metric: {iou_type}")
        print(table.getvalue(), end="")
    return {name: float(v) for name, v in zip(STAT_NAMES[iou_type], evaluator.stats)}


def evaluate(model: _models.FasterRCNN, dataset: CocoDetection, *, batch_size: int = 1,
             progress: bool | None = False, results_path: PathLike | None = None,
             verbose: bool = False) -> dict[str, dict[str, float]]:
    """COCO evaluation of `model` on `dataset` (a `CocoDetection`), as torchvision's reference `evaluate`: every
    image through the model (eval mode, its own score threshold), the detections in COCO's results format with
    label = category id, then pycocotools' COCOeval for "bbox", and "segm" for Mask R-CNN (masks > 0.5) or
    "keypoints" for Keypoint R-CNN (when the data set has keypoint annotations). Returns {iou_type: {"AP",
    "AP50", "AP75", "APs", ...}} (`STAT_NAMES`, AP as a fraction, -1 where undefined). `results_path` also
    writes the detections as JSON; `verbose` prints COCOeval's tables; `progress` a tqdm bar (None: on a
    terminal, for more than 3 images). A picture that cannot be read raises ValueError."""
    if not isinstance(dataset, CocoDetection):
        raise TypeError(f"dataset: expected a swiftrcnn.datasets.CocoDetection, got {type(dataset).__name__}")
    if dataset.categories and model.config["num_classes"] < dataset.num_classes:
        warnings.warn(f"model: {model.config['num_classes']} classes, but the data set's category ids reach "
                      f"{dataset.num_classes - 1}; labels are taken as category ids", stacklevel=2)
    ids = {dataset.image_path(i): dataset.image_ids[i] for i in range(len(dataset))}
    results: list[dict[str, Any]] = []
    for path, _, result in detect_paths(model, list(ids), batch_size=batch_size, progress=progress):
        results += to_coco_results(result, ids[path])
    if results_path is not None:
        Path(os.fsdecode(results_path)).write_text(json.dumps(results, separators=(",", ":")) + "\n",
                                                   encoding="utf-8")
    types = _iou_types(model)
    if "keypoints" in types and not any("keypoints" in a for a in dataset.dataset["annotations"]):
        types = ("bbox",)  # a data set without keypoint annotations: boxes only
    return {t: coco_stats(dataset.coco, results, t, dataset.image_ids, verbose) for t in types}
