"""swiftrcnn vs torchvision on the full detector: same weights, same 640x480 image, default min_size=800.

    python bench/detector.py            # Faster R-CNN and Mask R-CNN, best of 5
    python bench/detector.py --quick    # best of 2

Times are measured side by side in this process with the same thread count. Peak memory is measured in one child
process per library (torchvision alone; swiftrcnn alone, without torch imported): the peak resident set size
during inference minus the resident size after the model was built, and the absolute peak. Writes JSON to
bench/results/detector.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json", default=str(ROOT / "results" / "detector.json"))
    p.add_argument("--child", nargs=3, metavar=("LIBRARY", "KIND", "WEIGHTS"), help=argparse.SUPPRESS)
    return p.parse_args()


def image(seed=0):
    """A 640 x 480 test image with some structure (smooth blobs), values in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640] / 100.0
    channels = [0.5 + 0.5 * np.sin(x * rng.uniform(0.5, 2) + y * rng.uniform(0.5, 2) + rng.uniform(0, 6))
                for _ in range(3)]
    return np.clip(np.stack(channels) + rng.normal(0, 0.05, (3, 480, 640)), 0, 1).astype(np.float32)


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def peak_kib():
    """Peak resident size of this process image (VmHWM). Not ru_maxrss: Linux carries that over fork and exec, so a
    child would report the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run_child(library, kind, weights_path, threads):
    """Builds one library's model, runs it 3 times, prints JSON with memory figures."""
    img = image()
    if library == "torchvision":
        import torch
        import torchvision
        torch.set_num_threads(threads)
        build = getattr(torchvision.models.detection, f"{kind}_resnet50_fpn")
        model = build(weights=None, weights_backbone=None).eval()
        model.load_state_dict(torch.load(weights_path))
        base = rss_kib()
        with torch.no_grad():
            for _ in range(3):
                model([torch.from_numpy(img)])
    else:
        import swiftrcnn
        from swiftrcnn import models
        swiftrcnn.set_num_threads(threads)
        model = getattr(models, f"{kind}_resnet50_fpn")(weights=weights_path)
        base = rss_kib()
        for _ in range(3):
            model([img])
        assert "torch" not in sys.modules
    print(json.dumps(dict(after_build_kib=base, peak_kib=peak_kib())))


def child_memory(library, kind, weights_path, threads):
    out = subprocess.run([sys.executable, __file__, "--threads", str(threads), "--child", library, kind,
                          weights_path], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    args = parse_args()
    if args.child:
        run_child(*args.child, args.threads)
        return
    import torch
    import torchvision
    import swiftrcnn
    from swiftrcnn import models

    torch.set_num_threads(args.threads)
    swiftrcnn.set_num_threads(args.threads)
    repeats = 2 if args.quick else 5
    img = image()
    rows = []
    print(f"detector on one 640x480 image, min_size 800, {args.threads} threads, best of {repeats}")
    header = f"{'model':<14} {'torchvision s':>13} {'swiftrcnn s':>12} {'ratio':>6}  {'tv peak MiB':>11} " \
             f"{'sr peak MiB':>11}  detections (tv / sr)"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("fasterrcnn", "maskrcnn"):
            torch.manual_seed(0)
            tv_model = getattr(torchvision.models.detection, f"{kind}_resnet50_fpn")(
                weights=None, weights_backbone=None).eval()
            # Random weights detect nothing above box_score_thresh; favour one class so the heads (and the mask
            # branch) see a realistic load of up to 100 detections.
            with torch.no_grad():
                tv_model.roi_heads.box_predictor.cls_score.bias[1] += 12.0
            weights_path = os.path.join(tmp, f"{kind}.pth")
            torch.save(tv_model.state_dict(), weights_path)
            sr_model = getattr(models, f"{kind}_resnet50_fpn")(weights=weights_path)
            timg = torch.from_numpy(img)

            def tv_run():
                with torch.no_grad():
                    return tv_model([timg])

            def best(fn):
                fn()
                t = float("inf")
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    fn()
                    t = min(t, time.perf_counter() - t0)
                return t

            tv_s = best(tv_run)
            sr_s = best(lambda: sr_model([img]))
            tv_n = len(tv_run()[0]["boxes"])
            sr_n = len(sr_model([img])[0]["boxes"])
            tv_mem = child_memory("torchvision", kind, weights_path, args.threads)
            sr_mem = child_memory("swiftrcnn", kind, weights_path, args.threads)
            row = dict(model=kind, torchvision_s=tv_s, swiftrcnn_s=sr_s, ratio=tv_s / sr_s,
                       torchvision_peak_mib=tv_mem["peak_kib"] / 1024, swiftrcnn_peak_mib=sr_mem["peak_kib"] / 1024,
                       torchvision_inference_mib=(tv_mem["peak_kib"] - tv_mem["after_build_kib"]) / 1024,
                       swiftrcnn_inference_mib=(sr_mem["peak_kib"] - sr_mem["after_build_kib"]) / 1024,
                       detections=[tv_n, sr_n])
            rows.append(row)
            print(f"{kind:<14} {tv_s:13.3f} {sr_s:12.3f} {tv_s / sr_s:6.2f}  {row['torchvision_peak_mib']:11.0f} "
                  f"{row['swiftrcnn_peak_mib']:11.0f}  {tv_n} / {sr_n}", flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(threads=args.threads, repeats=repeats, rows=rows), indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
