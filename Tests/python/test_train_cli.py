"""`swiftrcnn train` and swiftrcnn.training: end to end on a tiny generated data set (a small Mask R-CNN of 11
classes from random weights), exact resumption, the flip, aspect-ratio grouping, usage errors (exit 2) and runtime
errors (exit 1, one line)."""
import json

import numpy as np
import pytest

from swiftrcnn import models, optim, training, weights
from swiftrcnn.__main__ import main
from swiftrcnn.datasets import CocoDetection, synthetic
from swiftrcnn.models import parts

DIGITS = ["__background__"] + [str(d) for d in range(10)]


def tiny_model(num_classes=11, seed=0):
    backbone = parts.Sequential(
        parts.Conv2d(3, 16, 3, padding=1), parts.ReLU(), parts.MaxPool2d(2),
        parts.Conv2d(16, 32, 3, padding=1), parts.ReLU(), parts.MaxPool2d(2),
        parts.Conv2d(32, 32, 3, padding=1), parts.ReLU())
    return models.MaskRCNN(
        backbone, weights="random", seed=seed, min_size=96, max_size=160,
        rpn_anchor_generator=parts.AnchorGenerator(((16, 32, 64),), ((0.5, 1.0, 2.0),)),
        box_roi_pool=parts.MultiScaleRoIAlign(["0"], 7, 2), box_head=parts.TwoMLPHead(32 * 49, 64),
        box_predictor=parts.FastRCNNPredictor(64, num_classes),
        mask_roi_pool=parts.MultiScaleRoIAlign(["0"], 14, 2), mask_head=parts.MaskRCNNHeads(32, (16, 16), 1),
        mask_predictor=parts.MaskRCNNPredictor(16, 16, num_classes),
        rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=100, rpn_pre_nms_top_n_test=200,
        rpn_post_nms_top_n_test=50, box_batch_size_per_image=32, box_detections_per_img=20)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    ann = synthetic.make_scenes(root / "train", 8, seed=0, size=(128, 96), heights=(24, 48))
    val = synthetic.make_scenes(root / "val", 3, seed=1, size=(128, 96), heights=(24, 48))
    tiny_model().save(root / "base.safetensors")
    return root, ann, val


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def data_args(ann):
    return ["--annotations", ann, "--images", ann.parent / "images"]


def test_train_two_epochs_with_validation(capsys, tmp_path, setup):
    root, ann, val = setup
    out_file = tmp_path / "digits.safetensors"
    code, out, err = run(capsys, "train", *data_args(ann), "--weights", root / "base.safetensors", "--epochs", 2,
                         "--out", out_file, "--batch-size", 2, "--lr", 0.01, "--val-annotations", val,
                         "--val-images", val.parent / "images", "--threads", 2)
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "training on 8 images, 4 iterations per epoch, epochs 1 to 2, lr 0.01"
    for epoch in (1, 2):
        line = next(x for x in lines if x.startswith(f"epoch {epoch}/2: loss "))
        for name in ("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"):
            assert name in line
        assert "4 iterations" in line
        val_line = next(x for x in lines if x.startswith(f"epoch {epoch}/2 val: "))
        assert "bbox AP " in val_line and "segm AP " in val_line
    assert lines[-1].startswith(f"wrote {out_file}")

    model = models.load(out_file)          # the checkpoint is a weight file detect / eval / load read
    assert model.kind == "mask" and model.categories == DIGITS
    image, _ = CocoDetection(val.parent / "images", val)[0]
    (result,) = model([image])
    assert result["masks"].shape[1:] == (1, 96, 128)
    state = training.read_state(out_file)
    assert state["epoch"] == 2 and state["training_state"]["steps"] == 8
    assert state["scheduler"]["iteration"] == 8 and state["scheduler"]["epoch"] == 2
    assert state["settings"] == {"batch_size": 2, "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4,
                                 "lr_steps": [16, 22], "lr_gamma": 0.1, "warmup_iters": 3, "warmup_factor": 0.001,
                                 "flip": True, "aspect_ratio_group_factor": 3, "seed": 0, "images": 8}
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    assert set(state["training_state"]["momentum"]) == {p.name for p in model.train().parameters()}


def test_resume_continues_exactly(capsys, tmp_path, setup):
    """Three epochs in one run equal one epoch and a resumed run of two, bit for bit: the per-epoch mean losses,
    the weights and the momentum buffers. Batches of 3 (a short last batch), flips and grouping on, a warm-up that
    crosses the resumption and a rate step after it."""
    root, ann, _ = setup
    common = [*data_args(ann), "--lr-steps", 2, "--warmup-iters", 4]
    first = [*common, "--weights", root / "base.safetensors", "--batch-size", 3, "--lr", 0.02, "--seed", 5]
    code, _, err = run(capsys, "train", *first, "--epochs", 3, "--out", tmp_path / "straight.safetensors")
    assert code == 0, err
    code, _, err = run(capsys, "train", *first, "--epochs", 1, "--out", tmp_path / "part.safetensors")
    assert code == 0, err
    code, out, err = run(capsys, "train", *common, "--resume", tmp_path / "part.safetensors", "--epochs", 3,
                         "--out", tmp_path / "part.safetensors")
    assert code == 0, err
    assert "epochs 2 to 3" in out and "epoch 1/" not in out

    straight, resumed = (training.read_state(tmp_path / f"{n}.safetensors") for n in ("straight", "part"))
    def timeless(history):
        return [{k: v for k, v in record.items() if k != "seconds"} for record in history]

    assert timeless(resumed["history"]) == timeless(straight["history"])
    assert resumed["scheduler"] == straight["scheduler"]
    assert resumed["training_state"]["steps"] == straight["training_state"]["steps"] == 9
    for name, value in straight["training_state"]["momentum"].items():
        np.testing.assert_array_equal(resumed["training_state"]["momentum"][name], value, err_msg=name)
    a, b = (weights.load_state_dict(tmp_path / f"{n}.safetensors") for n in ("straight", "part"))
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert models.describe(tmp_path / "part.safetensors")["training"]["seed"] == 5

    # Settings differing from the run's are refused; the weight file replaced behind the state too.
    code, _, err = run(capsys, "train", *common, "--resume", tmp_path / "part.safetensors", "--epochs", 4, "--out",
                       tmp_path / "more.safetensors", "--batch-size", 2)
    assert code == 1 and "batch_size: the resumed run used 3, not 2" in err
    (tmp_path / "part.safetensors").write_bytes((tmp_path / "straight.safetensors").read_bytes()[:-4] + b"\0" * 4)
    code, _, err = run(capsys, "train", *common, "--resume", tmp_path / "part.safetensors", "--epochs", 4, "--out",
                       tmp_path / "more.safetensors")
    assert code == 1 and "SHA-256 differs" in err


def test_random_weights_and_new_classes(capsys, tmp_path, setup):
    root, ann, _ = setup
    code, out, err = run(capsys, "train", *data_args(ann), "--weights", "random", "--model", "maskrcnn_small",
                         "--epochs", 1, "--batch-size", 4, "--out", tmp_path / "small.safetensors", "--no-flip",
                         "--aspect-ratio-group-factor", -1)
    assert code == 0, err
    info = models.describe(tmp_path / "small.safetensors")
    assert info["builder"] == "maskrcnn_small" and info["num_classes"] == 11 and info["categories"] == DIGITS
    assert training.read_state(tmp_path / "small.safetensors")["settings"]["flip"] is False

    # Fine-tuning for another number of classes: the predictors re-initialised (a note), no category names (the
    # data set's ids are 1 ... 10, not 1 ... 12).
    code, out, err = run(capsys, "train", *data_args(ann), "--weights", root / "base.safetensors", "--num-classes",
                         13, "--epochs", 1, "--out", tmp_path / "k13.safetensors")
    assert code == 0, err
    assert err.startswith("swiftrcnn train: note: weights: the checkpoint's predictor is for 11 classes")
    assert "roi_heads.mask_predictor.mask_fcn_logits.weight" in err
    info = models.describe(tmp_path / "k13.safetensors")
    assert info["num_classes"] == 13 and info["categories"] is None


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: swiftrcnn train")
    for option in ("--annotations", "--images", "--weights", "--model", "--num-classes", "--epochs", "--out",
                   "--batch-size", "--lr", "--momentum", "--weight-decay", "--warmup-iters", "--lr-steps", "--seed",
                   "--resume", "--val-annotations", "--val-images", "--no-flip", "--aspect-ratio-group-factor",
                   "--threads", "--trainable-backbone-layers", "maskrcnn_small"):
        assert option in out, option


@pytest.mark.parametrize("argv,message", [
    (["--epochs", "1", "--out", "o.safetensors"], "one of --weights or --resume is required"),
    (["--weights", "random", "--epochs", "1", "--out", "o"], "--weights random needs --model"),
    (["--weights", "w", "--epochs", "1", "--out", "o", "--val-annotations", "v.json"], "go together"),
    (["--weights", "w", "--epochs", "0", "--out", "o"], "positive"),
    (["--weights", "w", "--out", "o"], "--epochs"),
    (["--weights", "w", "--epochs", "1"], "--out"),
    (["--weights", "w", "--epochs", "1", "--out", "o", "--lr", "-0.1"], "expected a number > 0"),
    (["--weights", "w", "--epochs", "1", "--out", "o", "--lr-steps", "x"], "expected an integer"),
    (["--weights", "w", "--epochs", "1", "--out", "o", "--model", "resnet"], "invalid choice"),
    (["--weights", "w", "--epochs", "1", "--out", "o", "--aspect-ratio-group-factor", "-2"], ">= -1"),
    (["--weights", "w", "--epochs", "1", "--out", "o", "--trainable-backbone-layers", "6"], "invalid choice"),
    (["--weights", "w", "--epochs", "1", "--out", "o", "--momentum", "nan"], "expected a number >= 0"),
])
def test_usage_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        main(["train", "--annotations", "a.json", "--images", "imgs", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "swiftrcnn train: error:" in err and message in err, err


def test_runtime_errors_one_line(capsys, tmp_path, setup):
    root, ann, _ = setup
    weights.save_safetensors(weights.load_state_dict(root / "base.safetensors"), tmp_path / "plain.safetensors")
    base = ["--weights", root / "base.safetensors", "--epochs", 1, "--out", tmp_path / "o.safetensors"]
    cases = [
        (["--annotations", tmp_path / "none.json", "--images", ann.parent / "images", *base], "none.json"),
        (["--annotations", ann, "--images", tmp_path / "nowhere", *base], "is not a folder"),
        ([*data_args(ann), "--weights", tmp_path / "absent.safetensors", "--epochs", 1, "--out", tmp_path / "o"],
         "No such file"),
        ([*data_args(ann), "--weights", tmp_path / "plain.safetensors", "--epochs", 1, "--out", tmp_path / "o"],
         "plain checkpoint"),
        ([*data_args(ann), "--resume", root / "base.safetensors", "--epochs", 1, "--out", tmp_path / "o"],
         "no training state next to"),
        ([*data_args(ann), *base, "--num-classes", 5], "category ids reach 10"),
        ([*data_args(ann), *base, "--val-annotations", ann, "--val-images", tmp_path / "nowhere"], "not a folder"),
    ]
    for argv, message in cases:
        code, out, err = run(capsys, "train", *argv)
        assert code == 1, argv
        assert err.startswith("swiftrcnn train: error: ") and message in err, err
        assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.safetensors").exists()


def test_fit_progress_and_records(capsys, tmp_path, setup):
    """The Python API: records per epoch, the progress bar (running means and the rate), a data set given as a
    plain list of (image, target) (aspect ratios from the images' shapes), and resuming when nothing is left."""
    root, ann, _ = setup
    data = CocoDetection(ann.parent / "images", ann)
    items = [data[i] for i in range(4)]
    model = training.build_model(root / "base.safetensors")
    records = training.fit(model, items, 1, batch_size=2, lr=0.01, progress=True, log=None,
                           out=tmp_path / "m.safetensors")
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "lr=" in err and "classifier=" in err and "2/2" in err
    assert [r["epoch"] for r in records] == [1] and records[0]["iterations"] == 2
    assert set(records[0]["losses"]) == {"loss", "loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness",
                                         "loss_rpn_box_reg"}
    model, state = training.load_checkpoint(tmp_path / "m.safetensors")
    lines = []
    assert training.fit(model, items, 1, resume=state, log=lines.append) == []
    assert lines == ["nothing to do: 1 epochs done already (epochs 1)"]
    with pytest.raises(ValueError, match="masks=True"):
        training.fit(training.build_model(root / "base.safetensors"), CocoDetection(ann.parent / "images", ann,
                                                                                    masks=False), 1, log=None)


def test_hflip():
    rng = np.random.default_rng(0)
    image = rng.random((3, 6, 10), dtype=np.float32)
    masks = np.zeros((2, 6, 10), np.uint8)
    masks[0, 1:4, 0:3] = 1          # pixels x 0..2 -> box x 0..3
    masks[1, 2:6, 7:10] = 1         # pixels x 7..9 -> box x 7..10
    target = {"boxes": np.array([[0, 1, 3, 4], [7, 2, 10, 6]], np.float32), "labels": np.array([1, 2]),
              "masks": masks, "keypoints": np.array([[[1.5, 2, 2], [4, 4, 0]], [[9, 3, 1], [0, 0, 0]]], np.float32),
              "image_id": 7}
    flipped_image, flipped = training.hflip(image, target)
    np.testing.assert_array_equal(flipped_image, image[:, :, ::-1])
    np.testing.assert_array_equal(flipped["boxes"], [[7, 1, 10, 4], [0, 2, 3, 6]])
    np.testing.assert_array_equal(flipped["masks"], masks[:, :, ::-1])
    for box, mask in zip(flipped["boxes"], flipped["masks"]):   # boxes still bound their masks' pixels
        cols, rows = np.flatnonzero(mask.any(0)), np.flatnonzero(mask.any(1))
        np.testing.assert_array_equal(box, [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1])
    np.testing.assert_array_equal(flipped["keypoints"], [[[8.5, 2, 2], [4, 4, 0]], [[1, 3, 1], [0, 0, 0]]])
    assert flipped["labels"] is target["labels"] and flipped["image_id"] == 7
    np.testing.assert_array_equal(target["boxes"], [[0, 1, 3, 4], [7, 2, 10, 6]])   # the input is left as it was
    again_image, again = training.hflip(flipped_image, flipped)
    np.testing.assert_array_equal(again_image, image)
    np.testing.assert_array_equal(again["boxes"], target["boxes"])
    _, empty = training.hflip(image, {"boxes": np.zeros((0, 4), np.float32), "masks": np.zeros((0, 6, 10))})
    assert empty["boxes"].shape == (0, 4) and empty["masks"].shape == (0, 6, 10)
    with pytest.raises(ValueError, match="image"):
        training.hflip(np.zeros((6, 10)), target)


def test_aspect_ratio_groups():
    ratios = [0.4, 0.5, 0.6, 0.7, 1.0, 1.3, 1.9, 2.0, 3.0, 0.99]
    # Edges 2 ** (-1, -2/3, -1/3, 0, 1/3, 2/3, 1) = 0.5, 0.63, 0.79, 1, 1.26, 1.59, 2.
    assert training.aspect_ratio_groups(ratios).tolist() == [0, 1, 1, 2, 4, 5, 6, 7, 7, 3]
    assert training.aspect_ratio_groups(ratios, 0).tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 0]
    assert training.aspect_ratio_groups(ratios, 1).tolist() == [0, 1, 1, 1, 2, 2, 2, 3, 3, 1]
    with pytest.raises(ValueError, match="group_factor"):
        training.aspect_ratio_groups(ratios, -1)
    with pytest.raises(ValueError, match="aspect_ratios"):
        training.aspect_ratio_groups([1.0, 0.0])


def test_grouped_batch_sampler():
    groups = np.random.default_rng(3).integers(0, 4, 50)
    sampler = training.GroupedBatchSampler(groups, 4, seed=1)
    expected_len = sum(-(-int((groups == g).sum()) // 4) for g in range(4))
    orders = []
    for epoch in range(3):
        batches = sampler.batches(epoch)
        assert len(batches) == len(sampler) == expected_len
        for batch in batches:
            assert 1 <= len(batch) <= 4 and len({groups[i] for i in batch}) == 1
        flat = [i for batch in batches for i in batch]
        assert sorted(flat) == list(range(50))                       # every image once per epoch
        sizes = [len(b) for b in batches]
        short = sum(s < 4 for s in sizes)
        assert short <= 4 and all(s == 4 for s in sizes[:len(sizes) - short])   # one short batch per group at most,
        # and last
        assert training.GroupedBatchSampler(groups, 4, seed=1).batches(epoch) == batches   # seeded
        orders.append(flat)
    assert orders[0] != orders[1] != orders[2]
    assert training.GroupedBatchSampler(groups, 4, seed=2).batches(0) != sampler.batches(0)
    plain = training.GroupedBatchSampler(np.zeros(10, np.int64), 4).batches(0)
    assert [len(b) for b in plain] == [4, 4, 2]
    with pytest.raises(ValueError, match="batch_size"):
        training.GroupedBatchSampler(groups, 0)


def test_optimizer_and_schedule_state(setup):
    root, _, _ = setup
    model = models.load(root / "base.safetensors").train()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    schedule = optim.WarmupMultiStepLR(opt, milestones=[1], warmup_iters=10)
    for _ in range(3):
        schedule.step()
    schedule.step_epoch()
    state = json.loads(json.dumps(schedule.state_dict()))
    assert state == {"base_lr": 0.1, "milestones": [1], "gamma": 0.1, "warmup_factor": 0.001, "warmup_iters": 10,
                     "iteration": 3, "epoch": 1}
    opt2 = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    schedule2 = optim.WarmupMultiStepLR(opt2, milestones=[5])
    schedule2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == schedule.get_lr()
    opt2.load_state_dict(opt.state_dict())
    assert opt2.state_dict() == opt.state_dict()
    with pytest.raises(ValueError, match="iteration"):
        schedule2.load_state_dict({k: v for k, v in state.items() if k != "iteration"})
