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

    for name, fn in extra_demos():
        show(name, fn(rng, boxes))


def extra_demos():
    """Demos of the ops beyond box utilities, when this build has them."""
    demos = []
    if hasattr(ops, "roi_align"):
        def roi(rng, boxes):
            feats = rng.standard_normal((2, 256, 50, 68)).astype(np.float32)
            rois = np.concatenate([rng.integers(0, 2, (100, 1)), boxes[:100] / 4], 1).astype(np.float32)
            out = ops.roi_align(feats, rois, 7, spatial_scale=0.25, sampling_ratio=2, aligned=True)
            return f"output {out.shape}"
        demos.append(("roi_align 100 RoIs, 7x7", roi))
    if hasattr(ops, "AnchorGenerator"):
        def anchors(rng, boxes):
            gen = ops.AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
            a = gen(batch_hw=(800, 1344), feature_hw=[(200, 336), (100, 168), (50, 84), (25, 42), (13, 21)],
                    num_images=1)
            return f"{a[0].shape[0]} anchors for an 800x1344 5-level FPN"
        demos.append(("AnchorGenerator", anchors))
    if hasattr(ops, "paste_masks_in_image"):
        def paste(rng, boxes):
            masks = rng.uniform(0, 1, (10, 1, 28, 28)).astype(np.float32)
            out = ops.paste_masks_in_image(masks, boxes[:10], (480, 640))
            return f"pasted masks {out.shape}"
        demos.append(("paste_masks_in_image", paste))
    return demos


if __name__ == "__main__":
    main()
