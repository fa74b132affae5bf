"""RoIHeads stage vs torchvision's (eval mode): the same FPN features and RPN proposals (computed by torchvision) go
into both; detections must agree one to one (labels, boxes to a small fraction of a pixel, scores to 1e-4) and
Mask R-CNN's 28 x 28 mask probabilities to 1e-4."""
import numpy as np
import pytest
import torch

import detector_utils as du
from swiftrcnn.models import _stages

SIZES = [(300, 400), (350, 280)]
NUM_CLASSES = 91


def prepare(kind, sizes, seed=1, **kwargs):
    model = du.build(kind, **kwargs)
    du.sharpen_rpn(model)
    image_list, feats = du.features(model, du.images(sizes, seed=seed))
    with torch.no_grad():
        proposals, _ = model.rpn(image_list, feats)
    du.sharpen_classifier(model, feats, image_list, proposals, scale=2.0, background=16.0)
    return model, image_list, feats, proposals, du.numpy_state(model)


@pytest.fixture(scope="module")
def mask_model():
    return prepare("mask", SIZES, min_size=320, max_size=512)


@torch.no_grad()
def torch_detect(model, feats, proposals, image_list, masks=True):
    """torchvision's RoIHeads; without `masks`, its box branch alone (RoIHeads has no masks without mask_roi_pool)."""
    heads = model.roi_heads
    pool = heads.mask_roi_pool
    try:
        heads.mask_roi_pool = pool if masks else None
        detections, _ = heads(feats, proposals, image_list.image_sizes)
    finally:
        heads.mask_roi_pool = pool
    return [{k: v.numpy() for k, v in d.items()} for d in detections]


def run_ours(model, feats, proposals, image_list, state, masks=True):
    heads = model.roi_heads
    if not masks:
        state = {k: v for k, v in state.items() if not k.startswith(("roi_heads.mask_head", "roi_heads.mask_pred"))}
    return _stages.roi_heads_detect(state, {k: v.numpy() for k, v in feats.items()}, [p.numpy() for p in proposals],
                                    image_list.image_sizes, NUM_CLASSES, masks, score_thresh=heads.score_thresh,
                                    nms_thresh=heads.nms_thresh, detections_per_img=heads.detections_per_img)


def assert_same_detections(ours, theirs, masks, limit):
    """One to one in ranking order (rows with scores within 1e-6 may swap: see `assert_same_ranking`): labels equal,
    boxes to 1e-3 px, scores to 1e-4, mask probabilities to 1e-4."""
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        assert o["boxes"].dtype == np.float32 and o["scores"].dtype == np.float32 and o["labels"].dtype == np.int64
        assert o["boxes"].shape == t["boxes"].shape, f'{o["boxes"].shape} != {t["boxes"].shape}'
        extra = [(o["labels"], t["labels"], 0)]
        if masks:
            assert o["masks"].dtype == np.float32 and o["masks"].shape == t["masks"].shape
            extra.append((o["masks"], t["masks"], 1e-4))
        else:
            assert "masks" not in o
        du.assert_same_ranking(o["boxes"], o["scores"], t["boxes"], t["scores"], box_atol=1e-3, score_atol=1e-4,
                               truncated=len(t["scores"]) == limit, extra=extra)


def test_mask_rcnn(mask_model):
    model, image_list, feats, proposals, state = mask_model
    theirs = torch_detect(model, feats, proposals, image_list)
    # A few dozen confident, distinct detections per image (well below detections_per_img).
    assert all(10 <= len(t["labels"]) < 100 for t in theirs)
    assert all(t["scores"][0] > 0.5 and len(np.unique(t["labels"])) > 5 for t in theirs)
    assert_same_detections(run_ours(model, feats, proposals, image_list, state), theirs, True, 100)


def test_faster_rcnn(mask_model):
    """masks=False: the box branch alone (mask weights must then be absent)."""
    model, image_list, feats, proposals, state = mask_model
    theirs = torch_detect(model, feats, proposals, image_list, masks=False)
    assert_same_detections(run_ours(model, feats, proposals, image_list, state, masks=False), theirs, False, 100)


@pytest.mark.parametrize("score, nms, per_image, masks", [
    (0.05, 0.5, 7, True),    # truncation to detections_per_img
    (0.3, 0.3, 100, False),
    (0.001, 0.5, 100, False),  # more than 1000 candidates: torchvision runs NMS class by class
    (0.05, 1.0, 100, False),  # no suppression
    (0.05, 1.5, 100, False),  # any threshold, as torchvision (issue #9: above 1 crashed)
    (0.001, 1.5, 100, False),
    (0.05, float("nan"), 100, False),
    (0.05, -0.5, 100, False),
    (0.999, 0.5, 100, True),  # nothing passes
    (0.05, 0.5, 0, True),
])
def test_settings(mask_model, score, nms, per_image, masks):
    model, image_list, feats, proposals, state = mask_model
    heads = model.roi_heads
    saved = heads.score_thresh, heads.nms_thresh, heads.detections_per_img
    try:
        heads.score_thresh, heads.nms_thresh, heads.detections_per_img = score, nms, per_image
        theirs = torch_detect(model, feats, proposals, image_list, masks)
        ours = run_ours(model, feats, proposals, image_list, state, masks)
    finally:
        heads.score_thresh, heads.nms_thresh, heads.detections_per_img = saved
    assert_same_detections(ours, theirs, masks, per_image)


def test_empty_proposals(mask_model):
    """An image without proposals gets no detections; a batch without any gives empty results of the right shape."""
    model, image_list, feats, proposals, state = mask_model
    few = [proposals[0][:40], proposals[1][:0]]
    assert_same_detections(run_ours(model, feats, few, image_list, state),
                           torch_detect(model, feats, few, image_list), True, 100)
    none = [p[:0] for p in proposals]
    ours = run_ours(model, feats, none, image_list, state)
    assert [o["masks"].shape for o in ours] == [(0, 1, 28, 28)] * 2
    assert [o["boxes"].shape for o in ours] == [(0, 4)] * 2


def test_default_image_size():
    """torchvision's default 800 / 1333 resizing."""
    model, image_list, feats, proposals, state = prepare("mask", [(500, 375)], seed=3)
    assert tuple(image_list.tensors.shape[-2:]) == (1088, 800)
    theirs = torch_detect(model, feats, proposals, image_list)
    assert all(len(t["labels"]) >= 5 for t in theirs)
    assert_same_detections(run_ours(model, feats, proposals, image_list, state), theirs, True, 100)


# ---- bad input --------------------------------------------------------------------------------------------------

SETUP = """
from swiftrcnn.models import _stages
C, R, K = 2, 3, 4
f32 = lambda *s: np.zeros(s, np.float32)
sd = {'roi_heads.box_head.fc6.weight': f32(R, C * 49), 'roi_heads.box_head.fc6.bias': f32(R),
      'roi_heads.box_head.fc7.weight': f32(R, R), 'roi_heads.box_head.fc7.bias': f32(R),
      'roi_heads.box_predictor.cls_score.weight': f32(K, R), 'roi_heads.box_predictor.cls_score.bias': f32(K),
      'roi_heads.box_predictor.bbox_pred.weight': f32(4 * K, R), 'roi_heads.box_predictor.bbox_pred.bias': f32(4 * K),
      'rpn.head.conv.0.0.weight': f32(1)}
masks = {f'roi_heads.mask_head.{i}.0.{p}': f32(5, C if i == 0 else 5, 3, 3) if p == 'weight' else f32(5)
         for i in range(2) for p in ('weight', 'bias')}
masks.update({'roi_heads.mask_predictor.conv5_mask.weight': f32(5, 5, 2, 2),
              'roi_heads.mask_predictor.conv5_mask.bias': f32(5),
              'roi_heads.mask_predictor.mask_fcn_logits.weight': f32(K, 5, 1, 1),
              'roi_heads.mask_predictor.mask_fcn_logits.bias': f32(K)})
feats = [f32(1, C, 16, 16), f32(1, C, 8, 8)]
props = [np.array([[2, 2, 30, 30], [10, 4, 50, 40]], np.float32)]
def run(sd=sd, feats=feats, props=props, sizes=[(64, 64)], k=K, masks=False, **kw):
    return _stages.roi_heads_detect(sd, feats, props, sizes, k, masks, **kw)
"""


def test_runs_on_tiny_weights(isolated):
    """Zero weights: every class has probability 1 / K > 0.05, so each proposal gives K - 1 detections (one per
    class) equal to the proposal; masks are sigmoid(0) = 0.5."""
    kind, message = isolated.run(SETUP + """
r = run(sd={**sd, **masks}, masks=True)[0]
result = (r['labels'].tolist(), r['boxes'].tolist()[:1], float(r['masks'].min()), float(r['masks'].max()))
""")
    assert kind == "ok", message
    labels, boxes, lo, hi = eval(message)
    assert sorted(labels) == [1, 1, 2, 2, 3, 3] and boxes == [[2, 2, 30, 30]] and lo == hi == 0.5


@pytest.mark.parametrize("code, exc, fragment", [
    ("del sd['roi_heads.box_head.fc7.bias']; run()", ValueError, "missing keys: roi_heads.box_head.fc7.bias"),
    ("sd['roi_heads.box_head.fc6.bias'] = f32(R + 1); run()", ValueError, "shape mismatches"),
    ("run(sd={**sd, **masks})", ValueError, "unexpected keys: roi_heads.mask_head.0.0.bias"),
    ("run(masks=True)", ValueError, "missing key roi_heads.mask_head.0.0.weight"),
    ("m = dict(masks); del m['roi_heads.mask_predictor.conv5_mask.weight']; run(sd={**sd, **m}, masks=True)",
     ValueError, "roi_heads.mask_predictor.conv5_mask.weight"),
    ("m = dict(masks); m['roi_heads.mask_head.1.0.weight'] = f32(5, 4, 3, 3); run(sd={**sd, **m}, masks=True)",
     ValueError, "roi_heads.mask_head.1.0.weight: expected shape (5, 5, 3, 3)"),
    ("run(k=5)", ValueError, "num_classes = 5"),
    ("run(k=0)", ValueError, "num_classes"),
    ("run(feats=[f32(1, 3, 16, 16)])", ValueError, "roi_heads.box_head.fc6.weight: expected shape (R, 147)"),
    ("del sd['roi_heads.box_head.fc6.weight']; run()", ValueError, "no such key"),
    ("run(feats=[f32(1, C, 16, 16), f32(1, C + 1, 8, 8)])", ValueError, "features[1]"),
    ("run(props=[np.array([[0, 0, np.nan, 4]], np.float32)])", ValueError, "proposals: contains NaN"),
    ("run(props=[np.array([[0, 0, np.inf, 4]], np.float32)])", ValueError, "proposals: contains an infinite value"),
    ("run(props=[np.array([[0, 0, 3e38, 3e38]], np.float32), np.zeros((0, 4))])", ValueError,
     "expected shape (1,) proposal counts"),
    ("run(props=[np.zeros((2, 5), np.float32)])", ValueError, "proposals[0]: expected shape (P, 4)"),
    ("run(sizes=[(64, 64), (64, 64)])", ValueError, "image_sizes: expected shape (1, 2)"),
    ("run(sizes=[(64, -1)])", ValueError, "image_sizes"),
    ("run(score_thresh=float('nan'))", ValueError, "score_thresh"),
    ("run(detections_per_img=-1)", ValueError, "detections_per_img"),
])
def test_bad_input(isolated, code, exc, fragment):
    isolated.expect_error(SETUP + code, exc, fragment)


def test_huge_finite_proposals_do_not_crash(isolated):
    """Proposals far outside the maps are pooled as zeros (finite geometry at every level's scale)."""
    kind, message = isolated.run(SETUP + """
r = run(props=[np.array([[-3e38, -3e38, 3e38, 3e38], [1e30, 1e30, 2e30, 2e30]], np.float32)])[0]
result = len(r['labels'])
""")
    assert kind == "ok", message
