"""The `swiftrcnn` command: detect / eval / convert end to end in-process (`main([...])`) and once through
`python -m swiftrcnn`; help, usage errors (exit 2), runtime errors (exit 1, one line), unreadable pictures."""
import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from swiftrcnn import models, weights
from swiftrcnn.__main__ import main
from swiftrcnn.datasets import synthetic
from tool_utils import random_state, small_model, small_parts

DIGITS = ["__background__"] + [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    ann = synthetic.make_scenes(root / "data", 6, seed=11, size=(96, 64), heights=(18, 50))
    small_model(num_classes=11, mask=True, categories=DIGITS).save(root / "mask.safetensors")
    small_model(num_classes=11).save(root / "faster.safetensors")
    weights.save_safetensors(random_state(small_parts(11)), root / "plain.safetensors")
    return root, ann


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", [[], ["detect"], ["eval"], ["convert"]])
def test_help(capsys, command):
    with pytest.raises(SystemExit) as e:
        main(command + ["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: swiftrcnn")
    expected = {"detect": ["--weights", "--model", "--score-threshold", "--out", "--json", "--labels",
                           "--batch-size", "--num-classes", "--annotations", "fasterrcnn_resnet50_fpn"],
                "eval": ["--weights", "--annotations", "--images", "--json-out", "--model"],
                "convert": ["input", "output"]}.get(command[0] if command else "", ["detect", "eval", "convert"])
    for option in expected:
        assert option in out, option


@pytest.mark.parametrize("argv,message", [
    ([], "required"),
    (["detect", "x.png", "--model", "maskrcnn_small"], "--model needs --weights"),
    (["detect", "--weights", "w.safetensors"], "INPUT"),
    (["detect", "x.png", "--weights", "w", "--model", "resnet"], "invalid choice"),
    (["detect", "x.png", "--weights", "w", "--batch-size", "0"], "positive"),
    (["detect", "x.png", "--weights", "w", "--score-threshold", "high"], "invalid float"),
    (["detect", "x.png", "--weights", "w", "--num-classes", "3"], "--num-classes only applies with --model"),
    (["eval", "--weights", "w", "--annotations", "a.json"], "--images"),
    (["frobnicate"], "invalid choice"),
])
def test_usage_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "error:" in err


def test_detect_folder(capsys, tmp_path, setup):
    root, ann = setup
    images = ann.parent / "images"
    code, out, err = run(capsys, "detect", images, "--weights", root / "mask.safetensors", "--out", tmp_path / "out",
                         "--json", tmp_path / "det.json", "--score-threshold", "0.2", "--batch-size", "2")
    assert code == 0 and err == ""
    assert f"wrote 6 pictures to {tmp_path / 'out'}" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{i:06d}.png" for i in range(1, 7)]
    results = json.loads((tmp_path / "det.json").read_text())
    assert results and {r["image_id"] for r in results} <= set(range(1, 7))
    assert all(r["score"] >= 0.2 and "segmentation" in r and 1 <= r["category_id"] <= 10 for r in results)
    assert f"wrote {len(results)} detections of 6 pictures" in out


def test_detect_lists_and_skips_unreadable(capsys, tmp_path, setup):
    root, ann = setup
    good = ann.parent / "images" / "000001.png"
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a JPEG")
    code, out, err = run(capsys, "detect", good, bad, "--weights", root / "faster.safetensors",
                         "--score-threshold", "0")
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"swiftrcnn detect: skipped {bad}: ")
    assert lines[-1] == "swiftrcnn detect: error: 1 of 2 pictures could not be read"
    (line,) = out.strip().splitlines()
    assert line.startswith(f"{good}: ") and " detected: " in line


def test_detect_one_picture_with_labels_and_annotation_ids(capsys, tmp_path, setup):
    root, ann = setup
    picture = ann.parent / "images" / "000003.png"
    (tmp_path / "names.txt").write_text("\n".join(["bg"] + [f"digit {d}" for d in range(10)]) + "\n")
    code, out, _ = run(capsys, "detect", picture, "--weights", root / "faster.safetensors", "--out",
                       tmp_path / "drawn.jpg", "--labels", tmp_path / "names.txt", "--json", tmp_path / "d.json",
                       "--annotations", ann, "--score-threshold", "0.1")
    assert code == 0 and f"wrote 1 picture to {tmp_path / 'drawn.jpg'}" in out
    assert Image.open(tmp_path / "drawn.jpg").size == (96, 64)
    assert {r["image_id"] for r in json.loads((tmp_path / "d.json").read_text())} == {3}


def test_runtime_errors_one_line(capsys, tmp_path, setup):
    root, ann = setup
    picture = ann.parent / "images" / "000001.png"
    cases = [
        (["detect", picture, "--weights", root / "plain.safetensors"], "plain checkpoint"),
        (["detect", picture, "--weights", tmp_path / "absent.safetensors"], "No such file"),
        (["detect", tmp_path / "nowhere", "--weights", root / "faster.safetensors"], "no such file or folder"),
        (["detect", picture, "--weights", root / "plain.safetensors", "--model", "maskrcnn_resnet50_fpn"],
         "missing"),
        (["detect", ann.parent / "images", "--weights", root / "faster.safetensors", "--out", tmp_path / "x.png"],
         "give a folder"),
        (["eval", "--weights", root / "faster.safetensors", "--annotations", tmp_path / "none.json", "--images",
          ann.parent / "images"], "none.json"),
    ]
    for argv, message in cases:
        code, out, err = run(capsys, *argv)
        assert code == 1, argv
        assert err.startswith(f"swiftrcnn {argv[0]}: error: ") and message in err, err
        assert len(err.strip().splitlines()) == 1, err


def test_plain_checkpoint_with_model(capsys, tmp_path, setup):
    """--model with a torchvision checkpoint of that builder: ResNet-50-FPN random weights, 3 classes."""
    weights.save_safetensors(models.random_state_dict("faster", 3, 0), tmp_path / "r50.safetensors")
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.full((24, 32, 3), 100, np.uint8)).save(tiny)
    code, out, err = run(capsys, "detect", tiny, "--weights", tmp_path / "r50.safetensors", "--model",
                         "fasterrcnn_resnet50_fpn", "--score-threshold", "0.99")
    assert code == 0, err
    assert out.startswith(f"{tiny}: ")


def test_eval(capsys, tmp_path, setup):
    root, ann = setup
    code, out, err = run(capsys, "eval", "--weights", root / "mask.safetensors", "--annotations", ann, "--images",
                         ann.parent / "images", "--json-out", tmp_path / "stats.json", "--results",
                         tmp_path / "res.json", "--batch-size", "3")
    assert code == 0, err
    assert "IoU metric: bbox" in out and "IoU metric: segm" in out
    assert out.count("Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]") == 2
    stats = json.loads((tmp_path / "stats.json").read_text())
    results = json.loads((tmp_path / "res.json").read_text())
    for iou_type, key in (("bbox", "bbox"), ("segm", "segmentation")):
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(str(ann))
            dt = gt.loadRes([{k: r[k] for k in ("image_id", "category_id", key, "score")} for r in results])
            e = COCOeval(gt, dt, iou_type)
            e.evaluate()
            e.accumulate()
            e.summarize()
        assert list(stats[iou_type].values()) == list(e.stats)
        assert f"= {e.stats[0]:0.3f}" in out


def test_convert(capsys, tmp_path):
    import torch

    state = random_state(small_parts())
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / "m.pth")
    code, out, _ = run(capsys, "convert", tmp_path / "m.pth", tmp_path / "m.safetensors")
    assert code == 0 and out.startswith(f"wrote {len(state)} tensors")
    loaded = weights.load_state_dict(tmp_path / "m.safetensors")
    assert all(np.array_equal(loaded[k], v) for k, v in state.items())


def test_python_dash_m(tmp_path, setup):
    root, ann = setup
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "swiftrcnn", "detect", str(ann.parent / "images"), "--weights",
                           str(root / "mask.safetensors"), "--json", str(tmp_path / "det.json"), "--out",
                           str(tmp_path / "drawn")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 6 pictures" in proc.stdout
    assert len(list((tmp_path / "drawn").iterdir())) == 6
    json.loads((tmp_path / "det.json").read_text())
    usage = subprocess.run([sys.executable, "-m", "swiftrcnn", "detect"], capture_output=True, text=True, env=env,
                           timeout=60)
    assert usage.returncode == 2 and "swiftrcnn detect: error:" in usage.stderr
