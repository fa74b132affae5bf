"""examples/ray_batch_detect.py: a swiftrcnn model mapped over pictures by two Ray Data actors, each loading the
model once from its weight file, gives the detections of a single-process run (`swiftrcnn.tools.detect`)."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from swiftrcnn import models, tools
from swiftrcnn.datasets import synthetic
from tool_utils import small_model

ray = pytest.importorskip("ray", reason="the Ray Data example needs Ray: pip install 'ray[data]' (scripts/test.sh "
                                        "installs it)")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ray_batch_detect.py"
DIGITS = ["__background__"] + [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 * 2**20, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def load_example():
    spec = importlib.util.spec_from_file_location("ray_batch_detect", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ray_batch_detect"] = module     # imported as a module (not run as a script), as a user would
    spec.loader.exec_module(module)
    return module


def test_ray_matches_single_process(tmp_path, local_ray):
    ann = synthetic.make_scenes(tmp_path / "data", 6, seed=3, size=(96, 64), heights=(18, 40))
    images = ann.parent / "images"
    weights = tmp_path / "mask.safetensors"
    small_model(num_classes=11, mask=True, categories=DIGITS).save(weights)
    tools.detect(models.load(weights), [images], json_path=tmp_path / "single.json", score_threshold=0.0,
                 progress=False)
    expected = json.loads((tmp_path / "single.json").read_text())
    assert {r["image_id"] for r in expected} == set(range(1, 7))     # every picture has detections to compare

    example = load_example()
    got = example.detect_folder(weights, images, batch_size=2, concurrency=2)
    assert got == expected
    # A model object travels to the actors as its weight file's path (swiftrcnn models pickle so), with its load
    # settings: a higher threshold gives a subset.
    got = example.detect_folder(models.load(weights, box_score_thresh=0.3), [images], batch_size=4, concurrency=2)
    assert got == [r for r in expected if r["score"] >= 0.3] and got

    out = tmp_path / "ray.json"
    assert example.main([str(images), "--weights", str(weights), "--out", str(out), "--batch-size", "3"]) == 0
    assert json.loads(out.read_text()) == expected
