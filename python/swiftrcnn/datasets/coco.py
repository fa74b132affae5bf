"""COCO-format detection data sets: torchvision's `CocoDetection` with its reference scripts' target conversion,
on NumPy arrays."""
from __future__ import annotations

import contextlib
import io as _stdio
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._typing import PathLike
from ..io import read_image, require

__all__ = ["COCO_CATEGORIES", "CocoDetection", "file_ids", "load_coco_json", "quiet_coco", "segmentation_to_mask"]

# The names of the 91 labels of torchvision's COCO-trained detectors (label = COCO category id; 0 is the
# background, "N/A" the ids COCO 2014/2017 left unused).
COCO_CATEGORIES: tuple[str, ...] = (
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse",
    "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "N/A", "backpack", "umbrella", "N/A", "N/A", "handbag",
    "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "N/A", "wine glass", "cup", "fork", "knife", "spoon", "bowl",
    "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "N/A", "dining table", "N/A", "N/A", "toilet", "N/A", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "N/A", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)

Target = dict[str, Any]


def load_coco_json(annotations: PathLike | Mapping[str, Any], name: str = "annotations") -> dict[str, Any]:
    """A COCO annotation file (a path, or the parsed dict) as a dict, checked to have the "images",
    "annotations" and "categories" lists with the fields this package reads. ValueError naming `name` (and the
    file) otherwise."""
    if isinstance(annotations, Mapping):
        data, where = dict(annotations), name
    elif isinstance(annotations, (str, bytes, os.PathLike)):
        where = os.fsdecode(annotations)
        try:
            with open(where, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{name}: {where} is not JSON ({e})") from None
        except UnicodeDecodeError as e:
            raise ValueError(f"{name}: {where} is not UTF-8 text ({e})") from None
    else:
        raise TypeError(f"{name}: expected a COCO JSON path or dict, got {type(annotations).__name__}")
    if not isinstance(data, dict):
        raise ValueError(f"{name}: {where}: expected a JSON object with 'images', 'annotations' and 'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key, []), list):
            raise ValueError(f"{name}: {where}: '{key}' should be a list")
    data.setdefault("annotations", [])
    data.setdefault("categories", [])
    if "images" not in data:
        raise ValueError(f"{name}: {where}: no 'images' list (not a COCO annotation file)")
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or not isinstance(image.get("id"), int) or "file_name" not in image:
            raise ValueError(f"{name}: {where}: images[{i}] should have an integer 'id' and a 'file_name'")
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann or "category_id" not in ann or "bbox" not in ann:
            raise ValueError(f"{name}: {where}: annotations[{i}] should have 'image_id', 'category_id' and 'bbox'")
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise ValueError(f"{name}: {where}: annotations[{i}]['bbox'] should be [x, y, width, height]")
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int):
            raise ValueError(f"{name}: {where}: categories[{i}] should have an integer 'id'")
    return data


def quiet_coco(data: Mapping[str, Any]) -> Any:
    """A `pycocotools.coco.COCO` of an annotation dict, built without its progress prints."""
    coco_module = require("pycocotools.coco", "COCO data sets")
    coco = coco_module.COCO()
    coco.dataset = dict(data)
    with contextlib.redirect_stdout(_stdio.StringIO()):
        coco.createIndex()
    return coco


def segmentation_to_mask(segmentation: Any, height: int, width: int) -> npt.NDArray[np.uint8]:
    """One annotation's "segmentation" -- polygons ([[x1, y1, x2, y2, ...], ...]), an uncompressed RLE ({"size",
    "counts": [ints]}) or a compressed one ({"size", "counts": str}) -- as an (H, W) uint8 0/1 mask (the union of
    the polygons), as torchvision's reference `convert_coco_poly_to_mask` computes it."""
    mask_api = require("pycocotools.mask", "COCO masks")
    if isinstance(segmentation, list):
        polygons = [p for p in segmentation if len(p) >= 6]
        if not polygons:
            return np.zeros((height, width), np.uint8)
        decoded = mask_api.decode(mask_api.frPyObjects(polygons, height, width))
        return np.ascontiguousarray(decoded.reshape(height, width, -1).any(axis=2), dtype=np.uint8)
    if isinstance(segmentation, dict) and "counts" in segmentation:
        rle = segmentation
        if isinstance(rle["counts"], list):
            rle = mask_api.frPyObjects(rle, height, width)
        decoded = mask_api.decode(rle)
        if decoded.shape[:2] != (height, width):
            raise ValueError(f"segmentation: RLE of size {list(decoded.shape[:2])} for an image of {[height, width]}")
        return np.ascontiguousarray(decoded, dtype=np.uint8)
    raise ValueError("segmentation: expected a list of polygons or an RLE dict with 'size' and 'counts'")


class CocoDetection:
    """A COCO-format data set as a sequence of `(image, target)`: torchvision's `datasets.CocoDetection` followed
    by its detection reference's `ConvertCocoPolysToMask`, on NumPy arrays.

    `images` is the folder the annotation file's `file_name`s are relative to; `annotations` the COCO JSON file (or
    its parsed dict). Items are in increasing image id order (`image_ids`). `image` is (3, H, W) float32 RGB in
    [0, 1] (`swiftrcnn.io.read_image`); `target` is torchvision's training format:

    - "boxes" (N, 4) float32 (x1, y1, x2, y2) in pixels: COCO's [x, y, width, height] converted and clipped to the
      image; crowd annotations (iscrowd 1) and boxes left with no width or height are dropped.
    - "labels" (N,) int64: the category ids themselves (a model for this data set has `num_classes` = the largest
      id + 1, background 0, as torchvision's COCO models).
    - "masks" (N, H, W) uint8 0/1 from the polygons or RLEs (with `masks=True`, the default).
    - "keypoints" (N, K, 3) float32 (x, y, visibility), when the annotations have keypoints.
    - "image_id" int, "area" (N,) float32 and "iscrowd" (N,) int64 of the kept annotations (torchvision's reference
      keeps these two unfiltered; here every array has the same N).

    `transforms(image, target) -> (image, target)`, if given, is applied last. `categories` is {id: name} and
    `coco` the `pycocotools.coco.COCO` of the annotations (for evaluation)."""

    def __init__(self, images: PathLike, annotations: PathLike | Mapping[str, Any], masks: bool = True,
                 transforms: Callable[[npt.NDArray[np.float32], Target], tuple[Any, Any]] | None = None) -> None:
        if not isinstance(images, (str, bytes, os.PathLike)):
            raise TypeError(f"images: expected the folder of the pictures, got {type(images).__name__}")
        self.root = Path(os.fsdecode(images))
        if not self.root.is_dir():
            raise ValueError(f"images: {self.root} is not a folder")
        if transforms is not None and not callable(transforms):
            raise TypeError(f"transforms: expected a callable, got {type(transforms).__name__}")
        self.dataset = load_coco_json(annotations)
        self.masks = bool(masks)
        self.transforms = transforms
        self._images = {image["id"]: image for image in self.dataset["images"]}
        self.image_ids: list[int] = sorted(self._images)
        self._annotations: dict[int, list[dict[str, Any]]] = {i: [] for i in self.image_ids}
        for ann in self.dataset["annotations"]:
            if ann["image_id"] in self._annotations:
                self._annotations[ann["image_id"]].append(ann)
        self.categories: dict[int, str] = {c["id"]: str(c.get("name", c["id"]))
                                           for c in sorted(self.dataset["categories"], key=lambda c: c["id"])}
        self._coco: Any = None

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def num_classes(self) -> int:
        """The `num_classes` of a model whose labels are this data set's category ids: the largest id + 1."""
        return max(self.categories, default=0) + 1

    @property
    def coco(self) -> Any:
        """`pycocotools.coco.COCO` of the annotations (built on first use)."""
        if self._coco is None:
            self._coco = quiet_coco(self.dataset)
        return self._coco

    def _index(self, index: int) -> int:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"index: expected an int, got {type(index).__name__}")
        n = len(self.image_ids)
        if not -n <= index < n:
            raise IndexError(f"index: {index} out of range for {n} images")
        return int(index) % n

    def image_path(self, index: int) -> Path:
        """The picture file of item `index`."""
        return self.root / self._images[self.image_ids[self._index(index)]]["file_name"]

    def annotations(self, index: int) -> list[dict[str, Any]]:
        """The raw COCO annotations of item `index` (every one, crowds included)."""
        return list(self._annotations[self.image_ids[self._index(index)]])

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        index = self._index(index)
        image_id = self.image_ids[index]
        image = read_image(self.image_path(index))
        target = self.target(image_id, image.shape[1], image.shape[2])
        if self.transforms is not None:
            return self.transforms(image, target)
        return image, target

    def target(self, image_id: int, height: int, width: int) -> Target:
        """The torchvision training target of image `image_id` at its (height, width) (see the class)."""
        anns = [a for a in self._annotations[image_id] if not a.get("iscrowd", 0)]
        boxes = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        np.clip(boxes[:, 0::2], 0, width, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, height, out=boxes[:, 1::2])
        keep = (boxes[:, 3] > boxes[:, 1]) & (boxes[:, 2] > boxes[:, 0])
        kept = [a for a, k in zip(anns, keep) if k]
        target: Target = {
            "boxes": np.ascontiguousarray(boxes[keep]),
            "labels": np.array([a["category_id"] for a in kept], np.int64),
        }
        if self.masks:
            masks = [segmentation_to_mask(a.get("segmentation", []), height, width) for a in kept]
            target["masks"] = np.stack(masks) if masks else np.zeros((0, height, width), np.uint8)
        if any("keypoints" in a for a in kept):
            points = [np.asarray(a.get("keypoints", []), np.float32).reshape(-1, 3) for a in kept]
            k = max(len(p) for p in points)
            target["keypoints"] = np.stack([np.pad(p, ((0, k - len(p)), (0, 0))) for p in points])
        target["image_id"] = int(image_id)
        target["area"] = np.array([a.get("area", 0.0) for a in kept], np.float32)
        target["iscrowd"] = np.zeros(len(kept), np.int64)
        return target

    def __repr__(self) -> str:
        return (f"CocoDetection({str(self.root)!r}, {len(self)} images, {len(self.dataset['annotations'])} "
                f"annotations, {len(self.categories)} categories, masks={self.masks})")


def file_ids(dataset: Mapping[str, Any]) -> dict[str, int]:
    """{file_name: image id} of a COCO annotation dict."""
    return {str(image["file_name"]): int(image["id"]) for image in dataset["images"]}

