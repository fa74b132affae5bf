"""The detector's stages one at a time, for comparing a model with torchvision stage by stage (private).

Each function builds one component of torchvision's Faster / Mask R-CNN (eval mode) from the keys of a state dict
under its prefix ("rpn.", "roi_heads."; other keys are ignored) and runs it on given feature maps. Arrays are
converted to float32, the detector's dtype. Feature maps are (N, C, H_l, W_l), finest level first: a sequence, or
a dict of torchvision's FPN output ("0", "1", "2", "3", "pool").
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import _C
from ..ops._array import as_float, as_index, as_int, as_real

# torchvision's FPN levels pooled by the RoI heads (MultiScaleRoIAlign's featmap_names).
_POOLED_LEVELS = ("0", "1", "2", "3")


def _weights(state_dict, prefix: str) -> tuple[list[str], list[np.ndarray]]:
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict: expected a mapping of names to arrays, got {type(state_dict).__name__}")
    names = [k for k in state_dict if isinstance(k, str) and k.startswith(prefix)]
    arrays = []
    for k in names:
        v = state_dict[k]
        if hasattr(v, "detach"):  # a torch tensor
            v = v.detach().cpu().numpy()
        arrays.append(as_float(v, k, np.float32))
    return names, arrays


def _features(features, pooled_only: bool) -> list[np.ndarray]:
    if isinstance(features, Mapping):
        items = [(k, v) for k, v in features.items() if not pooled_only or k in _POOLED_LEVELS]
    else:
        items = [(f"features[{i}]", v) for i, v in enumerate(features)]
    return [as_float(v.detach().cpu().numpy() if hasattr(v, "detach") else v, name, np.float32) for name, v in items]


def _sizes(image_sizes) -> np.ndarray:
    return as_index([tuple(s) for s in image_sizes], "image_sizes").reshape(-1, 2)


def _anchors(sizes, ratios, levels: int):
    """AnchorGenerator's sizes and aspect ratios as flat float64 values with int64 per-level counts. As in
    torchvision, a flat tuple of sizes means one size per level and a flat tuple of ratios the same ratios on every
    level."""
    sizes, ratios = tuple(sizes), tuple(ratios)
    if sizes and not isinstance(sizes[0], (tuple, list)):
        sizes = tuple((s,) for s in sizes)
    if ratios and not isinstance(ratios[0], (tuple, list)):
        ratios = (ratios,) * len(sizes)
    out = []
    for values, name in ((sizes, "anchor_sizes"), (ratios, "aspect_ratios")):
        flat = [as_real(v, name) for level in values for v in level]
        out += [np.asarray(flat, np.float64).reshape(-1), np.asarray([len(level) for level in values], np.int64)]
    return out


def rpn_proposals(state_dict, features, image_sizes, batch_hw, *, pre_nms_top_n: int = 1000,
                  post_nms_top_n: int = 1000, nms_thresh: float = 0.7, score_thresh: float = 0.0,
                  anchor_sizes=((32,), (64,), (128,), (256,), (512,)), aspect_ratios=((0.5, 1.0, 2.0),) * 5):
    """torchvision's RegionProposalNetwork (eval mode) with the weights under "rpn.".

    Args:
        features: one (N, C, H_l, W_l) map per level (all levels of a dict, "pool" included).
        image_sizes: per image its (height, width) after resizing.
        batch_hw: (height, width) of the padded batch (the anchors' strides are batch_hw // (H_l, W_l)).
        anchor_sizes, aspect_ratios: AnchorGenerator's, one tuple per level.

    Returns (boxes, scores): per image its proposals (P_i, 4) float32 (x1, y1, x2, y2) and objectness
    probabilities (P_i,), by decreasing probability, P_i <= post_nms_top_n.
    """
    names, weights = _weights(state_dict, "rpn.")
    maps = _features(features, pooled_only=False)
    sizes = _sizes(image_sizes)
    batch_h, batch_w = (as_int(v, "batch_hw") for v in batch_hw)
    anchor_values, num_sizes, ratio_values, num_ratios = _anchors(anchor_sizes, aspect_ratios, len(maps))
    post = as_int(post_nms_top_n, "post_nms_top_n")
    images = sizes.shape[0]
    boxes = np.empty((images, max(post, 0), 4), np.float32)
    scores = np.empty((images, max(post, 0)), np.float32)
    counts = np.empty((images,), np.int64)
    _C.rpn_proposals(names, weights, maps, sizes, batch_h, batch_w, anchor_values, num_sizes, ratio_values,
                     num_ratios, as_int(pre_nms_top_n, "pre_nms_top_n"), post, as_real(nms_thresh, "nms_thresh"),
                     as_real(score_thresh, "score_thresh"), boxes, scores, counts)
    return ([boxes[i, :counts[i]].copy() for i in range(images)],
            [scores[i, :counts[i]].copy() for i in range(images)])


def roi_heads_detect(state_dict, features, proposals, image_sizes, num_classes: int, masks: bool, *,
                     score_thresh: float = 0.05, nms_thresh: float = 0.5, detections_per_img: int = 100):
    """torchvision's RoIHeads (eval mode) of Faster R-CNN, or Mask R-CNN when `masks`, with the weights under
    "roi_heads.".

    Args:
        features: the maps to pool from (of a dict, torchvision's "0" ... "3").
        proposals: per image its (P_i, 4) proposals.
        image_sizes: per image its (height, width) after resizing.
        num_classes: classes of the box predictor, background included.

    Returns one dict per image: "boxes" (D, 4) float32, "scores" (D,) float32, "labels" (D,) int64, by decreasing
    score, and with `masks` "masks" (D, 1, 28, 28) float32 mask probabilities (before pasting into the image).
    """
    names, weights = _weights(state_dict, "roi_heads.")
    maps = _features(features, pooled_only=True)
    sizes = _sizes(image_sizes)
    props = []
    for i, p in enumerate(proposals):
        p = as_float(p.detach().cpu().numpy() if hasattr(p, "detach") else p, f"proposals[{i}]", np.float32)
        if p.size == 0:
            p = np.zeros((0, 4), np.float32)
        if p.ndim != 2 or p.shape[1] != 4:
            raise ValueError(f"proposals[{i}]: expected shape (P, 4), got {p.shape}")
        props.append(p)
    counts_in = np.asarray([p.shape[0] for p in props], np.int64)
    flat = np.concatenate(props) if props else np.zeros((0, 4), np.float32)
    per_image = as_int(detections_per_img, "detections_per_img")
    images = sizes.shape[0]
    d = max(per_image, 0)
    boxes = np.empty((images, d, 4), np.float32)
    scores = np.empty((images, d), np.float32)
    labels = np.empty((images, d), np.int64)
    mask_probs = np.empty((images, d, 1, 28, 28), np.float32) if masks else None
    counts = np.empty((images,), np.int64)
    _C.roi_heads_detect(names, weights, as_int(num_classes, "num_classes"), bool(masks), maps, flat, counts_in,
                        sizes, as_real(score_thresh, "score_thresh"), as_real(nms_thresh, "nms_thresh"), per_image,
                        boxes, scores, labels, mask_probs, counts)
    results = []
    for i in range(images):
        n = counts[i]
        r = {"boxes": boxes[i, :n].copy(), "labels": labels[i, :n].copy(), "scores": scores[i, :n].copy()}
        if mask_probs is not None:
            r["masks"] = mask_probs[i, :n].copy()
        results.append(r)
    return results
