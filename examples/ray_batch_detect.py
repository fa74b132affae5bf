"""Detect objects in a folder of pictures with Ray Data: a pool of actors, each holding one swiftrcnn model.

    pip install swiftrcnn[tools] "ray[data]"
    python examples/ray_batch_detect.py photos/ --weights detector.safetensors --out detections.json --actors 2

`detect_folder` lists the pictures (`swiftrcnn.tools.find_images`: files, or folders searched recursively), makes
a Ray dataset of their paths and image ids, and maps `Detector` over it with `map_batches`: a stateful callable
class, so each of the `concurrency` actors loads the model once, in `__init__`, from its weight file
(`swiftrcnn.models.load`), and then runs batch after batch through it. The actors read the pictures themselves with
`swiftrcnn.io.read_image` (the decoding of `swiftrcnn detect`, EXIF orientation included; `ray.data.read_images`
would work too, but decodes differently), so the detections are those of a single-process run. The result is a
list in COCO's results format (`swiftrcnn.tools.to_coco_results`, as `swiftrcnn detect --json` writes: image ids
are the pictures' positions in sorted order from 1, or the ids of a COCO annotation file by file name).

The model may be given as a weight file or as a model `swiftrcnn.models.load` built: swiftrcnn models pickle as
their weight file's path (and load settings), so Ray sends the path, not the arrays, and every actor loads the
file itself -- on a cluster, every node must see it at the same path. Each actor reserves one CPU and runs the
model on `threads` threads (1 by default), so the actors do not compete for cores.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Union

import numpy as np

import swiftrcnn
from swiftrcnn import models, tools
from swiftrcnn.io import read_image

ModelSource = Union[str, "os.PathLike[str]", models.FasterRCNN]


class Detector:
    """What each actor runs: built once per actor (loads the model), then called with batches of rows
    {"path": (B,) str, "image_id": (B,) int}; returns {"image_id", "path", "results": (B,) JSON strings, each the
    list of one picture's detections in COCO's results format}."""

    def __init__(self, model: ModelSource, score_threshold: float = 0.0, threads: int = 1, **overrides: Any) -> None:
        swiftrcnn.set_num_threads(threads)
        if isinstance(model, models.FasterRCNN):
            self.model = model              # unpickled in this actor: loaded here from its weight file
        else:
            self.model = models.load(model, **overrides)
        self.score_threshold = score_threshold

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = [read_image(str(path)) for path in batch["path"]]
        results = self.model(images)
        encoded = [json.dumps(tools.to_coco_results(result, int(image_id), self.score_threshold))
                   for result, image_id in zip(results, batch["image_id"])]
        return {"image_id": np.asarray(batch["image_id"]), "path": np.asarray(batch["path"]),
                "results": np.array(encoded, dtype=object)}


def detect_folder(model: ModelSource, inputs: Any, *, batch_size: int = 4, concurrency: int = 2,
                  score_threshold: float = 0.0, threads: int = 1, annotations: Any = None) -> list[dict[str, Any]]:
    """The detections of every picture of `inputs` (files or folders) by `model` (a weight file `model.save`
    wrote, or a model `swiftrcnn.models.load` built), computed by `concurrency` Ray actors, `batch_size` pictures
    per call: COCO results entries ordered by image id (see the module). Starts a local Ray instance unless one
    is running (`ray.init` first to choose the cluster or the CPUs)."""
    import ray

    paths = tools.find_images(inputs)
    if not paths:
        raise ValueError("inputs: no pictures found")
    input_list = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    roots = [Path(p) for p in input_list if Path(p).is_dir()]
    ids = tools.image_ids(paths, annotations, roots)
    if not isinstance(model, models.FasterRCNN):
        model = os.path.abspath(model)      # the actors' working folder is not ours
    module = sys.modules.get(Detector.__module__)
    if module is not None and module.__name__ != "__main__":
        # This file is an example, not an installed module the workers could import: send its class by value.
        ray.cloudpickle.register_pickle_by_value(module)
    rows = [{"path": str(p.resolve()), "image_id": ids[p]} for p in paths]
    dataset = ray.data.from_items(rows).map_batches(
        Detector, fn_constructor_kwargs={"model": model, "score_threshold": score_threshold, "threads": threads},
        batch_size=batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=1)
    done = sorted(dataset.take_all(), key=lambda row: int(row["image_id"]))
    return [entry for row in done for entry in json.loads(row["results"])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="picture files or folders")
    parser.add_argument("--weights", required=True, help="weight file written by model.save")
    parser.add_argument("--out", required=True, help="COCO results JSON to write")
    parser.add_argument("--annotations", help="COCO annotation file giving the image ids by file name")
    parser.add_argument("--batch-size", type=int, default=4, help="pictures per model call (default 4)")
    parser.add_argument("--actors", type=int, default=2, help="actors, one model each (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="threads per actor (default 1)")
    parser.add_argument("--score-threshold", type=float, default=0.0, help="keep detections scoring at least this")
    parser.add_argument("--address", help="Ray cluster to join (default: a local instance)")
    args = parser.parse_args(argv)

    import ray

    if not ray.is_initialized():
        ray.init(address=args.address)
    results = detect_folder(args.weights, args.inputs, batch_size=args.batch_size, concurrency=args.actors,
                            score_threshold=args.score_threshold, threads=args.threads,
                            annotations=args.annotations)
    Path(args.out).write_text(json.dumps(results, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {len(results)} detections to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
