"""Training targets, samplers and losses against torchvision's, step by step (train mode).

Targets: `RegionProposalNetwork.assign_targets_to_anchors` + `box_coder.encode` and `RoIHeads.select_training_samples`
on anchors of a real FPN anchor generator and random boxes (degenerate ones included), several images with different
box counts and one without. Samplers: torch's generator cannot be reproduced, so torchvision's sampler is replaced by
one returning the masks ours chose, and ours is checked for its counts, classes, seeding and uniformity. Losses:
`compute_loss`, `fastrcnn_loss` and `maskrcnn_loss` on the same inputs, gradients from torch's autograd. Losses agree
to 1e-5 relative, gradients to 1e-5 of their largest entry (the goal is 1e-4).
"""
import numpy as np
import pytest
import torch
from scipy import stats
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss, maskrcnn_loss
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead

from swiftrcnn.models import _stages
from utils import random_boxes, t

LOSS_RTOL = 1e-5
GRAD_RTOL = 1e-5  # of the gradient's largest entry
# Images (height, width) of one batch and how many boxes each has: one without, and a crowded one.
SIZES = [(320, 416), (288, 352), (320, 320)]
BOX_COUNTS = [3, 0, 17]


def relative(ours, theirs):
    """Largest |ours - theirs| over the largest |theirs| (1 when theirs is all 0)."""
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, f"shape {ours.shape} != {theirs.shape}"
    scale = max(float(np.abs(theirs).max(initial=0.0)), 1e-30)
    return float(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)).max(initial=0.0)) / scale


def assert_loss(ours, theirs):
    theirs = float(theirs.detach()) if isinstance(theirs, torch.Tensor) else float(theirs)
    assert ours == pytest.approx(theirs, rel=LOSS_RTOL, abs=1e-7), (ours, theirs)


def assert_grad(ours, theirs):
    assert relative(ours, theirs) <= GRAD_RTOL


def gt_boxes(rng, n, size, degenerate=False):
    """(n, 4) float32 boxes inside an image of `size` (h, w), 4 to 200 px a side; with `degenerate` the last four are
    a zero-width box, a zero-area point, a 0.01 px box and a box reaching past the image."""
    h, w = size
    boxes = random_boxes(rng, n, size=min(h, w) - 1, min_wh=4, max_wh=200)
    boxes[:, 2] = np.minimum(boxes[:, 2], w)
    boxes[:, 3] = np.minimum(boxes[:, 3], h)
    if degenerate and n >= 4:
        boxes[-4] = [30, 40, 30, 90]
        boxes[-3] = [70, 70, 70, 70]
        boxes[-2] = [100, 100, 100.01, 100.01]
        boxes[-1] = [w - 50, h - 60, w + 40, h + 30]
    return boxes


def fpn_anchors(size):
    """torchvision's anchors for one image of `size` with the FPN models' generator (5 levels, strides 4 ... 64)."""
    gen = AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
    h, w = size
    feats = [torch.zeros(1, 1, -(-h // s), -(-w // s)) for s in (4, 8, 16, 32, 64)]
    return gen(ImageList(torch.zeros(1, 3, h, w), [size]), feats)[0]


def make_rpn():
    return RegionProposalNetwork(AnchorGenerator(), RPNHead(1, 3), fg_iou_thresh=0.7, bg_iou_thresh=0.3,
                                 batch_size_per_image=256, positive_fraction=0.5,
                                 pre_nms_top_n=dict(training=2000, testing=1000),
                                 post_nms_top_n=dict(training=2000, testing=1000), nms_thresh=0.7)


def make_roi_heads(batch=512, fraction=0.25, fg=0.5, bg=0.5):
    return RoIHeads(None, None, None, fg_iou_thresh=fg, bg_iou_thresh=bg, batch_size_per_image=batch,
                    positive_fraction=fraction, bbox_reg_weights=None, score_thresh=0.05, nms_thresh=0.5,
                    detections_per_img=100)


def fixed_sampler(positive, negative):
    """A stand-in for torchvision's fg_bg_sampler returning the given per-image masks (torch uint8)."""
    def sample(labels):
        assert [len(x) for x in labels] == [len(p) for p in positive]
        return [t(p) for p in positive], [t(n) for n in negative]
    return sample


# ---- RPN ------------------------------------------------------------------------------------------------------------


def rpn_images(seed, degenerate=False):
    """Per image its anchors and gt boxes, with our targets and samples."""
    rng = np.random.default_rng(seed)
    images = []
    for i, (size, n) in enumerate(zip(SIZES, BOX_COUNTS)):
        anchors = fpn_anchors(size)
        boxes = gt_boxes(rng, n, size, degenerate=degenerate)
        labels, targets = _stages.rpn_assign_targets(anchors.numpy(), boxes)
        pos, neg = _stages.rpn_sample(labels, seed=100 + i)
        images.append(dict(anchors=anchors, boxes=boxes, labels=labels, targets=targets, pos=pos, neg=neg))
    return images


@pytest.fixture(scope="module")
def rpn_batch():
    return rpn_images(7)


def assert_same_rpn_targets(images):
    rpn = make_rpn()
    anchors = [im["anchors"] for im in images]
    labels, matched = rpn.assign_targets_to_anchors(anchors, [{"boxes": t(im["boxes"])} for im in images])
    targets = rpn.box_coder.encode(matched, anchors)
    for im, lab, tgt in zip(images, labels, targets):
        np.testing.assert_array_equal(im["labels"], lab.numpy())
        # The same float32 operations; torch's vectorised log may differ from the C library's by an ulp.
        np.testing.assert_allclose(im["targets"], tgt.numpy(), rtol=2e-6, atol=1e-6)


def test_rpn_assign_targets(rpn_batch):
    assert_same_rpn_targets(rpn_batch)
    assert {1.0, 0.0, -1.0} <= set(np.unique(rpn_batch[0]["labels"]))
    assert np.all(rpn_batch[1]["labels"] == 0)  # no boxes
    assert np.isneginf(rpn_batch[1]["targets"][:, 2:]).all()  # torchvision's zero box


def test_rpn_assign_targets_degenerate_boxes():
    """A zero-area box has IoU 0 with every anchor, so all anchors tie for its best match and the low-quality rule
    makes every anchor of the image foreground (each restored to its highest-IoU box): torchvision's behaviour,
    which its model avoids by rejecting such boxes. Also a 0.01 px box and one reaching past the image."""
    images = rpn_images(8, degenerate=True)
    assert_same_rpn_targets(images)
    assert np.all(images[2]["labels"] == 1) and (images[0]["labels"] == 0).any()  # image 0: 3 boxes, none degenerate


def test_rpn_sampler_counts_and_seed(rpn_batch):
    for i, im in enumerate(rpn_batch):
        labels, pos, neg = im["labels"], im["pos"], im["neg"]
        n_pos = min(int((labels == 1).sum()), 128)
        assert pos.sum() == n_pos and neg.sum() == min(int((labels == 0).sum()), 256 - n_pos)
        assert np.all(labels[pos == 1] == 1) and np.all(labels[neg == 1] == 0)
        again = _stages.rpn_sample(labels, seed=100 + i)
        np.testing.assert_array_equal(again[0], pos)
        np.testing.assert_array_equal(again[1], neg)
        assert not np.array_equal(_stages.rpn_sample(labels, seed=1 + i)[1], neg)
    # batch_size_per_image and positive_fraction are honoured exactly.
    labels = np.repeat(np.float32([1, 0, -1]), [40, 60, 10])
    for batch, fraction, want in [(64, 0.25, (16, 48)), (10, 1.0, (10, 0)), (200, 0.5, (40, 60)), (0, 0.5, (0, 0))]:
        pos, neg = _stages.rpn_sample(labels, batch_size_per_image=batch, positive_fraction=fraction, seed=3)
        assert (int(pos.sum()), int(neg.sum())) == want


def test_rpn_sampler_is_uniform():
    """Each foreground anchor is chosen equally often over seeds (chi-square), as with torch.randperm."""
    labels = np.repeat(np.float32([1, 0]), [20, 300])
    draws = 2000
    counts_pos, counts_neg = np.zeros(20), np.zeros(300)
    for seed in range(draws):
        pos, neg = _stages.rpn_sample(labels, batch_size_per_image=16, positive_fraction=0.5, seed=seed)
        counts_pos += pos[:20]
        counts_neg += neg[20:]
    assert counts_pos.sum() == 8 * draws and counts_neg.sum() == 8 * draws
    assert stats.chisquare(counts_pos).pvalue > 1e-3
    assert stats.chisquare(counts_neg).pvalue > 1e-3


def test_rpn_loss(rpn_batch):
    """compute_loss over the whole batch (image-major, as torchvision concatenates), with our samples."""
    rng = np.random.default_rng(3)
    total = sum(len(im["labels"]) for im in rpn_batch)
    objectness = t(rng.normal(0, 3, (total, 1)).astype(np.float32)).requires_grad_()
    deltas = t(rng.normal(0, 0.5, (total, 4)).astype(np.float32)).requires_grad_()
    rpn = make_rpn()
    rpn.fg_bg_sampler = fixed_sampler([im["pos"] for im in rpn_batch], [im["neg"] for im in rpn_batch])
    loss_obj, loss_box = rpn.compute_loss(objectness, deltas, [t(im["labels"]) for im in rpn_batch],
                                          [t(im["targets"]) for im in rpn_batch])
    (loss_obj + loss_box).backward()
    cat = lambda key: np.concatenate([im[key] for im in rpn_batch])  # noqa: E731
    ours = _stages.rpn_loss(objectness.detach().numpy(), deltas.detach().numpy(), cat("labels"), cat("targets"),
                            cat("pos"), cat("neg"))
    assert_loss(ours[0], loss_obj)
    assert_loss(ours[1], loss_box)
    assert_grad(ours[2], objectness.grad[:, 0])
    assert_grad(ours[3], deltas.grad)
    sampled = (cat("pos") | cat("neg")) == 1
    assert np.all(ours[2][~sampled] == 0) and np.all(ours[3][cat("pos") == 0] == 0)


def test_rpn_loss_without_samples():
    """Every anchor ignored: torchvision's losses are 0 / 0 = NaN; ours are 0 with zero gradients."""
    labels = np.full(6, -1, np.float32)
    pos, neg = _stages.rpn_sample(labels, seed=0)
    assert pos.sum() == neg.sum() == 0
    rpn = make_rpn()
    rpn.fg_bg_sampler = fixed_sampler([pos], [neg])
    loss_obj, loss_box = rpn.compute_loss(torch.ones(6, 1), torch.ones(6, 4), [t(labels)], [torch.zeros(6, 4)])
    assert torch.isnan(loss_obj) and torch.isnan(loss_box)
    ours = _stages.rpn_loss(np.ones(6, np.float32), np.ones((6, 4), np.float32), labels, np.zeros((6, 4), np.float32),
                            pos, neg)
    assert ours[:2] == (0.0, 0.0) and not ours[2].any() and not ours[3].any()


# ---- RoI heads ------------------------------------------------------------------------------------------------------


def proposals_like_rpn(rng, n, size, boxes):
    """n proposals in the image: random boxes, jittered copies of the gt boxes (so that there are foreground ones) and
    a few degenerate ones (zero width, a point)."""
    h, w = size
    props = random_boxes(rng, n, size=min(h, w) - 1, min_wh=1, max_wh=250)
    if len(boxes):
        picks = boxes[rng.integers(0, len(boxes), n // 3)]
        sides = np.concatenate([picks[:, 2:] - picks[:, :2]] * 2, axis=1)
        props[: n // 3] = picks + rng.normal(0, 0.12, picks.shape).astype(np.float32) * sides
    props[-2] = [10, 10, 10, 50]
    props[-1] = [60, 60, 60, 60]
    return props.astype(np.float32)


@pytest.fixture(scope="module")
def roi_batch():
    return roi_images(11)


def roi_images(seed):
    """Per image proposals, gt boxes (non-degenerate: torchvision's model rejects the others), labels in 1 ... 6,
    masks, and our samples."""
    rng = np.random.default_rng(seed)
    images = []
    for i, (size, n) in enumerate(zip(SIZES, BOX_COUNTS)):
        boxes = gt_boxes(rng, n, size)
        labels = rng.integers(1, 7, n).astype(np.int64)
        props = proposals_like_rpn(rng, 1500, size, boxes)
        masks = np.zeros((n, *size), np.uint8)
        for g, (x1, y1, x2, y2) in enumerate(boxes):  # an ellipse in each box
            yy, xx = np.mgrid[: size[0], : size[1]] + 0.5
            cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
            masks[g] = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        samples = _stages.roi_heads_select_training_samples(props, boxes, labels, seed=200 + i)
        images.append(dict(size=size, proposals=props, boxes=boxes, labels=labels, masks=masks, samples=samples))
    return images


def torch_select(heads, images, key="samples"):
    """torchvision's select_training_samples with its sampler replaced by our choices."""
    pos, neg = [], []
    for im in images:
        s, rows = im[key], len(im["proposals"]) + len(im["boxes"])
        p, n = np.zeros(rows, np.uint8), np.zeros(rows, np.uint8)
        p[s["sampled_idxs"][s["labels"] >= 1]] = 1
        n[s["sampled_idxs"][s["labels"] == 0]] = 1
        pos.append(p)
        neg.append(n)
    heads.fg_bg_sampler = fixed_sampler(pos, neg)
    targets = [{"boxes": t(im["boxes"]), "labels": t(im["labels"])} for im in images]
    return heads.select_training_samples([t(im["proposals"]) for im in images], targets)


def assert_same_samples(ours, proposals, matched, labels, targets):
    np.testing.assert_array_equal(ours["proposals"], proposals.numpy())
    np.testing.assert_array_equal(ours["matched_idxs"], matched.numpy())
    np.testing.assert_array_equal(ours["labels"], labels.numpy())
    np.testing.assert_allclose(ours["regression_targets"], targets.numpy(), rtol=2e-6, atol=1e-5, equal_nan=True)


def test_roi_heads_select_training_samples(roi_batch):
    proposals, matched, labels, targets = torch_select(make_roi_heads(), roi_batch)
    for im, p, m, lab, tgt in zip(roi_batch, proposals, matched, labels, targets):
        assert_same_samples(im["samples"], p, m, lab, tgt)
        s = im["samples"]
        n_pos = min(int((s["labels"] >= 1).sum()), 128)
        assert np.all(np.diff(s["sampled_idxs"]) > 0)
        assert len(s["labels"]) == min(512, len(im["proposals"]) + len(im["boxes"]))
        assert n_pos == int((s["labels"] >= 1).sum())
    assert (roi_batch[0]["samples"]["labels"] > 0).any() and (roi_batch[2]["samples"]["labels"] > 0).sum() == 128
    assert not (roi_batch[1]["samples"]["labels"] != 0).any()  # no boxes: all background


def test_roi_heads_select_other_settings():
    """An ignore band (bg 0.3 < fg 0.6), a small batch with a large positive fraction, other box coder weights."""
    rng = np.random.default_rng(5)
    images = []
    for i, size in enumerate(SIZES):
        boxes = gt_boxes(rng, 8, size)
        props = proposals_like_rpn(rng, 700, size, boxes)
        labels = rng.integers(1, 4, 8).astype(np.int64)
        s = _stages.roi_heads_select_training_samples(props, boxes, labels, fg_iou_thresh=0.6, bg_iou_thresh=0.3,
                                                      batch_size_per_image=64, positive_fraction=0.75,
                                                      bbox_reg_weights=(1.0, 2.0, 3.0, 4.0), seed=i)
        images.append(dict(proposals=props, boxes=boxes, labels=labels, samples=s))
    heads = make_roi_heads(batch=64, fraction=0.75, fg=0.6, bg=0.3)
    heads.box_coder = det_utils.BoxCoder((1.0, 2.0, 3.0, 4.0))
    for im, *theirs in zip(images, *torch_select(heads, images)):
        assert_same_samples(im["samples"], *theirs)
        assert len(im["samples"]["labels"]) == 64
        assert (im["samples"]["labels"] == -1).sum() == 0 and (im["samples"]["labels"] > 0).sum() == 48


def test_roi_heads_select_degenerate_boxes():
    """Zero-area boxes: IoU 0 / 0 = NaN between two of them (a zero-area box and itself once appended, or a
    zero-area proposal), which torch's max propagates into a foreground match with the first such box, and targets
    of 0 / 0 or x / 0. Every row is sampled here, so all of them are compared."""
    rng = np.random.default_rng(9)
    size = SIZES[0]
    boxes = gt_boxes(rng, 6, size, degenerate=True)
    props = proposals_like_rpn(rng, 60, size, boxes)
    labels = np.int64([1, 2, 3, 4, 5, 6])
    s = _stages.roi_heads_select_training_samples(props, boxes, labels, seed=1)
    images = [dict(proposals=props, boxes=boxes, labels=labels, samples=s)]
    for im, *theirs in zip(images, *torch_select(make_roi_heads(), images)):
        assert_same_samples(im["samples"], *theirs)
    assert len(s["labels"]) == 66 and np.isnan(s["regression_targets"]).any()


def test_roi_sampler_is_uniform():
    """Over seeds, each foreground proposal is sampled equally often (chi-square)."""
    boxes = np.float32([[0, 0, 100, 100]])
    # 30 proposals with IoU >= 0.5 (foreground), 200 far away (background).
    fg = np.float32([[i, 0, 100 + i, 100] for i in range(30)])
    bg = np.float32([[300 + i, 300, 340 + i, 340] for i in range(200)])
    props = np.concatenate([fg, bg])
    counts = np.zeros(len(props) + 1)
    draws = 1500
    for seed in range(draws):
        s = _stages.roi_heads_select_training_samples(props, boxes, np.int64([1]), batch_size_per_image=40,
                                                      positive_fraction=0.25, seed=seed)
        assert (s["labels"] > 0).sum() == 10 and len(s["labels"]) == 40
        counts[s["sampled_idxs"]] += 1
    assert stats.chisquare(counts[:30].tolist() + [counts[-1]]).pvalue > 1e-3  # 31 foreground (the box itself too)
    assert stats.chisquare(counts[30:-1]).pvalue > 1e-3


@pytest.mark.parametrize("num_classes", [7, 91])
def test_fastrcnn_loss(roi_batch, num_classes):
    rng = np.random.default_rng(num_classes)
    labels = [im["samples"]["labels"] for im in roi_batch]
    targets = [im["samples"]["regression_targets"] for im in roi_batch]
    s = sum(len(x) for x in labels)
    logits = t(rng.normal(0, 4, (s, num_classes)).astype(np.float32)).requires_grad_()
    codes = t(rng.normal(0, 1, (s, 4 * num_classes)).astype(np.float32)).requires_grad_()
    loss_cls, loss_box = fastrcnn_loss(logits, codes, [t(x) for x in labels], [t(x) for x in targets])
    (loss_cls + loss_box).backward()
    ours = _stages.fastrcnn_loss(logits.detach().numpy(), codes.detach().numpy(), np.concatenate(labels),
                                 np.concatenate(targets))
    assert_loss(ours[0], loss_cls)
    assert_loss(ours[1], loss_box)
    assert_grad(ours[2], logits.grad)
    assert_grad(ours[3], codes.grad)


def test_fastrcnn_loss_without_samples():
    """No samples: torchvision's mean over nothing is NaN; ours is 0."""
    empty = np.zeros((0, 3), np.float32)
    loss_cls, loss_box = fastrcnn_loss(t(empty), torch.zeros(0, 12), [torch.zeros(0, dtype=torch.int64)],
                                       [torch.zeros(0, 4)])
    assert torch.isnan(loss_cls) and torch.isnan(loss_box)
    ours = _stages.fastrcnn_loss(empty, np.zeros((0, 12), np.float32), np.zeros(0, np.int64),
                                 np.zeros((0, 4), np.float32))
    assert ours[:2] == (0.0, 0.0)


def mask_inputs(roi_batch):
    """torchvision's maskrcnn_loss arguments: per image its positive samples' boxes and matched gt indices."""
    proposals, matched = [], []
    for im in roi_batch:
        s = im["samples"]
        pos = s["labels"] > 0
        proposals.append(s["proposals"][pos])
        matched.append(s["matched_idxs"][pos])
    return proposals, matched


@pytest.mark.parametrize("mask_size", [28, 14])
def test_maskrcnn_loss(roi_batch, mask_size):
    proposals, matched = mask_inputs(roi_batch)
    p, k = sum(len(x) for x in proposals), 7
    assert p > 100
    rng = np.random.default_rng(mask_size)
    logits = t(rng.normal(0, 2, (p, k, mask_size, mask_size)).astype(np.float32)).requires_grad_()
    gt_masks = [im["masks"] for im in roi_batch]
    gt_labels = [im["labels"] for im in roi_batch]
    loss = maskrcnn_loss(logits, [t(x) for x in proposals], [t(m) for m in gt_masks], [t(x) for x in gt_labels],
                         [t(x) for x in matched])
    loss.backward()
    ours = _stages.maskrcnn_loss(logits.detach().numpy(), proposals, gt_masks, gt_labels, matched)
    assert_loss(ours[0], loss)
    assert_grad(ours[1], logits.grad)
    # Zero off each sample's own class channel.
    own = np.concatenate([lab[m] for lab, m in zip(gt_labels, matched)])
    off = np.ones((p, k), bool)
    off[np.arange(p), own] = False
    assert not ours[1][off].any()


def test_maskrcnn_loss_without_positives():
    """No positive sample: torchvision returns mask_logits.sum() * 0, zero loss and gradient."""
    logits = torch.zeros(0, 3, 28, 28, requires_grad=True)
    masks = [np.zeros((2, 30, 40), np.uint8), np.zeros((0, 20, 20), np.uint8)]
    empty = [np.zeros((0, 4), np.float32)] * 2
    none = [np.zeros(0, np.int64)] * 2
    loss = maskrcnn_loss(logits, [t(x) for x in empty], [t(m) for m in masks], [t(np.int64([1, 2])), t(none[1])],
                         [t(x) for x in none])
    ours = _stages.maskrcnn_loss(np.zeros((0, 3, 28, 28), np.float32), empty, masks, [np.int64([1, 2]), none[1]],
                                 none)
    assert float(loss.detach()) == ours[0] == 0.0 and ours[1].shape == (0, 3, 28, 28)


# ---- Checked arguments ----------------------------------------------------------------------------------------------


def test_arguments_are_checked():
    box = np.float32([[0, 0, 10, 10]])
    with pytest.raises(ValueError, match="low_threshold should be <= high_threshold"):
        _stages.rpn_assign_targets(box, box, fg_iou_thresh=0.3, bg_iou_thresh=0.7)
    with pytest.raises(ValueError, match="No proposal boxes available"):
        _stages.rpn_assign_targets(np.zeros((0, 4), np.float32), box)
    with pytest.raises(ValueError, match="positive_fraction"):
        _stages.rpn_sample(np.zeros(3, np.float32), positive_fraction=1.5)
    with pytest.raises(ValueError, match="pred_bbox_deltas"):
        _stages.rpn_loss(np.zeros(3, np.float32), np.zeros((2, 4), np.float32), np.zeros(3, np.float32),
                         np.zeros((3, 4), np.float32), np.zeros(3, np.uint8), np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="gt_labels"):
        _stages.roi_heads_select_training_samples(box, box, np.int64([1, 2]))
    with pytest.raises(ValueError, match="labels: expected class indices in 0...2, got 3"):
        _stages.fastrcnn_loss(np.zeros((1, 3), np.float32), np.zeros((1, 12), np.float32), np.int64([3]),
                              np.zeros((1, 4), np.float32))
    masks = [np.ones((1, 8, 8), np.uint8)]
    with pytest.raises(ValueError, match="matched_idxs: 1 at index 0 is not a mask of gt_masks"):
        _stages.maskrcnn_loss(np.zeros((1, 2, 4, 4), np.float32), [box], masks, [np.int64([1, 1])], [np.int64([1])])
    with pytest.raises(ValueError, match="proposals"):
        _stages.maskrcnn_loss(np.zeros((1, 2, 4, 4), np.float32), [np.float32([[0, 0, np.inf, 4]])], masks,
                              [np.int64([1])], [np.int64([0])])
    with pytest.raises(ValueError, match="bilinear samples"):
        _stages.maskrcnn_loss(np.zeros((1, 2, 4, 4), np.float32), [np.float32([[0, 0, 1e9, 1e9]])], masks,
                              [np.int64([1])], [np.int64([0])])
