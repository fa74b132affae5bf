"""RegionProposalNetwork stage vs torchvision's (eval mode): the same FPN features (computed by torchvision) go into
both, and the proposals must agree in number, ranking (up to exact float32 ties), boxes and objectness
probabilities."""
import numpy as np
import pytest
import torch
from torchvision.models.detection.rpn import concat_box_prediction_layers

import detector_utils as du
from swiftrcnn.models import _stages

SIZES = [(300, 400), (350, 280)]


@pytest.fixture(scope="module")
def small():
    model = du.build("faster", min_size=320, max_size=512)
    du.sharpen_rpn(model)
    image_list, feats = du.features(model, du.images(SIZES))
    return model, image_list, feats, du.numpy_state(model)


@torch.no_grad()
def torch_proposals(model, image_list, feats):
    """torchvision's RPN forward up to filter_proposals, keeping the scores it computes and discards."""
    rpn = model.rpn
    maps = list(feats.values())
    objectness, deltas = rpn.head(maps)
    anchors = rpn.anchor_generator(image_list, maps)
    per_level = [o[0].numel() for o in objectness]
    objectness, deltas = concat_box_prediction_layers(objectness, deltas)
    proposals = rpn.box_coder.decode(deltas, anchors).view(len(anchors), -1, 4)
    boxes, scores = rpn.filter_proposals(proposals, objectness, image_list.image_sizes, per_level)
    return [b.numpy() for b in boxes], [s.numpy() for s in scores]


def run_ours(model, image_list, feats, state):
    rpn = model.rpn
    return _stages.rpn_proposals(state, {k: v.numpy() for k, v in feats.items()}, image_list.image_sizes,
                                 tuple(image_list.tensors.shape[-2:]), pre_nms_top_n=rpn.pre_nms_top_n(),
                                 post_nms_top_n=rpn.post_nms_top_n(), nms_thresh=rpn.nms_thresh,
                                 score_thresh=rpn.score_thresh)


def assert_same_proposals(ours, theirs, limit=None):
    """Same count and ranking; boxes to 1e-3 px (float32 box deltas times anchor sizes of hundreds of pixels),
    probabilities to 1e-5. `limit`: post_nms_top_n."""
    (our_boxes, our_scores), (their_boxes, their_scores) = ours, theirs
    assert len(our_boxes) == len(their_boxes)
    for ob, os_, tb, ts in zip(our_boxes, our_scores, their_boxes, their_scores):
        assert ob.dtype == np.float32 and os_.dtype == np.float32
        assert ob.shape == tb.shape
        du.assert_same_ranking(ob, os_, tb, ts, box_atol=1e-3, score_atol=1e-5,
                               truncated=limit is not None and len(ts) == limit)


def test_matches_torchvision_forward(small):
    """The oracle above is torchvision's own forward pass, and ours matches it (default settings: > 1000 boxes per
    image, so torchvision's batched_nms runs NMS level by level)."""
    model, image_list, feats, state = small
    theirs = torch_proposals(model, image_list, feats)
    with torch.no_grad():
        forward, _ = model.rpn(image_list, feats)
    for b, f in zip(theirs[0], forward):
        np.testing.assert_array_equal(b, f.numpy())
    assert all(len(b) > 250 for b in theirs[0])
    assert_same_proposals(run_ours(model, image_list, feats, state), theirs, limit=model.rpn.post_nms_top_n())


@pytest.mark.parametrize("pre, post, nms, score", [
    (100, 60, 0.5, 0.0),    # <= 1000 boxes: torchvision's coordinate-offset batched_nms; truncation after NMS
    (2000, 300, 0.7, 0.0),  # pre_nms_top_n above some levels' anchor counts
    (1000, 1000, 0.3, 0.6),  # score threshold
    (1000, 1000, 1.0, 0.0),  # no suppression
    (1000, 1000, 1.5, 0.0),  # any threshold, as torchvision (issue #9: above 1 crashed)
    (100, 60, 1.5, 0.0),
    (1000, 1000, float("nan"), 0.0),
    (100, 60, -0.5, 0.0),
    (1, 1000, 0.7, 0.0),
    (1000, 0, 0.7, 0.0),    # empty results
    (0, 1000, 0.7, 0.0),
    (1000, 1000, 0.7, 1.0),
])
def test_settings(small, pre, post, nms, score):
    model, image_list, feats, state = small
    rpn = model.rpn
    saved = rpn._pre_nms_top_n, rpn._post_nms_top_n, rpn.nms_thresh, rpn.score_thresh
    try:
        rpn._pre_nms_top_n, rpn._post_nms_top_n = dict(training=pre, testing=pre), dict(training=post, testing=post)
        rpn.nms_thresh, rpn.score_thresh = nms, score
        theirs = torch_proposals(model, image_list, feats)
        ours = run_ours(model, image_list, feats, state)
    finally:
        rpn._pre_nms_top_n, rpn._post_nms_top_n, rpn.nms_thresh, rpn.score_thresh = saved
    assert_same_proposals(ours, theirs, limit=post)


def test_image_list_of_one_and_extra_keys_ignored(small):
    """A batch of one; keys outside "rpn." (backbone, roi_heads) are ignored."""
    model, _, _, state = small
    image_list, feats = du.features(model, du.images([(200, 520)], seed=5))
    assert any(not k.startswith("rpn.") for k in state)
    assert_same_proposals(run_ours(model, image_list, feats, state), torch_proposals(model, image_list, feats),
                          limit=1000)


def test_default_image_size():
    """torchvision's default 800 / 1333 resizing."""
    model = du.build("faster")
    du.sharpen_rpn(model)
    image_list, feats = du.features(model, du.images([(480, 640)], seed=3))
    assert tuple(image_list.tensors.shape[-2:]) == (800, 1088)
    assert_same_proposals(run_ours(model, image_list, feats, du.numpy_state(model)),
                          torch_proposals(model, image_list, feats), limit=1000)


# ---- bad input --------------------------------------------------------------------------------------------------

SETUP = """
from swiftrcnn.models import _stages
C = 4
f32 = lambda *s: np.zeros(s, np.float32)
sd = {'rpn.head.conv.0.0.weight': f32(C, C, 3, 3), 'rpn.head.conv.0.0.bias': f32(C),
      'rpn.head.cls_logits.weight': f32(3, C, 1, 1), 'rpn.head.cls_logits.bias': f32(3),
      'rpn.head.bbox_pred.weight': f32(12, C, 1, 1), 'rpn.head.bbox_pred.bias': f32(12),
      'backbone.body.conv1.weight': f32(1)}
feats = [f32(1, C, 8, 8), f32(1, C, 4, 4)]
kw = dict(anchor_sizes=((32,), (64,)), aspect_ratios=((0.5, 1.0, 2.0),) * 2)
def run(sd=sd, feats=feats, sizes=[(32, 32)], hw=(32, 32), **more):
    return _stages.rpn_proposals(sd, feats, sizes, hw, **{**kw, **more})
"""


def test_runs_on_tiny_weights(isolated):
    """Zero weights: every anchor has probability 0.5 and decodes to itself (clipped)."""
    kind, message = isolated.run(SETUP + "b, s = run(); result = (len(b[0]), float(s[0][0]))")
    assert kind == "ok", message
    count, score = eval(message)
    assert count > 0 and score == 0.5


@pytest.mark.parametrize("code, exc, fragment", [
    ("del sd['rpn.head.bbox_pred.bias']; run()", ValueError, "missing keys: rpn.head.bbox_pred.bias"),
    ("sd['rpn.head.cls_logits.bias'] = np.zeros(4, np.float32); run()", ValueError, "shape mismatches"),
    ("sd['rpn.head.extra'] = np.zeros(1, np.float32); run()", ValueError, "unexpected keys: rpn.head.extra"),
    ("run(feats=[np.zeros((1, 5, 8, 8), np.float32)] * 2)", ValueError, "rpn.head.conv.0.0.weight"),
    ("del sd['rpn.head.conv.0.0.weight']; run()", ValueError, "missing key rpn.head.conv.0.0.weight"),
    ("run(feats=[f32(1, C, 8, 8), f32(2, C, 4, 4)])", ValueError, "features[1]: expected shape (1, 4, H, W)"),
    ("run(feats=[f32(1, C, 8, 8), f32(1, C, 0, 4)])", ValueError, "features[1]: expected a map of at least 1 x 1"),
    ("run(feats=[])", ValueError, "features: expected 1...16"),
    ("run(feats=[f32(1, C, 8)] * 2)", ValueError, "features[0]: expected shape (N, C, H, W)"),
    ("run(sizes=[(32, 32), (32, 32)])", ValueError, "image_sizes: expected shape (1, 2)"),
    ("run(sizes=[(0, 32)])", ValueError, "image_sizes"),
    ("run(hw=(32, 0))", ValueError, "batch_hw"),
    ("run(score_thresh=float('nan'))", ValueError, "score_thresh"),
    ("run(pre_nms_top_n=-1)", ValueError, "pre_nms_top_n"),
    ("run(post_nms_top_n=-1)", ValueError, "post_nms_top_n"),
    ("run(anchor_sizes=((32,), (64,), (128,)))", ValueError, "anchor_sizes"),
    ("run(aspect_ratios=((0.5, -1.0, 2.0),) * 2)", ValueError, "aspect_ratios: expected numbers > 0"),
    ("run(anchor_sizes=((32,), (64, 128)))", ValueError, "same number of anchors per location"),
    ("run(sd=[1, 2])", TypeError, "state_dict"),
])
def test_bad_input(isolated, code, exc, fragment):
    isolated.expect_error(SETUP + code, exc, fragment)


def test_non_finite_features_do_not_crash(isolated):
    """NaN logits and boxes are dropped (NaN fails the size and score tests), infinite boxes are clipped."""
    code = SETUP + """
feats = [np.full((1, C, 8, 8), np.nan, np.float32), np.full((1, C, 4, 4), np.inf, np.float32)]
sd['rpn.head.conv.0.0.weight'] = np.ones((C, C, 3, 3), np.float32)
sd['rpn.head.bbox_pred.weight'] = np.ones((12, C, 1, 1), np.float32)
b, s = run()
result = (len(b[0]), bool(np.isfinite(b[0]).all()))
"""
    kind, message = isolated.run(code)
    assert kind == "ok", message
    assert eval(message)[1]
