"""The detector's stages one at a time, for comparing a model with torchvision stage by stage (private).

Each function builds one component of torchvision's Faster / Mask R-CNN (eval mode) from the keys of a state dict
under its prefix ("rpn.", "roi_heads."; other keys are ignored) and runs it on given feature maps. Arrays are
converted to float32, the detector's dtype. Feature maps are (N, C, H_l, W_l), finest level first: a sequence, or
a dict of torchvision's FPN output ("0", "1", "2", "3", "pool").
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from .. import _C
from .._typing import AnchorLevels
from ..ops._array import as_float, as_index, as_int, as_real

# torchvision's FPN levels pooled by the RoI heads (MultiScaleRoIAlign's featmap_names).
_POOLED_LEVELS = ("0", "1", "2", "3")
# Feature maps: a sequence, finest level first, or torchvision's FPN dict; NumPy arrays or torch tensors.
Features = Union[Mapping[str, Any], Sequence[Any]]


def _weights(state_dict: Mapping[str, Any], prefix: str) -> tuple[list[str], list[npt.NDArray[Any]]]:
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


def _features(features: Features, pooled_only: bool) -> list[npt.NDArray[Any]]:
    if isinstance(features, Mapping):
        items = [(k, v) for k, v in features.items() if not pooled_only or k in _POOLED_LEVELS]
    else:
        items = [(f"features[{i}]", v) for i, v in enumerate(features)]
    return [as_float(v.detach().cpu().numpy() if hasattr(v, "detach") else v, name, np.float32) for name, v in items]


def _sizes(image_sizes: Iterable[Sequence[int]]) -> npt.NDArray[np.int64]:
    return as_index([tuple(s) for s in image_sizes], "image_sizes").reshape(-1, 2)


def _anchors(sizes: Iterable[Any], ratios: Iterable[Any], levels: int) -> list[npt.NDArray[Any]]:
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


def rpn_proposals(state_dict: Mapping[str, Any], features: Features, image_sizes: Iterable[Sequence[int]],
                  batch_hw: Sequence[int], *, pre_nms_top_n: int = 1000, post_nms_top_n: int = 1000,
                  nms_thresh: float = 0.7, score_thresh: float = 0.0,
                  anchor_sizes: AnchorLevels = ((32,), (64,), (128,), (256,), (512,)),
                  aspect_ratios: AnchorLevels = ((0.5, 1.0, 2.0),) * 5,
                  ) -> tuple[list[npt.NDArray[np.float32]], list[npt.NDArray[np.float32]]]:
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


def roi_heads_detect(state_dict: Mapping[str, Any], features: Features, proposals: Iterable[Any],
                     image_sizes: Iterable[Sequence[int]], num_classes: int, masks: bool, *,
                     score_thresh: float = 0.05, nms_thresh: float = 0.5,
                     detections_per_img: int = 100) -> list[dict[str, npt.NDArray[Any]]]:
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
        r: dict[str, npt.NDArray[Any]] = {"boxes": boxes[i, :n].copy(), "labels": labels[i, :n].copy(),
                                          "scores": scores[i, :n].copy()}
        if mask_probs is not None:
            r["masks"] = mask_probs[i, :n].copy()
        results.append(r)
    return results


# ---- Training steps (torchvision's train mode): targets, samplers and losses of one step each ----------------------


def _f32(x: object, name: str) -> np.ndarray:
    return as_float(x.detach().cpu().numpy() if hasattr(x, "detach") else x, name, np.float32)


def _boxes(x: object, name: str) -> np.ndarray:
    """(N, 4) float32; an empty input of any shape becomes (0, 4), as torchvision accepts `torch.zeros((0,))`."""
    b = _f32(x, name)
    return np.zeros((0, 4), np.float32) if b.size == 0 else b


def _uint8(x: object, name: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    if a.dtype.kind not in "biu":
        raise TypeError(f"{name}: expected an integer or bool array of 0 / 1, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.uint8)


def rpn_assign_targets(anchors: np.ndarray, gt_boxes: np.ndarray, *, fg_iou_thresh: float = 0.7,
                       bg_iou_thresh: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """RegionProposalNetwork.assign_targets_to_anchors then box_coder.encode, for one image.

    Returns (labels (A,) float32: 1 foreground, 0 background, -1 ignored; regression_targets (A, 4) float32).
    """
    a, g = _boxes(anchors, "anchors"), _boxes(gt_boxes, "gt_boxes")
    labels = np.empty((a.shape[0],), np.float32)
    targets = np.empty((a.shape[0], 4), np.float32)
    _C.rpn_assign_targets(a, g, as_real(fg_iou_thresh, "fg_iou_thresh"), as_real(bg_iou_thresh, "bg_iou_thresh"),
                          labels, targets)
    return labels, targets


def rpn_sample(labels: np.ndarray, *, batch_size_per_image: int = 256, positive_fraction: float = 0.5,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The RPN's BalancedPositiveNegativeSampler on one image's anchor labels: (positive, negative) uint8 masks."""
    lab = _f32(labels, "labels")
    pos, neg = np.empty(lab.shape, np.uint8), np.empty(lab.shape, np.uint8)
    _C.rpn_sample(lab, as_int(batch_size_per_image, "batch_size_per_image"),
                  as_real(positive_fraction, "positive_fraction"), as_int(seed, "seed") % (1 << 64), pos, neg)
    return pos, neg


def rpn_loss(objectness: np.ndarray, pred_bbox_deltas: np.ndarray, labels: np.ndarray,
             regression_targets: np.ndarray, positive: np.ndarray,
             negative: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """RegionProposalNetwork.compute_loss over all images' anchors concatenated (objectness (A,) or (A, 1)).

    Returns (loss_objectness, loss_rpn_box_reg, d/d objectness (A,), d/d pred_bbox_deltas (A, 4)), the gradients of
    the sum of the two losses.
    """
    o = _f32(objectness, "objectness").reshape(-1)
    losses = np.empty((2,), np.float32)
    grad_o, grad_d = np.empty(o.shape, np.float32), np.empty((o.shape[0], 4), np.float32)
    _C.rpn_loss(o, _f32(pred_bbox_deltas, "pred_bbox_deltas"), _f32(labels, "labels"),
                _f32(regression_targets, "regression_targets"), _uint8(positive, "positive"),
                _uint8(negative, "negative"), losses, grad_o, grad_d)
    return float(losses[0]), float(losses[1]), grad_o, grad_d


def roi_heads_select_training_samples(proposals: np.ndarray, gt_boxes: np.ndarray, gt_labels: np.ndarray, *,
                                      fg_iou_thresh: float = 0.5, bg_iou_thresh: float = 0.5,
                                      batch_size_per_image: int = 512, positive_fraction: float = 0.25,
                                      bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
                                      seed: int = 0) -> dict[str, np.ndarray]:
    """RoIHeads.select_training_samples for one image.

    Returns a dict of the S samples, in ascending order of their row in proposals followed by gt_boxes:
    "proposals" (S, 4) float32, "labels" (S,) int64, "regression_targets" (S, 4) float32, "matched_idxs" (S,) int64
    and "sampled_idxs" (S,) int64 (those rows).
    """
    p, g = _boxes(proposals, "proposals"), _boxes(gt_boxes, "gt_boxes")
    lab = as_index(gt_labels.detach().cpu().numpy() if hasattr(gt_labels, "detach") else gt_labels, "gt_labels")
    rows = p.shape[0] + g.shape[0]
    out = {"proposals": np.empty((rows, 4), np.float32), "labels": np.empty((rows,), np.int64),
           "regression_targets": np.empty((rows, 4), np.float32), "matched_idxs": np.empty((rows,), np.int64),
           "sampled_idxs": np.empty((rows,), np.int64)}
    wx, wy, ww, wh = (as_real(w, "bbox_reg_weights") for w in bbox_reg_weights)
    count = _C.roi_heads_select_training_samples(
        p, g, lab.reshape(-1), as_real(fg_iou_thresh, "fg_iou_thresh"), as_real(bg_iou_thresh, "bg_iou_thresh"),
        as_int(batch_size_per_image, "batch_size_per_image"), as_real(positive_fraction, "positive_fraction"),
        wx, wy, ww, wh, as_int(seed, "seed") % (1 << 64), out["proposals"], out["labels"],
        out["regression_targets"], out["matched_idxs"], out["sampled_idxs"])
    return {k: v[:count].copy() for k, v in out.items()}


def fastrcnn_loss(class_logits: np.ndarray, box_regression: np.ndarray, labels: np.ndarray,
                  regression_targets: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """roi_heads.fastrcnn_loss on all images' samples concatenated: class_logits (S, K), box_regression (S, 4 K),
    labels (S,), regression_targets (S, 4).

    Returns (loss_classifier, loss_box_reg, d/d class_logits, d/d box_regression) (gradients of their sum).
    """
    c = _f32(class_logits, "class_logits")
    b = _f32(box_regression, "box_regression")
    lab = as_index(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels, "labels")
    t = _f32(regression_targets, "regression_targets")
    losses = np.empty((2,), np.float32)
    grad_c, grad_b = np.empty(c.shape, np.float32), np.empty(b.shape, np.float32)
    _C.fastrcnn_loss(c, b, lab, t, losses, grad_c, grad_b)
    return float(losses[0]), float(losses[1]), grad_c, grad_b


def maskrcnn_loss(mask_logits: np.ndarray, proposals: list[np.ndarray], gt_masks: list[np.ndarray],
                  gt_labels: list[np.ndarray], mask_matched_idxs: list[np.ndarray]) -> tuple[float, np.ndarray]:
    """roi_heads.maskrcnn_loss, same arguments: mask_logits (P, K, M, M) of every image's positive proposals in
    turn, per image its positive proposals (P_i, 4), gt masks (G_i, H_i, W_i) (0 / 1), gt labels (G_i,) and each
    proposal's matched gt index (P_i,).

    Returns (loss_mask, d loss_mask / d mask_logits (P, K, M, M)).
    """
    logits = _f32(mask_logits, "mask_logits")
    props = [_boxes(p, f"proposals[{i}]") for i, p in enumerate(proposals)]
    matched = [as_index(m.detach().cpu().numpy() if hasattr(m, "detach") else m, f"mask_matched_idxs[{i}]")
               .reshape(-1) for i, m in enumerate(mask_matched_idxs)]
    gt_lab = [as_index(g.detach().cpu().numpy() if hasattr(g, "detach") else g, f"gt_labels[{i}]").reshape(-1)
              for i, g in enumerate(gt_labels)]
    masks = [_uint8(m, f"gt_masks[{i}]") for i, m in enumerate(gt_masks)]
    # torchvision's labels: each proposal's matched gt label (an out-of-range index is the library's error).
    labels = [lab[np.clip(m, 0, max(len(lab) - 1, 0))] if len(lab) else np.zeros_like(m)
              for lab, m in zip(gt_lab, matched)]
    counts = np.asarray([p.shape[0] for p in props], np.int64)
    loss = np.empty((1,), np.float32)
    grad = np.empty(logits.shape, np.float32)
    _C.maskrcnn_loss(logits, counts, np.concatenate(props) if props else np.zeros((0, 4), np.float32),
                     np.concatenate(labels) if labels else np.zeros((0,), np.int64),
                     np.concatenate(matched) if matched else np.zeros((0,), np.int64), masks, loss, grad)
    return float(loss[0]), grad
