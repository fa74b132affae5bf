"""swiftrcnn.ops vs torchvision.ops, side by side in one process, on the same NumPy inputs and thread count.

    python bench/ops.py            # full run (best of 5)
    python bench/ops.py --quick    # best of 2, fewer NMS sizes
    python bench/ops.py --only nms,box_iou
    python bench/ops.py --isa generic   # swiftrcnn on another instruction-set path (default: the best this CPU has)

Prints one row per workload — torchvision seconds, swiftrcnn seconds, ratio (torchvision / swiftrcnn), the
target ratio — under a header naming the CPU (model, avx2 / avx512f), swiftrcnn's instruction-set path and the
threads, and writes the table and the same machine description as JSON (default bench/results/ops.json). `--isa`
picks swiftrcnn's path (SWIFTRCNN_ISA); a path the CPU lacks exits with code 2. Float32 throughout. Needs torch and
torchvision installed (the test command installs them). Results of the two libraries are also compared, so a fast
but wrong kernel shows up here too.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

import _machine


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="best of 2 runs and a shorter NMS sweep")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both libraries")
    p.add_argument("--only", default="", help="comma-separated workload name prefixes")
    p.add_argument("--isa", choices=_machine.ISAS, default=None,
                   help="swiftrcnn's instruction-set path (default: the library's, i.e. the best this CPU has)")
    p.add_argument("--json", default=str(Path(__file__).parent / "results" / "ops.json"))
    return p.parse_args()


ARGS = parse_args()
os.environ["SWIFTRCNN_NUM_THREADS"] = str(ARGS.threads)
swiftrcnn = _machine.apply_isa(ARGS.isa)  # first, so an unsupported path exits (code 2) before torch loads

import torch  # noqa: E402
import torchvision.ops as tvops  # noqa: E402
from torchvision.models.detection import _utils as tv_det_utils  # noqa: E402
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator  # noqa: E402
from torchvision.models.detection.image_list import ImageList  # noqa: E402
from torchvision.models.detection.roi_heads import paste_masks_in_image as tv_paste_masks  # noqa: E402

from swiftrcnn import ops  # noqa: E402

torch.set_num_threads(ARGS.threads)
swiftrcnn.set_num_threads(ARGS.threads)
RNG = np.random.default_rng(2024)
REPEATS = 2 if ARGS.quick else 5


def boxes_in(n, width, height, lo=8.0, hi=200.0):
    """n float32 xyxy boxes with sides in [lo, hi) inside a width x height image."""
    wh = RNG.uniform(lo, hi, (n, 2))
    xy = RNG.uniform(0, 1, (n, 2)) * (np.array([width, height]) - wh)
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


def rois_for(boxes, batch):
    idx = RNG.integers(0, batch, (len(boxes), 1)).astype(np.float32)
    return np.concatenate([idx, boxes], 1)


def best_time(fn):
    # Thread pools (torch's OpenMP, ours) keep spinning on the cores for a while after a call; let them settle so
    # neither library is timed against the other's leftovers.
    time.sleep(0.3)
    fn()  # warm-up (first-touch allocations, thread pools)
    best = math.inf
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def to_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    if isinstance(x, (list, tuple)):
        return [to_numpy(v) for v in x]
    return x


def max_abs_diff(a, b):
    a, b = to_numpy(a), to_numpy(b)
    if isinstance(a, list):
        return max((max_abs_diff(x, y) for x, y in zip(a, b)), default=0.0)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return math.inf
    return float(np.max(np.abs(a - b))) if a.size else 0.0


# ---- workloads: name -> (target ratio, build) where build() returns (torchvision fn, swiftrcnn fn) ------------

FEAT_SHAPE = (2, 256, 200, 272)  # an FPN P2 level of an 800 x 1088 batch
IMG_H, IMG_W = 800, 1088


def roi_align_case(sampling_ratio):
    def build():
        x = RNG.standard_normal(FEAT_SHAPE, dtype=np.float32)
        rois = rois_for(boxes_in(1000, IMG_W, IMG_H), 2)
        xt, rt = torch.from_numpy(x), torch.from_numpy(rois)
        return (lambda: tvops.roi_align(xt, rt, 7, 0.25, sampling_ratio, True),
                lambda: ops.roi_align(x, rois, 7, 0.25, sampling_ratio, True))
    return build


def roi_align_backward_case():
    x = RNG.standard_normal(FEAT_SHAPE, dtype=np.float32)
    rois = rois_for(boxes_in(1000, IMG_W, IMG_H), 2)
    grad = RNG.standard_normal((1000, 256, 7, 7), dtype=np.float32)
    xt, rt, gt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(rois), torch.from_numpy(grad)

    def tv():
        xt.grad = None
        tvops.roi_align(xt, rt, 7, 0.25, 2, True).backward(gt)
        return xt.grad
    return tv, lambda: ops.roi_align_backward(grad, rois, FEAT_SHAPE, 0.25, 2, True)


def multiscale_case():
    names = ["0", "1", "2", "3"]
    feats = {k: RNG.standard_normal((2, 256, 200 >> i, 272 >> i), dtype=np.float32) for i, k in enumerate(names)}
    boxes = [boxes_in(1000, IMG_W, IMG_H, 8, 400) for _ in range(2)]
    shapes = [(IMG_H, IMG_W)] * 2
    tv_m = tvops.MultiScaleRoIAlign(names, 7, 2)
    sr_m = ops.MultiScaleRoIAlign(names, 7, 2)
    tfeats = {k: torch.from_numpy(v) for k, v in feats.items()}
    tboxes = [torch.from_numpy(b) for b in boxes]
    return lambda: tv_m(tfeats, tboxes, shapes), lambda: sr_m(feats, boxes, shapes)


def roi_pool_case():
    x = RNG.standard_normal(FEAT_SHAPE, dtype=np.float32)
    rois = rois_for(boxes_in(1000, IMG_W, IMG_H), 2)
    xt, rt = torch.from_numpy(x), torch.from_numpy(rois)
    return lambda: tvops.roi_pool(xt, rt, 7, 0.25), lambda: ops.roi_pool(x, rois, 7, 0.25)


def roi_pool_backward_case():
    x = RNG.standard_normal(FEAT_SHAPE, dtype=np.float32)
    rois = rois_for(boxes_in(1000, IMG_W, IMG_H), 2)
    grad = RNG.standard_normal((1000, 256, 7, 7), dtype=np.float32)
    _, argmax = ops.roi_pool(x, rois, 7, 0.25, return_argmax=True)
    xt, rt, gt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(rois), torch.from_numpy(grad)

    def tv():
        xt.grad = None
        tvops.roi_pool(xt, rt, 7, 0.25).backward(gt)
        return xt.grad
    return tv, lambda: ops.roi_pool_backward(grad, argmax, FEAT_SHAPE, boxes=rois)


PS_SHAPE = (2, 245, 200, 272)  # 245 = 5 * 7 * 7 channels: 5 output channels per 7 x 7 bin grid


def ps_case(op, backward):
    x = RNG.standard_normal(PS_SHAPE, dtype=np.float32)
    rois = rois_for(boxes_in(1000, IMG_W, IMG_H), 2)
    xt, rt = torch.from_numpy(x), torch.from_numpy(rois)
    tv_op = getattr(tvops, op)
    args = (7, 0.25, 2) if op == "ps_roi_align" else (7, 0.25)
    if not backward:
        return lambda: tv_op(xt, rt, *args), lambda: getattr(ops, op)(x, rois, *args)
    grad = RNG.standard_normal((1000, 5, 7, 7), dtype=np.float32)
    xg, gt = xt.clone().requires_grad_(), torch.from_numpy(grad)

    def tv():
        xg.grad = None
        tv_op(xg, rt, *args).backward(gt)
        return xg.grad
    sr_args = (0.25, 2) if op == "ps_roi_align" else (0.25,)
    return tv, lambda: getattr(ops, op + "_backward")(grad, rois, PS_SHAPE, *sr_args)


def distinct_scores(n):
    """Scores without ties: torchvision's sort is not stable, so tied scores may legitimately order differently."""
    return (RNG.permutation(n) / n).astype(np.float32)


def nms_case(n):
    def build():
        b = boxes_in(n, 1000, 1000, 8, 200)
        s = distinct_scores(n)
        bt, st = torch.from_numpy(b), torch.from_numpy(s)
        tv = (lambda: tvops.nms(bt, st, 0.5)) if n <= 20_000 else None  # quadratic: 100k takes minutes
        return tv, lambda: ops.nms(b, s, 0.5)
    return build


def batched_nms_case():
    n = 20_000
    b = boxes_in(n, 1000, 1000, 8, 200)
    s = distinct_scores(n)
    c = RNG.integers(0, 80, n)
    bt, st, ct = torch.from_numpy(b), torch.from_numpy(s), torch.from_numpy(c)
    return lambda: tvops.batched_nms(bt, st, ct, 0.5), lambda: ops.batched_nms(b, s, c, 0.5)


def box_iou_case():
    a, b = boxes_in(2000, 1000, 1000), boxes_in(20_000, 1000, 1000)
    at, bt = torch.from_numpy(a), torch.from_numpy(b)
    return lambda: tvops.box_iou(at, bt), lambda: ops.box_iou(a, b)


def decode_case():
    n = 250_000
    boxes = boxes_in(n, 1333, 800)
    codes = RNG.normal(0, 0.5, (n, 4)).astype(np.float32)
    w = (10.0, 10.0, 5.0, 5.0)
    tv_coder, sr_coder = tv_det_utils.BoxCoder(w), ops.BoxCoder(w)
    ct, bt = torch.from_numpy(codes), torch.from_numpy(boxes)
    return lambda: tv_coder.decode_single(ct, bt), lambda: sr_coder.decode_single(codes, boxes)


def anchors_case():
    sizes = ((32,), (64,), (128,), (256,), (512,))
    ratios = ((0.5, 1.0, 2.0),) * 5
    grids = [(200, 336), (100, 168), (50, 84), (25, 42), (13, 21)]
    tv_gen, sr_gen = TVAnchorGenerator(sizes, ratios), ops.AnchorGenerator(sizes, ratios)
    images = ImageList(torch.zeros(1, 3, 800, 1344), [(800, 1344)])
    feats = [torch.zeros(1, 1, h, w) for h, w in grids]
    return (lambda: tv_gen(images, feats),
            lambda: sr_gen(batch_hw=(800, 1344), feature_hw=grids, num_images=1))


def paste_masks_case():
    masks = RNG.uniform(0, 1, (100, 1, 28, 28)).astype(np.float32)
    boxes = boxes_in(100, 1333, 800, 20, 400)
    mt, bt = torch.from_numpy(masks), torch.from_numpy(boxes)
    return (lambda: tv_paste_masks(mt, bt, (800, 1333), 1),
            lambda: ops.paste_masks_in_image(masks, boxes, (800, 1333), 1))


WORKLOADS = [
    ("roi_align fwd sr=2", 4.0, roi_align_case(2)),
    ("roi_align fwd adaptive", 4.0, roi_align_case(-1)),
    ("MultiScaleRoIAlign 4 levels", 4.0, multiscale_case),
    ("roi_align bwd", 4.0, roi_align_backward_case),
    ("roi_pool fwd", 4.0, roi_pool_case),
    ("roi_pool bwd", 4.0, roi_pool_backward_case),
    ("ps_roi_align fwd", 4.0, lambda: ps_case("ps_roi_align", False)),
    ("ps_roi_align bwd", 4.0, lambda: ps_case("ps_roi_align", True)),
    ("ps_roi_pool fwd", 4.0, lambda: ps_case("ps_roi_pool", False)),
    ("ps_roi_pool bwd", 4.0, lambda: ps_case("ps_roi_pool", True)),
    ("nms 1k", 3.0, nms_case(1000)),
    ("nms 5k", 5.0, nms_case(5000)),
    ("nms 20k", 20.0, nms_case(20_000)),
    ("nms 100k", None, nms_case(100_000)),
    ("batched_nms 20k, 80 classes", 2.0, batched_nms_case),
    ("box_iou 2000x20000", 3.0, box_iou_case),
    ("BoxCoder.decode_single 250k", 2.0, decode_case),
    ("anchors 800x1344 FPN", 2.0, anchors_case),
    ("paste_masks 100 into 800x1333", 2.0, paste_masks_case),
]
if ARGS.quick:
    WORKLOADS = [w for w in WORKLOADS if w[0] not in ("nms 1k", "nms 5k")]


def main():
    only = [s.strip() for s in ARGS.only.split(",") if s.strip()]
    rows = []
    header = f"{'workload':<32} {'torchvision s':>13} {'swiftrcnn s':>12} {'ratio':>7} {'target':>7}  max|diff|"
    print(f"swiftrcnn {swiftrcnn.__version__} vs torchvision {__import__('torchvision').__version__}, "
          f"{ARGS.threads} threads, best of {REPEATS}")
    print(_machine.header_line(ARGS.threads))
    print(header)
    print("-" * len(header))
    for name, target, build in WORKLOADS:
        if only and not any(name.startswith(o) for o in only):
            continue
        tv_fn, sr_fn = build()
        sr_s = best_time(sr_fn)
        tv_s = best_time(tv_fn) if tv_fn else None
        diff = max_abs_diff(sr_fn(), tv_fn()) if tv_fn else None
        ratio = tv_s / sr_s if tv_s else None
        met = None if target is None or ratio is None else ratio >= target
        rows.append(dict(workload=name, torchvision_s=tv_s, swiftrcnn_s=sr_s, ratio=ratio, target=target,
                         meets_target=met, max_abs_diff=diff))
        tv_txt = f"{tv_s:13.4f}" if tv_s else f"{'(skipped)':>13}"
        ratio_txt = f"{ratio:7.1f}" if ratio else f"{'-':>7}"
        target_txt = f"{target:6.0f}x" if target else f"{'-':>7}"
        diff_txt = f"{diff:.1e}" if diff is not None else ""
        flag = "" if met is None else ("" if met else "  BELOW TARGET")
        print(f"{name:<32} {tv_txt} {sr_s:12.4f} {ratio_txt} {target_txt}  {diff_txt}{flag}", flush=True)
    out = Path(ARGS.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(**_machine.describe(ARGS.threads), repeats=REPEATS, python=sys.version.split()[0],
                torch=torch.__version__, torchvision=__import__("torchvision").__version__)
    out.write_text(json.dumps(dict(meta=meta, rows=rows), indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
