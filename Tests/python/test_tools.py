"""Self-describing weight files (model.save metadata, models.load, parts.from_architecture) and swiftrcnn.tools
(detect, evaluate, COCO results) on small random-weight detectors, real files and real pycocotools."""
import contextlib
import io
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from swiftrcnn import models, tools, weights
from swiftrcnn.io import read_image
from swiftrcnn.datasets import COCO_CATEGORIES, CocoDetection, synthetic
from swiftrcnn.models import parts
from tool_utils import random_state, small_model, small_parts, state_shapes

DIGITS = ["__background__"] + [str(d) for d in range(10)]


def picture(path, h=48, w=64, seed=0):
    rgb = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return rgb.transpose(2, 0, 1) / np.float32(255)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Eight small synthetic scenes and a saved Mask R-CNN for the 10 digits."""
    root = tmp_path_factory.mktemp("tools")
    ann = synthetic.make_scenes(root / "data", 8, seed=5, size=(96, 64), heights=(18, 50))
    path = root / "mask.safetensors"
    small_model(num_classes=11, mask=True, categories=DIGITS).save(path)
    return root, ann, path


# ---- weight files ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [False, True])
def test_small_model_keys_are_torchvisions(mask):
    from torch import nn
    from torchvision.models.detection import FasterRCNN, MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    backbone = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 32, 3, padding=1), nn.ReLU())
    backbone.out_channels = 32
    common = dict(rpn_anchor_generator=AnchorGenerator(((32, 64, 128),), ((0.5, 1.0, 2.0),)),
                  box_roi_pool=MultiScaleRoIAlign(["0"], 7, 2), box_head=TwoMLPHead(32 * 49, 64),
                  box_predictor=FastRCNNPredictor(64, 4))
    if mask:
        tv = MaskRCNN(backbone, mask_roi_pool=MultiScaleRoIAlign(["0"], 14, 2),
                      mask_head=MaskRCNNHeads(32, [32, 32], 1), mask_predictor=MaskRCNNPredictor(32, 32, 4), **common)
    else:
        tv = FasterRCNN(backbone, **common)
    expected = {k: tuple(v.shape) for k, v in tv.state_dict().items()}
    assert state_shapes(small_parts(4, mask)) == expected


@pytest.mark.parametrize("mask", [False, True])
def test_save_and_load(tmp_path, mask):
    model = small_model(num_classes=4, mask=mask, categories=["bg", "a", "b", "c"], box_score_thresh=0.1)
    path = tmp_path / "m.safetensors"
    model.save(path)
    meta = weights.read_metadata(path)
    assert meta["swiftrcnn.format"] == "1" and meta["swiftrcnn.kind"] == ("mask" if mask else "faster")
    assert json.loads(meta["swiftrcnn.architecture"]) == model.architecture
    assert meta["swiftrcnn.num_classes"] == "4"
    assert json.loads(meta["swiftrcnn.categories"]) == ["bg", "a", "b", "c"]
    assert json.loads(meta["swiftrcnn.transform"]) == {"min_size": 96, "max_size": 160,
                                                        "image_mean": [0.485, 0.456, 0.406],
                                                        "image_std": [0.229, 0.224, 0.225]}
    assert json.loads(meta["swiftrcnn.detection"])["box_score_thresh"] == 0.1
    # The file is still a plain state dict with torchvision's names.
    assert set(weights.load_state_dict(path)) == set(state_shapes(small_parts(4, mask)))

    loaded = models.load(path)
    assert type(loaded) is type(model) and loaded.kind == model.kind
    assert loaded.architecture == model.architecture and loaded.config == model.config
    assert loaded.categories == ["bg", "a", "b", "c"]
    image = np.random.default_rng(1).random((3, 48, 64), dtype=np.float32)
    (a,), (b,) = model([image]), loaded([image])
    assert len(a["scores"]) > 0 and a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    # Overrides replace saved settings; the architecture is fixed.
    strict = models.load(path, box_score_thresh=0.9, categories=None)
    assert strict.config["box_score_thresh"] == 0.9 and strict.categories is None
    assert len(strict([image])[0]["scores"]) < len(a["scores"])
    with pytest.raises(TypeError, match="num_classes"):
        models.load(path, num_classes=3)
    with pytest.raises(TypeError, match="box_head"):
        models.load(path, box_head=parts.TwoMLPHead(32 * 49, 8))


def test_categories_attribute(tmp_path):
    model = small_model()
    assert model.categories is None
    model.categories = ("bg", "x", "y", "z")
    assert model.categories == ["bg", "x", "y", "z"]
    with pytest.raises(ValueError, match="categories"):
        model.categories = ["bg", "x"]
    with pytest.raises(TypeError, match="categories"):
        model.categories = "bgxyz"
    with pytest.raises(ValueError, match="categories"):
        small_model(categories=["a"])
    model.categories = None
    model.save(tmp_path / "m.safetensors")
    assert "swiftrcnn.categories" not in weights.read_metadata(tmp_path / "m.safetensors")
    assert models.load(tmp_path / "m.safetensors").categories is None


def test_plain_and_foreign_files(tmp_path):
    state = random_state(small_parts())
    weights.save_safetensors(state, tmp_path / "plain.safetensors")
    assert weights.read_metadata(tmp_path / "plain.safetensors") == {}
    assert models.describe(tmp_path / "plain.safetensors") is None
    with pytest.raises(ValueError, match="plain checkpoint.*--model"):
        models.load(tmp_path / "plain.safetensors")
    import torch

    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / "plain.pth")
    assert weights.read_metadata(tmp_path / "plain.pth") == {}
    with pytest.raises(ValueError, match="plain checkpoint"):
        models.load(tmp_path / "plain.pth")
    model = small_model()
    newer = dict(model.metadata(), **{"swiftrcnn.format": "99"})
    weights.save_safetensors(model.state_dict(), tmp_path / "newer.safetensors", metadata=newer)
    with pytest.raises(ValueError, match="newer"):
        models.load(tmp_path / "newer.safetensors")
    broken = dict(model.metadata(), **{"swiftrcnn.architecture": "{not json"})
    weights.save_safetensors(model.state_dict(), tmp_path / "broken.safetensors", metadata=broken)
    with pytest.raises(ValueError, match="architecture"):
        models.load(tmp_path / "broken.safetensors")
    with pytest.raises(TypeError, match="metadata"):
        weights.save_safetensors(state, tmp_path / "x.safetensors", metadata={"a": 1})


def builder_parts():
    """The parts of every builder (as the builders compose them), and the small models'."""
    backbone, head = parts.resnet50_c4()
    v2 = dict(rpn_head=parts.RPNHead(256, 3, conv_depth=2),
              box_head=parts.FastRCNNConvFCHead((256, 7, 7), [256] * 4, [1024], "batch_norm2d"))
    anchors = parts.AnchorGenerator(((128, 256, 512),), ((0.5, 1.0, 2.0),))
    return [
        ("faster", dict(backbone=parts.ResNet50FPN())),
        ("mask", dict(backbone=parts.ResNet50FPN())),
        ("faster", dict(backbone=parts.ResNet50FPN(fpn_norm=True), **v2)),
        ("mask", dict(backbone=parts.ResNet50FPN(fpn_norm=True), **v2,
                      mask_head=parts.MaskRCNNHeads(256, [256] * 4, 1, "batch_norm2d"))),
        ("keypoint", dict(backbone=parts.ResNet50FPN(), keypoint_predictor=parts.KeypointRCNNPredictor(512, 17))),
        ("keypoint", dict(backbone=parts.ResNet50FPN(), keypoint_predictor=parts.KeypointRCNNPredictor(512, 5))),
        ("faster", dict(backbone=parts.vgg16_features(), rpn_anchor_generator=anchors,
                        box_roi_pool=parts.RoIPool(7, 1 / 16), box_head=parts.TwoMLPHead(512 * 49, 4096),
                        box_predictor=parts.FastRCNNPredictor(4096, 7))),
        ("faster", dict(backbone=backbone, rpn_anchor_generator=anchors,
                        box_roi_pool=parts.MultiScaleRoIAlign(["0"], 14, 2), box_head=head,
                        box_predictor=parts.FastRCNNPredictor(2048, 7))),
        ("faster", small_parts(7)),
        ("mask", small_parts(7, mask=True)),
    ]


@pytest.mark.parametrize("kind,given", builder_parts())
def test_from_architecture_round_trip(kind, given):
    spec = parts.architecture(num_classes=7, **{"rpn_anchor_generator": None, "rpn_head": None, "box_roi_pool": None,
                                                 "box_head": None, **given})
    rebuilt = parts.from_architecture(json.loads(json.dumps(spec)), 7, kind)
    assert rebuilt["box_predictor"].num_classes == 7
    assert parts.architecture(num_classes=7, **rebuilt) == spec
    assert rebuilt["backbone"] == given["backbone"]


def test_from_architecture_errors():
    spec = parts.architecture(num_classes=3, rpn_head=None, **small_parts(3))
    with pytest.raises(ValueError, match="kind"):
        parts.from_architecture(spec, 3, "retina")
    with pytest.raises(ValueError, match="mask_head"):
        parts.from_architecture(dict(spec, mask_head={"layers": [8]}), 3, "faster")
    bad = json.loads(json.dumps(spec))
    bad["backbone"]["layers"][0]["type"] = "conv3d"
    with pytest.raises(ValueError, match="conv3d"):
        parts.from_architecture(bad, 3)
    del bad["backbone"]["layers"][0]["type"]
    with pytest.raises(ValueError, match=r"backbone.layers\[0\]"):
        parts.from_architecture(bad, 3)


def test_load_model_by_builder_name(tmp_path):
    """A torchvision checkpoint of a builder: num_classes comes from the checkpoint."""
    weights.save_safetensors(models.random_state_dict("faster", 5, seed=0), tmp_path / "r50.safetensors")
    model = tools.load_model(tmp_path / "r50.safetensors", "fasterrcnn_resnet50_fpn")
    assert model.config["num_classes"] == 5 and model.builder == "fasterrcnn_resnet50_fpn" and not model.reinitialized
    assert tools.resolve_labels(None, model) is None
    with pytest.raises(ValueError, match="model"):
        tools.load_model(tmp_path / "r50.safetensors", "resnet50")
    with pytest.raises(ValueError, match="num_classes"):
        tools.load_model(tmp_path / "r50.safetensors", None, 5)


# ---- detect -------------------------------------------------------------------------------------------------------

def test_find_images_and_ids(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / "a" / ".hidden").mkdir()
    for name in ["a/x.png", "a/deep/y.JPG", "a/.hidden/h.png", "a/.z.png", "b.webp"]:
        picture(tmp_path / name) if not name.endswith(".webp") else Image.new("RGB", (4, 4)).save(tmp_path / name)
    (tmp_path / "a" / "notes.txt").write_text("no")
    (tmp_path / "raw.dat").write_bytes(b"given explicitly: taken whatever the extension")
    found = tools.find_images([tmp_path / "a", tmp_path / "b.webp", tmp_path / "raw.dat", tmp_path / "a" / "x.png"])
    assert found == sorted([tmp_path / "a/x.png", tmp_path / "a/deep/y.JPG", tmp_path / "b.webp", tmp_path / "raw.dat"])
    with pytest.raises(ValueError, match="nowhere"):
        tools.find_images([tmp_path / "nowhere"])
    assert tools.image_ids(found) == {p: i + 1 for i, p in enumerate(found)}
    ann = {"images": [{"id": 40, "file_name": "deep/y.JPG"}, {"id": 41, "file_name": "elsewhere/x.png"},
                      {"id": 42, "file_name": "b.webp"}, {"id": 43, "file_name": "raw.dat"}],
           "annotations": [], "categories": []}
    ids = tools.image_ids(found, ann, roots=[tmp_path / "a"])
    assert ids == {tmp_path / "a/deep/y.JPG": 40, tmp_path / "a/x.png": 41, tmp_path / "b.webp": 42,
                   tmp_path / "raw.dat": 43}
    ann["images"].pop()
    with pytest.raises(ValueError, match="raw.dat"):
        tools.image_ids(found, ann, roots=[tmp_path / "a"])


def test_resolve_labels(tmp_path):
    assert tools.resolve_labels("coco") is COCO_CATEGORIES
    (tmp_path / "l.json").write_text('["bg", "cat"]')
    (tmp_path / "d.json").write_text('{"1": "cat", "3": "dog"}')
    (tmp_path / "l.txt").write_text("bg\ncat\n")
    assert tools.resolve_labels(tmp_path / "l.json") == ["bg", "cat"]
    assert tools.resolve_labels(str(tmp_path / "d.json")) == {1: "cat", 3: "dog"}
    assert tools.resolve_labels(tmp_path / "l.txt") == ["bg", "cat"]
    with pytest.raises(ValueError, match="labels"):
        tools.resolve_labels(tmp_path / "missing.json")
    model = small_model(num_classes=91)
    assert tools.resolve_labels(None, model) is COCO_CATEGORIES
    model.categories = [f"c{i}" for i in range(91)]
    assert tools.resolve_labels(None, model) == model.categories


def test_detect_outputs(tmp_path, digits):
    _, ann, path = digits
    model = models.load(path)
    images = sorted((ann.parent / "images").iterdir())
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for i, image in enumerate(images[:3]):
        (tmp_path / "in" / ("sub" if i == 2 else "") / image.name).write_bytes(image.read_bytes())
    Image.open(images[0]).convert("RGB").save(tmp_path / "in" / "photo.jpg")
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG broken")
    errors = []
    report = tools.detect(model, [tmp_path / "in"], out=tmp_path / "out", json_path=tmp_path / "det.json",
                          score_threshold=0.3, batch_size=2, on_error=lambda p, e: errors.append(p))
    assert errors == [tmp_path / "in" / "broken.png"] and len(report.skipped) == 1
    assert len(report.processed) == 4
    out = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.*"))
    assert out == ["000001.png", "000002.png", "photo.jpg", "sub/000003.png"]
    drawn = np.asarray(Image.open(tmp_path / "out" / "000001.png"))
    assert drawn.shape == (64, 96, 3) and (drawn != np.asarray(Image.open(images[0]))).any()
    # The JSON is the model's detections at the threshold, ids in sorted order of the inputs.
    results = json.loads((tmp_path / "det.json").read_text())
    assert len(results) == report.detections > 0
    found = tools.find_images([tmp_path / "in"])
    ids = {p: i + 1 for i, p in enumerate(found)}
    first = found[0]
    (direct,) = model([read_image(first)])
    keep = direct["scores"] >= 0.3
    mine = [r for r in results if r["image_id"] == ids[first]]
    assert len(mine) == keep.sum()
    boxes = direct["boxes"][keep]
    np.testing.assert_allclose([r["bbox"] for r in mine], np.c_[boxes[:, :2], boxes[:, 2:] - boxes[:, :2]],
                               rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal([r["category_id"] for r in mine], direct["labels"][keep])
    np.testing.assert_array_equal(np.float32([r["score"] for r in mine]), direct["scores"][keep])
    assert all(set(r) == {"image_id", "category_id", "bbox", "score", "segmentation"} for r in results)
    # Without on_error an unreadable picture raises.
    with pytest.raises(ValueError, match="broken.png"):
        tools.detect(model, [tmp_path / "in" / "broken.png"], json_path=tmp_path / "x.json")


def test_detect_single_picture_and_batches(tmp_path, digits):
    _, ann, path = digits
    model = models.load(path)
    image = ann.parent / "images" / "000002.png"
    report = tools.detect(model, image, out=tmp_path / "one.jpg", score_threshold=0.0)
    assert report.written == [tmp_path / "one.jpg"] and Image.open(tmp_path / "one.jpg").format == "JPEG"
    with pytest.raises(ValueError, match="folder"):
        tools.detect(model, [ann.parent / "images"], out=tmp_path / "many.png")
    with pytest.raises(ValueError, match="no pictures"):
        (tmp_path / "empty").mkdir()
        tools.detect(model, [tmp_path / "empty"])
    # Batches give the single-picture results.
    files = tools.find_images([ann.parent / "images"])
    single = [r for _, _, r in tools.detect_paths(model, files, batch_size=1)]
    batched = [r for _, _, r in tools.detect_paths(model, files, batch_size=3)]
    assert len(single) == len(batched) == len(files)
    for a, b in zip(single, batched):
        np.testing.assert_allclose(a["boxes"], b["boxes"], atol=1e-3)
    with pytest.raises(ValueError, match="batch_size"):
        list(tools.detect_paths(model, files, batch_size=0))


# ---- evaluate ------------------------------------------------------------------------------------------------------

def direct_cocoeval(annotations, results, iou_type):
    """pycocotools on its own: COCO(file), loadRes of the entries torchvision's reference would pass."""
    key = {"bbox": "bbox", "segm": "segmentation"}[iou_type]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(annotations))
        dt = gt.loadRes([{"image_id": r["image_id"], "category_id": r["category_id"], key: r[key],
                          "score": r["score"]} for r in results])
        e = COCOeval(gt, dt, iou_type)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return list(e.stats)


def test_evaluate_matches_pycocotools(tmp_path, digits):
    _, ann, path = digits
    model = models.load(path, box_score_thresh=0.0)
    data = CocoDetection(ann.parent / "images", ann)
    stats = tools.evaluate(model, data, results_path=tmp_path / "res.json", batch_size=4)
    assert set(stats) == {"bbox", "segm"}
    results = json.loads((tmp_path / "res.json").read_text())
    assert {r["image_id"] for r in results} <= set(data.image_ids) and len(results) > 100
    for iou_type in ("bbox", "segm"):
        assert list(stats[iou_type]) == list(tools.STAT_NAMES[iou_type])
        assert list(stats[iou_type].values()) == direct_cocoeval(ann, results, iou_type)


def test_perfect_and_empty_results(digits):
    _, ann, _ = digits
    data = CocoDetection(ann.parent / "images", ann)
    truth = []
    for index in range(len(data)):
        _, target = data[index]
        result = {"boxes": target["boxes"], "labels": target["labels"], "scores": np.ones(len(target["labels"])),
                  "masks": target["masks"][:, None].astype(np.float32)}
        truth += tools.to_coco_results(result, target["image_id"])
    for iou_type in ("bbox", "segm"):
        stats = tools.coco_stats(data.coco, truth, iou_type)
        assert stats["AP"] == pytest.approx(1.0) and stats["AR100"] == pytest.approx(1.0)
        empty = tools.coco_stats(data.coco, [], iou_type)
        assert empty["AP"] == 0.0 and empty["AR100"] == 0.0
    # A Faster R-CNN is evaluated on boxes only; a model detecting nothing scores 0.
    model = small_model(num_classes=11, box_score_thresh=1.0)
    assert tools.evaluate(model, data) == {"bbox": tools.coco_stats(data.coco, [], "bbox")}
    with pytest.raises(TypeError, match="dataset"):
        tools.evaluate(model, [])
    with pytest.warns(UserWarning, match="category ids"):
        tools.evaluate(small_model(num_classes=4, box_score_thresh=1.0), data)


def test_to_coco_results_fields():
    result = {"boxes": np.array([[1.5, 2.25, 11.5, 22.25], [0, 0, 4, 4]], np.float32),
              "labels": np.array([7, 2]), "scores": np.array([0.9, 0.01], np.float32),
              "keypoints": np.array([[[3, 4, 1], [5.5, 6, 1]], [[0, 0, 1], [1, 1, 1]]], np.float32)}
    (entry,) = tools.to_coco_results(result, 12, score_threshold=0.05)
    assert entry == {"image_id": 12, "category_id": 7, "bbox": [1.5, 2.25, 10.0, 20.0], "score": 0.9,
                     "keypoints": [3.0, 4.0, 1.0, 5.5, 6.0, 1.0]}
    json.dumps(entry)
    assert len(tools.to_coco_results(result, 12)) == 2
    masks = np.zeros((2, 1, 6, 8), np.float32)
    masks[0, 0, 1:3, 2:5] = 0.7
    masks[0, 0, 4, 4] = 0.5  # not above the threshold
    (entry,) = tools.to_coco_results(dict(result, masks=masks), 3, score_threshold=0.5)
    from pycocotools import mask as mask_api

    decoded = mask_api.decode(entry["segmentation"])
    assert decoded.sum() == 6 and decoded[1:3, 2:5].all()
