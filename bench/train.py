"""swiftrcnn vs torchvision on one training step (forward + backward + SGD) of Faster R-CNN and Mask R-CNN.

    python bench/train.py                  # both models, best of 3
    python bench/train.py --quick          # best of 2
    python bench/train.py --profile        # also the phases of a step (zero_grad, forward, backward, SGD step)
    python bench/train.py --isa generic    # swiftrcnn on another instruction-set path (default: the best)

Both libraries train the same model from the same state dict: torchvision's ResNet-50-FPN detector as its
reference script fine-tunes it (resnet50 with FrozenBatchNorm2d, _resnet_fpn_extractor with 3 trainable layers,
FasterRCNN / MaskRCNN with 91 classes, min_size 512, max_size 853), seeded random weights, the frozen norms'
statistics those of the batch (so that activations stay in range and SGD does not diverge); swiftrcnn's
`*_resnet50_fpn(weights=…, min_size=512, max_size=853, trainable_backbone_layers=3)` built from that state dict.
One step is, in torchvision, `optimizer.zero_grad(); sum(model(images, targets).values()).backward();
optimizer.step()` with torch.optim.SGD, and in swiftrcnn `model.train_step(images, targets, optimizer)` with
swiftrcnn.optim.SGD (both lr 0.001, momentum 0.9, weight decay 1e-4), on the same seeded batch: two images of
different sizes (480x640 and 512x384, values in [0, 1]) with 5 and 3 boxes (and elliptic masks for Mask R-CNN).
The two libraries draw their own random samples (anchors and proposals kept for the losses), so their losses
differ from step to step; the amount of work does not (256 anchors and 512 proposals per image).

Times are measured side by side in this process with the same thread count, best of N (3; 2 with --quick) after a
warm-up step of each; the libraries take turns, one step each per round (a step takes seconds: a change in the
machine's load then falls on both). The ratio is torchvision's time / swiftrcnn's. Every step keeps training the
model (the weights change), as a training loop does. With --profile each library's step is also run in its
phases, best of N per phase: swiftrcnn's `zero_grad()`, the training-mode call (forward and losses, activations
kept), `backward()` and `optimizer.step()`, which together do what `train_step` does in one call; torchvision's
the same four.

Peak memory is measured for torchvision and swiftrcnn in one child process per library (torchvision alone;
swiftrcnn alone, without torch imported), building the model and optimizer and running 2 training steps: the
process's peak resident size (VmHWM, which includes building), the resident size after building, and the peak
during the steps alone (VmHWM reset after building through /proc/self/clear_refs, where the kernel allows it).
`--isa` picks swiftrcnn's kernel path (SWIFTRCNN_ISA, inherited by the child); a path the CPU lacks exits with code
2. The header and the JSON name the CPU (model, avx2 / avx512f), swiftrcnn's path, the threads and the load
average. Writes JSON to bench/results/train.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import _machine

ROOT = Path(__file__).resolve().parent
KINDS = ("fasterrcnn", "maskrcnn")
SIZES = ((480, 640), (512, 384))  # (height, width) of the two images
BOXES = (5, 3)  # objects per image
MIN_SIZE, MAX_SIZE = 512, 853
TRAINABLE_LAYERS = 3
SGD_ARGS = dict(lr=0.001, momentum=0.9, weight_decay=1e-4)
CHILD_STEPS = 2  # the second step has the optimizer's momentum buffers from the first: the steady state
SETTLE_SECONDS = 0.3  # pause before timing each library: thread pools keep spinning on the cores after a call
PHASES = ("zero_grad", "forward", "backward", "sgd_step")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="best of 2 instead of 3")
    p.add_argument("--threads", type=int, default=2, help="threads for both libraries (default: %(default)s)")
    p.add_argument("--isa", choices=_machine.ISAS, default=None,
                   help="swiftrcnn's instruction-set path (default: the library's, i.e. the best this CPU has)")
    p.add_argument("--profile", action="store_true", help="also time the phases of a step, for each library")
    p.add_argument("--only", default=",".join(KINDS), help=f"comma-separated models, of {', '.join(KINDS)}")
    p.add_argument("--json", default=str(ROOT / "results" / "train.json"))
    p.add_argument("--child", nargs=3, metavar=("LIBRARY", "KIND", "WEIGHTS"), help=argparse.SUPPRESS)
    return p.parse_args()


def batch(masks, seed=3):
    """The two images, (3, H, W) float32 in [0, 1], and their targets: boxes (N, 4) xyxy float32 of positive size
    inside the image, labels (N,) int64 in [1, 91), and for Mask R-CNN an ellipse inside each box (N, H, W) uint8.
    As Tests/python/training_utils.images_and_targets."""
    rng = np.random.default_rng(seed)
    images, targets = [], []
    for (h, w), n in zip(SIZES, BOXES):
        images.append(rng.random((3, h, w), dtype=np.float32))
        x1 = rng.uniform(0, w * 0.7, n)
        y1 = rng.uniform(0, h * 0.7, n)
        x2 = np.minimum(w, x1 + rng.uniform(w * 0.1, w * 0.6, n))
        y2 = np.minimum(h, y1 + rng.uniform(h * 0.1, h * 0.6, n))
        boxes = np.stack([x1, y1, x2, y2], 1).astype(np.float32).reshape(n, 4)
        target = {"boxes": boxes, "labels": rng.integers(1, 91, n).astype(np.int64)}
        if masks:
            yy, xx = np.mgrid[0:h, 0:w]
            m = np.zeros((n, h, w), np.uint8)
            for i, (a, b, c, d) in enumerate(boxes):
                cx, cy, rx, ry = (a + c) / 2, (b + d) / 2, (c - a) / 2, (d - b) / 2
                m[i] = ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1
            target["masks"] = m
        targets.append(target)
    return images, targets


# ---- the two libraries' models, optimizers and steps ---------------------------------------------------------------

def torchvision_model(kind):
    """torchvision's detector as its reference script fine-tunes it (FrozenBatchNorm2d, 3 trainable body layers),
    in train mode; random weights (torch's seeded init), the frozen norms' statistics those of the batch (as a
    trained network's would normalise its activations: without that, activations grow through the 53 layers and
    the first SGD steps diverge) and their affine parameters random."""
    import torch
    from torchvision.models import resnet50
    from torchvision.models.detection import FasterRCNN, MaskRCNN
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.misc import FrozenBatchNorm2d
    torch.manual_seed(0)
    backbone = _resnet_fpn_extractor(resnet50(weights=None, norm_layer=FrozenBatchNorm2d), TRAINABLE_LAYERS)
    model = (MaskRCNN if kind == "maskrcnn" else FasterRCNN)(backbone, 91, min_size=MIN_SIZE, max_size=MAX_SIZE)
    norms = [m for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    g = torch.Generator().manual_seed(1)

    def calibrate(norm, inputs):
        x = inputs[0]
        norm.running_mean.copy_(x.mean((0, 2, 3)))
        norm.running_var.copy_(x.var((0, 2, 3)))
        n = norm.weight.numel()
        norm.weight.copy_(0.5 + 0.5 * torch.rand(n, generator=g))
        norm.bias.copy_(0.1 * torch.randn(n, generator=g))
    hooks = [m.register_forward_pre_hook(calibrate) for m in norms]
    images, _ = batch(False)
    with torch.no_grad():
        model.eval()
        model.backbone.body(model.transform([torch.from_numpy(i) for i in images])[0].tensors)
    for h in hooks:
        h.remove()
    return model.train()


def torchvision_trainer(model, images, targets):
    """(step, phases, parameter names) of torchvision: step() -> losses; phases() -> (losses, seconds per phase)."""
    import torch
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], **SGD_ARGS)
    t_images = [torch.from_numpy(i) for i in images]
    t_targets = [{k: torch.from_numpy(v) for k, v in t.items()} for t in targets]

    def step():
        optimizer.zero_grad()
        losses = model(t_images, t_targets)
        sum(losses.values()).backward()
        optimizer.step()
        return {k: v.item() for k, v in losses.items()}

    def phases():
        t0 = time.perf_counter()
        optimizer.zero_grad()
        t1 = time.perf_counter()
        losses = model(t_images, t_targets)
        t2 = time.perf_counter()
        sum(losses.values()).backward()
        t3 = time.perf_counter()
        optimizer.step()
        t4 = time.perf_counter()
        return {k: v.item() for k, v in losses.items()}, dict(zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)))
    names = {k for k, p in model.named_parameters() if p.requires_grad}
    return step, phases, names


def swiftrcnn_trainer(kind, weights_path, images, targets):
    """(step, phases, parameter names) of swiftrcnn, as torchvision_trainer."""
    from swiftrcnn import models, optim
    model = getattr(models, f"{kind}_resnet50_fpn")(weights=weights_path, min_size=MIN_SIZE, max_size=MAX_SIZE,
                                                    trainable_backbone_layers=TRAINABLE_LAYERS).train()
    optimizer = optim.SGD(model.parameters(), **SGD_ARGS)

    def step():
        return model.train_step(images, targets, optimizer)

    def phases():
        t0 = time.perf_counter()
        model.zero_grad()
        t1 = time.perf_counter()
        losses = model(images, targets)
        t2 = time.perf_counter()
        model.backward(losses)
        t3 = time.perf_counter()
        optimizer.step()
        t4 = time.perf_counter()
        return losses, dict(zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)))
    names = {name for name, _ in model.named_parameters()}
    return step, phases, names


# ---- peak memory, one child process per library -------------------------------------------------------------------

def status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def reset_peak():
    """Resets this process's VmHWM to its current resident size (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def run_child(library, kind, weights_path, threads, isa):
    """Builds one library's model and optimizer, runs CHILD_STEPS training steps, prints JSON with memory figures.
    VmHWM, not ru_maxrss: Linux carries that over fork and exec, so a child would report the parent's peak."""
    images, targets = batch(kind == "maskrcnn")
    info = {}
    if library == "torchvision":
        import torch
        torch.set_num_threads(threads)
        model = torchvision_model(kind)
        state = torch.load(weights_path)
        model.load_state_dict(state)
        del state
        step = torchvision_trainer(model, images, targets)[0]
    else:
        swiftrcnn = _machine.apply_isa(isa)
        swiftrcnn.set_num_threads(threads)
        info["isa"] = swiftrcnn.get_isa()
        step = swiftrcnn_trainer(kind, weights_path, images, targets)[0]
    base = status_kib("VmRSS")
    build_peak = status_kib("VmHWM")
    reset = reset_peak()
    losses = [step() for _ in range(CHILD_STEPS)]
    steps_peak = status_kib("VmHWM")
    if library == "swiftrcnn":
        assert "torch" not in sys.modules
    print(json.dumps(dict(after_build_kib=base, peak_kib=max(build_peak, steps_peak), build_peak_kib=build_peak,
                          steps_peak_kib=steps_peak if reset else None, losses=losses, **info)))


def child_memory(library, kind, weights_path, threads, isa):
    cmd = [sys.executable, __file__, "--threads", str(threads), "--child", library, kind, weights_path]
    if isa:
        cmd += ["--isa", isa]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# ---- timing --------------------------------------------------------------------------------------------------------

def timed(fn):
    """(seconds, result) of one call, after a pause for the other library's thread pool to settle."""
    time.sleep(SETTLE_SECONDS)
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def best_times(fns, repeats):
    """Each function's best time of `repeats` calls after a warm-up call, the libraries taking turns (one step of
    each per round, so that a change in the machine's load falls on both); and the results of every call."""
    best = dict.fromkeys(fns, math.inf)
    results = {name: [fn()] for name, fn in fns.items()}
    for _ in range(repeats):
        for name, fn in fns.items():
            t, result = timed(fn)
            best[name] = min(best[name], t)
            results[name].append(result)
    return best, results


def best_phases(fns, repeats):
    """Each function's best time per phase (and best sum) over `repeats` phased steps, the libraries taking turns;
    and the losses of every call."""
    best = {name: dict.fromkeys(PHASES + ("total",), math.inf) for name in fns}
    losses = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            time.sleep(SETTLE_SECONDS)
            loss, seconds = fn()
            losses[name].append(loss)
            seconds["total"] = sum(seconds.values())
            best[name] = {k: min(best[name][k], seconds[k]) for k in best[name]}
    return best, losses


def finite(losses):
    return all(math.isfinite(v) for step in losses for v in step.values())


def mib(kib):
    return None if kib is None else kib / 1024


def main():
    args = parse_args()
    if args.child:
        run_child(*args.child, args.threads, args.isa)
        return
    kinds = [k.strip() for k in args.only.split(",") if k.strip()]
    for k in kinds:
        if k not in KINDS:
            _machine.fail(f"--only: unknown model {k!r}; expected some of {', '.join(KINDS)}")
    swiftrcnn = _machine.apply_isa(args.isa)  # exits with code 2 if the CPU lacks the path
    import torch
    import torchvision

    torch.set_num_threads(args.threads)
    swiftrcnn.set_num_threads(args.threads)
    repeats = 2 if args.quick else 3
    load_before = os.getloadavg()
    versions = dict(torch=torch.__version__, torchvision=torchvision.__version__, swiftrcnn=swiftrcnn.__version__)
    sizes = " and ".join(f"{h}x{w}" for h, w in SIZES)
    print(f"one training step (forward + backward + SGD) on 2 images ({sizes}, {' and '.join(map(str, BOXES))} "
          f"boxes), min_size {MIN_SIZE}, max_size {MAX_SIZE}, trainable_backbone_layers {TRAINABLE_LAYERS}, "
          f"{args.threads} threads, best of {repeats} after a warm-up step")
    print(_machine.header_line(args.threads))
    print(", ".join(f"{k} {v}" for k, v in versions.items()) +
          " | load average {:.2f} {:.2f} {:.2f}".format(*load_before))
    print("each library draws its own random samples (anchors, proposals): the losses differ, the work does not")
    header = f"{'model':<12} {'torchvision s':>13} {'swiftrcnn s':>12} {'ratio':>6}  " \
             f"{'peak MiB torchvision':>20} {'swiftrcnn':>9}"
    print(header)
    print("-" * len(header))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            masks = kind == "maskrcnn"
            images, targets = batch(masks)
            tv_model = torchvision_model(kind)
            weights_path = os.path.join(tmp, f"{kind}.pth")
            torch.save(tv_model.state_dict(), weights_path)
            tv_step, tv_phases, tv_names = torchvision_trainer(tv_model, images, targets)
            sr_step, sr_phases, sr_names = swiftrcnn_trainer(kind, weights_path, images, targets)
            if tv_names != sr_names:
                raise RuntimeError(f"{kind}: the trainable parameters differ: torchvision only "
                                   f"{sorted(tv_names - sr_names)[:5]}, "
                                   f"swiftrcnn only {sorted(sr_names - tv_names)[:5]}")
            seconds, losses = best_times(dict(torchvision=tv_step, swiftrcnn=sr_step), repeats)
            tv_s, sr_s = seconds["torchvision"], seconds["swiftrcnn"]
            tv_losses, sr_losses = losses["torchvision"], losses["swiftrcnn"]
            profile = None
            if args.profile:
                profile, prof_losses = best_phases(dict(torchvision=tv_phases, swiftrcnn=sr_phases), repeats)
                tv_losses += prof_losses["torchvision"]
                sr_losses += prof_losses["swiftrcnn"]
            del tv_step, tv_phases, sr_step, sr_phases, tv_model
            for name, losses in (("torchvision", tv_losses), ("swiftrcnn", sr_losses)):
                if not finite(losses):
                    print(f"warning: {name} {kind}: a loss is not finite: {losses}", flush=True)
            tv_mem = child_memory("torchvision", kind, weights_path, args.threads, args.isa)
            sr_mem = child_memory("swiftrcnn", kind, weights_path, args.threads, args.isa)
            if sr_mem["isa"] != swiftrcnn.get_isa():
                raise RuntimeError(f"the swiftrcnn child ran path {sr_mem['isa']}, not {swiftrcnn.get_isa()}")
            row = dict(model=kind, torchvision_s=tv_s, swiftrcnn_s=sr_s, ratio=tv_s / sr_s,
                       torchvision_peak_mib=mib(tv_mem["peak_kib"]), swiftrcnn_peak_mib=mib(sr_mem["peak_kib"]),
                       torchvision_steps_peak_mib=mib(tv_mem["steps_peak_kib"]),
                       swiftrcnn_steps_peak_mib=mib(sr_mem["steps_peak_kib"]),
                       torchvision_after_build_mib=mib(tv_mem["after_build_kib"]),
                       swiftrcnn_after_build_mib=mib(sr_mem["after_build_kib"]),
                       trainable_parameters=len(sr_names),
                       losses=dict(torchvision=tv_losses, swiftrcnn=sr_losses),
                       child_losses=dict(torchvision=tv_mem["losses"], swiftrcnn=sr_mem["losses"]),
                       profile=profile)
            rows.append(row)
            print(f"{kind:<12} {tv_s:13.3f} {sr_s:12.3f} {tv_s / sr_s:6.2f}  "
                  f"{row['torchvision_peak_mib']:20.0f} {row['swiftrcnn_peak_mib']:9.0f}", flush=True)

    load_after = os.getloadavg()
    print(f"\nmemory (MiB; child process per library, {CHILD_STEPS} steps): resident after building model and "
          "optimizer / peak during the steps / peak of the process")
    for row in rows:
        cells = []
        for name in ("torchvision", "swiftrcnn"):
            steps = row[f"{name}_steps_peak_mib"]
            cells.append(f"{name} {row[f'{name}_after_build_mib']:.0f} / "
                         f"{'-' if steps is None else f'{steps:.0f}'} / {row[f'{name}_peak_mib']:.0f}")
        print(f"{row['model']:<12} " + ", ".join(cells))
    print("\nlosses of the last timed step (each library's own samples):")
    for row in rows:
        for name in ("torchvision", "swiftrcnn"):
            last = row["losses"][name][repeats]
            print(f"{row['model']:<12} {name:<12} " + " ".join(f"{k} {v:.4f}" for k, v in last.items()))
    if args.profile:
        print("\nphases of a step (s, best of each; swiftrcnn's train_step does forward and backward in one call):")
        header = f"{'model':<12} {'library':<12} " + " ".join(f"{p:>9}" for p in PHASES) + f" {'sum':>9} {'step':>9}"
        print(header)
        print("-" * len(header))
        for row in rows:
            for name in ("torchvision", "swiftrcnn"):
                p = row["profile"][name]
                print(f"{row['model']:<12} {name:<12} " + " ".join(f"{p[k]:9.3f}" for k in PHASES) +
                      f" {p['total']:9.3f} {row[f'{name}_s']:9.3f}")
    print("\nload average before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}".format(*load_before, *load_after))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {**_machine.describe(args.threads), "repeats": repeats, "python": sys.version.split()[0], **versions,
            "image_sizes": [list(s) for s in SIZES], "boxes_per_image": list(BOXES), "min_size": MIN_SIZE,
            "max_size": MAX_SIZE, "trainable_backbone_layers": TRAINABLE_LAYERS, "sgd": SGD_ARGS,
            "child_steps": CHILD_STEPS, "load_average_before": list(load_before),
            "load_average_after": list(load_after),
            "note": "each library draws its own random samples; every timed step also updates the weights"}
    out.write_text(json.dumps(dict(threads=args.threads, repeats=repeats, meta=meta, rows=rows), indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
