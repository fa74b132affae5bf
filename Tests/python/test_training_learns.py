"""It learns: a small Faster / Mask R-CNN from the general builder, initialised at random as torchvision initialises
it, trained with swiftrcnn alone (SGD with momentum, warm-up) on generated scenes of rectangles and ellipses over
noise; the loss falls steadily and the trained model finds the objects of held-out scenes with the right class."""
import numpy as np
import pytest

from swiftrcnn import models, optim
from swiftrcnn.models import parts

SIDE = 128
CLASSES = ("rectangle", "ellipse")


def scene(rng, masks=False):
    """A (3, SIDE, SIDE) image of noise with 1-3 shapes in bright colours, and its torchvision target."""
    image = rng.uniform(0.0, 0.35, (3, SIDE, SIDE)).astype(np.float32)
    boxes, labels, shape_masks = [], [], []
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    taken = np.zeros((SIDE, SIDE), bool)
    for _ in range(rng.integers(1, 4)):
        w, h = rng.integers(18, 56, 2)
        x1, y1 = rng.integers(0, SIDE - w), rng.integers(0, SIDE - h)
        if taken[y1:y1 + h, x1:x1 + w].any():
            continue
        label = int(rng.integers(1, 3))
        if label == 1:
            m = (xx >= x1) & (xx < x1 + w) & (yy >= y1) & (yy < y1 + h)
        else:
            m = ((xx + 0.5 - x1 - w / 2) / (w / 2)) ** 2 + ((yy + 0.5 - y1 - h / 2) / (h / 2)) ** 2 <= 1
        image[:, m] = rng.uniform(0.6, 1.0, (3, 1)).astype(np.float32)
        taken |= m
        boxes.append([x1, y1, x1 + w, y1 + h])
        labels.append(label)
        shape_masks.append(m)
    target = {"boxes": np.array(boxes, np.float32).reshape(-1, 4), "labels": np.array(labels, np.int64)}
    if masks:
        target["masks"] = np.array(shape_masks, np.uint8).reshape(-1, SIDE, SIDE)
    return image, target


def small_model(kind):
    backbone = parts.Sequential(
        parts.Conv2d(3, 16, 3, padding=1), parts.ReLU(), parts.MaxPool2d(2),
        parts.Conv2d(16, 32, 3, padding=1), parts.ReLU(), parts.MaxPool2d(2),
        parts.Conv2d(32, 48, 3, padding=1), parts.ReLU(), parts.MaxPool2d(2),
        parts.Conv2d(48, 48, 3, padding=1), parts.ReLU())
    common = dict(
        weights="random", seed=0, min_size=SIDE, max_size=SIDE,
        rpn_anchor_generator=parts.AnchorGenerator(((16, 32, 64),), ((0.5, 1.0, 2.0),)),
        box_roi_pool=parts.MultiScaleRoIAlign(["0"], 7, 2), box_head=parts.TwoMLPHead(48 * 49, 128),
        box_predictor=parts.FastRCNNPredictor(128, 1 + len(CLASSES)),
        rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=150, rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=100, box_batch_size_per_image=64, box_detections_per_img=20)
    if kind == "mask":
        return models.MaskRCNN(
            backbone, mask_roi_pool=parts.MultiScaleRoIAlign(["0"], 14, 2),
            mask_head=parts.MaskRCNNHeads(48, (32, 32), 1),
            mask_predictor=parts.MaskRCNNPredictor(32, 32, 1 + len(CLASSES)), **common)
    return models.FasterRCNN(backbone, **common)


def iou(a, b):
    x1, y1 = np.maximum(a[0], b[0]), np.maximum(a[1], b[1])
    x2, y2 = np.minimum(a[2], b[2]), np.minimum(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["faster", "mask"])
def test_small_model_learns(kind):
    rng = np.random.default_rng(0)
    model = small_model(kind).train()
    steps, batch = 400, 4
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    # Warm-up over 40 iterations; the rate falls tenfold for the last 100 (one "epoch" of 300 iterations).
    schedule = optim.WarmupMultiStepLR(opt, milestones=[1], warmup_iters=40)
    totals = []
    for step in range(steps):
        if step == 300:
            schedule.step_epoch()
        images, targets = zip(*(scene(rng, masks=kind == "mask") for _ in range(batch)))
        losses = model.train_step(list(images), list(targets), opt)
        schedule.step()
        totals.append(sum(losses.values()))
    first, last = np.mean(totals[:20]), np.mean(totals[-20:])
    # The loss falls: the last 80-step window's mean (after the warm-up) below 60% of the first's, and no window more
    # than 10% above the one before (SGD's noise may bump the loss for a while; the trajectory differs by CPU path,
    # and on AVX-512 the second window of the Faster R-CNN run sat 4% above the first). It does not diverge.
    windows = [np.mean(totals[i:i + 80]) for i in range(40, steps - 79, 80)]
    assert last < 0.35 * first, (first, last)
    assert windows[-1] < 0.6 * windows[0], windows
    assert all(b < 1.1 * a for a, b in zip(windows, windows[1:])), windows

    model.eval()
    # 48 held-out scenes (83 objects): with 12 (19 objects, one object 5%), the Faster R-CNN run on the avx2 path
    # with GEMM depth blocks of 512 found 15 of 19 in them and 73 of 83 in all 48 (88%); on the avx2 and generic
    # paths both models found 88-99% of the 83 (AMD EPYC Zen 3).
    held_out = np.random.default_rng(1)
    found = total = 0
    for _ in range(48):
        image, target = scene(held_out, masks=kind == "mask")
        (result,) = model([image])
        keep = result["scores"] > 0.5
        for box, label in zip(target["boxes"], target["labels"]):
            total += 1
            found += any(iou(box, b) >= 0.5 and c == label
                         for b, c in zip(result["boxes"][keep], result["labels"][keep]))
        if kind == "mask" and keep.any():
            assert result["masks"].shape[1:] == (1, SIDE, SIDE)
    assert found >= 0.8 * total, f"found {found} of {total} objects"


def test_resume_continues_exactly(tmp_path):
    """Three steps, saved (weights + training_state), reloaded from the file and three more steps: the same losses
    and weights as six steps in one go (momentum buffers and the step counter that seeds the samplers restored)."""
    data = [scene(np.random.default_rng(10 + i)) for i in range(12)]
    batches = [[data[2 * i], data[2 * i + 1]] for i in range(6)]

    def steps(model, opt, chunk):
        out = []
        for batch in chunk:
            images, targets = zip(*batch)
            out.append(model.train_step(list(images), list(targets), opt))
        return out

    straight = small_model("faster").train()
    opt = optim.SGD(straight.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
    expected = steps(straight, opt, batches)

    first = small_model("faster").train()
    opt = optim.SGD(first.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
    got = steps(first, opt, batches[:3])
    path = tmp_path / "epoch.safetensors"
    first.save(path)
    state = first.training_state()
    assert state["steps"] == 3 and len(state["momentum"]) == len(first.parameters())

    resumed = models.load(path)
    resumed.train()
    resumed.load_training_state(state)
    opt = optim.SGD(resumed.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
    got += steps(resumed, opt, batches[3:])
    assert got == expected
    theirs = straight.state_dict()
    for name, value in resumed.state_dict().items():
        np.testing.assert_array_equal(value, theirs[name], err_msg=name)
    with pytest.raises(ValueError, match="momentum"):
        resumed.load_training_state({"momentum": {"backbone.0.weight": np.zeros(3, np.float32)}, "steps": 0})
