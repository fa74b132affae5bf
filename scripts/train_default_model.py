"""Trains swiftrcnn's built-in model from scratch, with swiftrcnn alone, and evaluates it.

    python scripts/train_default_model.py    # writes python/swiftrcnn/data/maskrcnn_small_digits.safetensors

The model is `models.maskrcnn_small` (11 classes: background and the digits 0 ... 9), initialised as torchvision
initialises it (`weights="random"`, seed 0). The data set is generated: `--train` scenes of `datasets.synthetic`
(seed 0, scenes 0 ... N-1: digits in Pillow's font over scikit-image's photographs, exact boxes and masks), and
`--val` held-out scenes (seed 1) written as COCO files under `--work` for the evaluation. Training is the reference
recipe of torchvision's detection scripts, scaled down: SGD with momentum 0.9 and weight decay 1e-4, batches of
`--batch-size`, a linear warm-up, the rate divided by 10 at two thirds and eleven twelfths of the epochs; the short
side drawn per batch from the model's `min_size` tuple. No flips (a mirrored digit is not a digit).

Every random choice is seeded (scenes, the order of each epoch, the trainer's samples), and swiftrcnn's training
step does not depend on the thread count, so a run replays bit for bit on a machine of the same instruction-set
path (float32 sums are ordered per path). Prints and writes (`--report`) the figures the README quotes: data, epochs,
time, losses, COCO box and mask mAP on the held-out scenes.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import swiftrcnn
from swiftrcnn import models, optim, tools
from swiftrcnn.datasets import CocoDetection, synthetic
from swiftrcnn.io import to_float_image

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "python" / "swiftrcnn" / "data" / "maskrcnn_small_digits.safetensors"
# The README's picture, examples/digits.png: a held-out scene at twice the training size (the model's transform
# brings it back to a short side of 240). Tests/python/test_default_model.py regenerates it.
EXAMPLE_SCENE = dict(seed=2026, index=2, size=(640, 480), heights=(56, 220), objects=(4, 6))


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=2000, help="training scenes (default 2000)")
    parser.add_argument("--val", type=int, default=200, help="held-out scenes for the evaluation (default 200)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--warmup", type=int, default=300, help="warm-up iterations (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "default_model",
                        help="folder for the held-out scenes (default build/default_model)")
    parser.add_argument("--report", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--example-only", action="store_true", help="only write examples/digits.png")
    args = parser.parse_args()

    from PIL import Image

    options = {k: v for k, v in EXAMPLE_SCENE.items() if k not in ("seed", "index")}
    example, _ = synthetic.scene(EXAMPLE_SCENE["seed"], EXAMPLE_SCENE["index"], **options)
    Image.fromarray(example).save(ROOT / "examples" / "digits.png", format="PNG", compress_level=6)
    if args.example_only:
        return

    started = time.time()
    scenes = [synthetic.scene(args.seed, i) for i in tqdm(range(args.train), desc="generating", unit="scene")]
    images = [to_float_image(image) for image, _ in scenes]
    targets = [target for _, target in scenes]
    del scenes
    generated = time.time() - started

    model = models.maskrcnn_small(weights="random", seed=args.seed).train()
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    milestones = [round(args.epochs * 2 / 3), round(args.epochs * 11 / 12)]
    schedule = optim.WarmupMultiStepLR(opt, milestones=milestones, warmup_iters=args.warmup)
    epoch_losses = []
    train_started = time.time()
    for epoch in range(args.epochs):
        order = np.random.default_rng([args.seed, epoch]).permutation(len(images))
        batches = [order[i:i + args.batch_size] for i in range(0, len(order), args.batch_size)]
        running: dict[str, float] = {}
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch")
        for step, batch in enumerate(bar, 1):
            losses = model.train_step([images[i] for i in batch], [targets[i] for i in batch], opt)
            schedule.step()
            for k, v in losses.items():
                running[k] = running.get(k, 0.0) + v
            bar.set_postfix(loss=f"{sum(running.values()) / step:.3f}", lr=f"{opt.param_groups[0]['lr']:.4f}")
        schedule.step_epoch()
        epoch_losses.append({k: v / len(batches) for k, v in running.items()})
        print(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.4f}" for k, v in epoch_losses[-1].items()), flush=True)
    trained = time.time() - train_started

    model.eval()
    model.categories = ["__background__"] + [c["name"] for c in synthetic.CATEGORIES]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.1f} MiB)")

    val_annotations = synthetic.make_scenes(args.work / "val", args.val, seed=args.seed + 1)
    evaluated = tools.evaluate(model, CocoDetection(args.work / "val" / "images", val_annotations, masks=False),
                               progress=True, verbose=True)
    stats = {f"{kind}_{name}": evaluated[kind][name] for kind in ("bbox", "segm") for name in ("AP", "AP50", "AP75")}
    report = {
        "cpu": cpu_name(), "swiftrcnn": swiftrcnn.__version__, "train_scenes": args.train, "val_scenes": args.val,
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
        "generate_seconds": round(generated, 1), "train_seconds": round(trained, 1),
        "epoch_losses": epoch_losses, **stats}
    print(json.dumps(report, indent=1))
    if args.report:
        args.report.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
