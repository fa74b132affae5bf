"""A tour of swiftrcnn.ops on sample data: run after `pip install .`."""
import time

import numpy as np

import swiftrcnn
from swiftrcnn import ops


def show(title, value):
    print(f"{title:<42} {value}")


def main():
    rng = np.random.default_rng(0)
    print(f"swiftrcnn {swiftrcnn.__version__}, {swiftrcnn.get_num_threads()} threads\n")

    # Detector-style outputs: 20k boxes in a 1000x1000 image, 80 classes.
    n = 20_000
    xy = rng.uniform(0, 1000, (n, 2))
    wh = rng.uniform(8, 200, (n, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    labels = rng.integers(0, 80, n)

    boxes = ops.clip_boxes_to_image(boxes, (1000, 1000))
    keep = ops.remove_small_boxes(boxes, 1.0)
    show("boxes after clip + remove_small_boxes", f"{len(keep)} of {n}")

    t0 = time.perf_counter()
    kept = ops.nms(boxes, scores, 0.5)
    show("nms(iou 0.5)", f"kept {len(kept)} in {1e3 * (time.perf_counter() - t0):.1f} ms")
    t0 = time.perf_counter()
    kept_per_class = ops.batched_nms(boxes, scores, labels, 0.5)
    show("batched_nms(80 classes, iou 0.5)", f"kept {len(kept_per_class)} in "
         f"{1e3 * (time.perf_counter() - t0):.1f} ms")
    soft_keep, soft_scores = ops.soft_nms(boxes[:500], scores[:500], method="gaussian")
    show("soft_nms(500 boxes, gaussian)", f"kept {len(soft_keep)}, top score {soft_scores[0]:.3f}")

    iou = ops.box_iou(boxes[:1000], boxes[:2000])
    show("box_iou 1000 x 2000", f"shape {iou.shape}, mean {iou.mean():.4f}")
    giou = ops.generalized_box_iou(boxes[:5], boxes[:5])
    show("generalized_box_iou diagonal", np.round(np.diag(giou), 3))
    show("box_convert xyxy -> cxcywh", ops.box_convert(boxes[:1], "xyxy", "cxcywh")[0])

    # RoI ops on a feature map of an 800 x 1088 batch at stride 4, with boxes inside the images.
    feats = rng.standard_normal((2, 256, 200, 272)).astype(np.float32)
    wh = rng.uniform(16, 300, (600, 2))
    xy = rng.uniform(0, 1, (600, 2)) * (np.array([1088, 800]) - wh)
    img_boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    rois = np.concatenate([rng.integers(0, 2, (500, 1)), img_boxes[:500]], 1).astype(np.float32)
    t0 = time.perf_counter()
    pooled = ops.roi_align(feats, rois, 7, spatial_scale=0.25, sampling_ratio=2, aligned=True)
    show("roi_align(500 RoIs, 7x7, aligned)", f"{pooled.shape} in {1e3 * (time.perf_counter() - t0):.1f} ms")
    grad = ops.roi_align_backward(np.ones_like(pooled), rois, feats.shape, 0.25, 2, True)
    show("roi_align_backward: total gradient", f"{grad.sum():.1f} (= {pooled.size} output cells)")
    maxed, argmax = ops.roi_pool(feats, rois, 7, spatial_scale=0.25, return_argmax=True)
    show("roi_pool + argmax", f"{maxed.shape}, {np.count_nonzero(argmax < 0)} empty bins")
    ps = ops.ps_roi_align(feats[:, :245], rois, 7, spatial_scale=0.25, sampling_ratio=2)
    show("ps_roi_align(245 channels -> 5)", ps.shape)

    fpn = {name: rng.standard_normal((2, 256, 200 >> i, 272 >> i)).astype(np.float32)
           for i, name in enumerate(["0", "1", "2", "3"])}
    pooler = ops.MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)
    out = pooler(fpn, [img_boxes[:300], img_boxes[300:600]], [(800, 1088), (800, 1088)])
    show("MultiScaleRoIAlign(4 FPN levels)", out.shape)

    # Anchors, box coding, matching and sampling as in an RPN.
    gen = ops.AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
    anchors = gen(batch_hw=(800, 1344), feature_hw=[(200, 336), (100, 168), (50, 84), (25, 42), (13, 21)])[0]
    show("AnchorGenerator, 5-level FPN", f"{len(anchors)} anchors")
    coder = ops.BoxCoder((1.0, 1.0, 1.0, 1.0))
    deltas = rng.normal(0, 0.1, anchors.shape).astype(np.float32)
    proposals = ops.clip_boxes_to_image(coder.decode_single(deltas, anchors), (800, 1344))
    show("BoxCoder.decode_single + clip", proposals.shape)
    gt = img_boxes[:20]
    matches = ops.Matcher(0.7, 0.3, allow_low_quality_matches=True)(ops.box_iou(gt, anchors))
    show("Matcher(0.7, 0.3): positives", int((matches >= 0).sum()))
    sampler = ops.BalancedPositiveNegativeSampler(256, 0.5, seed=0)
    pos, neg = sampler([np.where(matches >= 0, 1, np.where(matches == -1, 0, -1))])
    show("BalancedPositiveNegativeSampler(256, 0.5)", f"{pos[0].sum()} positives, {neg[0].sum()} negatives")

    # Mask R-CNN post-processing.
    masks = rng.uniform(0, 1, (100, 1, 28, 28)).astype(np.float32)
    t0 = time.perf_counter()
    pasted = ops.paste_masks_in_image(masks, img_boxes[:100], (800, 1333))
    show("paste_masks_in_image(100 masks)", f"{pasted.shape} in {1e3 * (time.perf_counter() - t0):.1f} ms")

    # The py-faster-rcnn conventions.
    show("legacy.generate_anchors() first row", ops.legacy.generate_anchors()[0])


if __name__ == "__main__":
    main()
