"""`legacy=True` (faster-rcnn.pytorch's conventions) against a NumPy reference of its proposal layer and test-time
postprocessing written here from the source document's description (../shared/seeds/003: `proposal_layer.py`,
`test_net.py`), on swiftrcnn's own backbone features (the backbone is the same in both conventions, and tested
against torchvision elsewhere): py-faster-rcnn's anchor table shifted per cell, "+1" decoding and clipping, the
minimum size of 16 pixels at the original scale, top-n, "+1" NMS; RoIPool (torchvision's, the oracle), the fully
connected head; per-class thresholding and NMS, the image threshold of `max_per_image`, boxes divided by the scale."""
import numpy as np
import pytest
import torch
import torchvision

from swiftrcnn import models
from swiftrcnn.models import parts
from detector_utils import assert_same_ranking
from test_legacy import ref_bbox_transform_inv, ref_clip_boxes, ref_generate_anchors, ref_nms

SIZES = [(240, 330), (300, 200)]
NUM_CLASSES = 4
SETTINGS = dict(min_size=320, max_size=512, rpn_pre_nms_top_n_test=400, rpn_post_nms_top_n_test=60,
                box_score_thresh=0.05, box_nms_thresh=0.3, box_detections_per_img=25)


def small_legacy_model(seed=0):
    """A stride-16 backbone (48 channels), 9 anchors (sizes 32, 64, 128 = scales 2, 4, 8 of the 16-pixel base),
    RoIPool 7 × 7 at 1/16, a TwoMLPHead of 64: seeded weights, RPN deltas and the classifier scaled so that
    proposals and detections are distinct."""
    backbone = parts.Sequential(
        parts.Conv2d(3, 16, 3, padding=1), parts.ReLU(), parts.MaxPool2d(2),
        parts.Conv2d(16, 32, 3, padding=1), parts.ReLU(), parts.MaxPool2d(2),
        parts.Conv2d(32, 32, 3, padding=1), parts.ReLU(), parts.MaxPool2d(2),
        parts.Conv2d(32, 48, 3, padding=1), parts.ReLU(), parts.MaxPool2d(2))
    spec = dict(rpn_anchor_generator=parts.AnchorGenerator(((32, 64, 128),), ((0.5, 1.0, 2.0),)),
                box_roi_pool=parts.RoIPool(7, 1 / 16), box_head=parts.TwoMLPHead(48 * 49, 64),
                box_predictor=parts.FastRCNNPredictor(64, NUM_CLASSES))
    random = models.FasterRCNN(backbone, weights="random", seed=seed, **spec)
    state = random.state_dict()
    rng = np.random.default_rng(seed)
    state["rpn.head.cls_logits.weight"] = rng.normal(0, 0.3, state["rpn.head.cls_logits.weight"].shape).astype(
        np.float32)
    state["rpn.head.bbox_pred.weight"] *= 3
    state["roi_heads.box_predictor.cls_score.weight"] *= 40
    state["roi_heads.box_predictor.cls_score.bias"][0] += 2.5
    return backbone, spec, state


def conv(x, w, b, padding):
    """(C, H, W) float64 convolution, stride 1."""
    c, h, wd = x.shape
    k = w.shape[-1]
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    cols = np.stack([xp[:, i:i + h, j:j + wd] for i in range(k) for j in range(k)], 1)  # (C, k*k, H, W)
    return (w.reshape(w.shape[0], c * k * k) @ cols.reshape(c * k * k, h * wd)).reshape(-1, h, wd) + b[:, None, None]


def reference(state, feature, image_size, scale, original, batch_hw):
    """faster-rcnn.pytorch's test-time pipeline on one image's feature map (C, H, W): (boxes, scores, labels)."""
    s = {k: v.astype(np.float64) for k, v in state.items()}
    hidden = np.maximum(conv(feature, s["rpn.head.conv.0.0.weight"], s["rpn.head.conv.0.0.bias"], 1), 0)
    logits = conv(hidden, s["rpn.head.cls_logits.weight"], s["rpn.head.cls_logits.bias"], 0)   # (A, H, W)
    deltas = conv(hidden, s["rpn.head.bbox_pred.weight"], s["rpn.head.bbox_pred.bias"], 0)     # (4A, H, W)
    a, h, w = logits.shape
    # Anchors: the table shifted by (x, y) * stride, location-major then anchor.
    table = ref_generate_anchors(16, [0.5, 1, 2], np.array([32, 64, 128]) / 16)
    stride_y, stride_x = batch_hw[0] // h, batch_hw[1] // w
    ys, xs = np.meshgrid(np.arange(h) * stride_y, np.arange(w) * stride_x, indexing="ij")
    shifts = np.stack([xs.ravel(), ys.ravel(), xs.ravel(), ys.ravel()], 1)
    anchors = (shifts[:, None, :] + table[None]).reshape(-1, 4)
    scores = 1 / (1 + np.exp(-logits.transpose(1, 2, 0).reshape(-1)))
    d = deltas.reshape(a, 4, h, w).transpose(2, 3, 0, 1).reshape(-1, 4)
    proposals = ref_clip_boxes(ref_bbox_transform_inv(anchors, d), image_size)
    # py-faster-rcnn's _filter_boxes at 16 pixels of the original image.
    ws, hs = proposals[:, 2] - proposals[:, 0] + 1, proposals[:, 3] - proposals[:, 1] + 1
    keep = np.where((ws >= 16 * scale) & (hs >= 16 * scale))[0]
    order = keep[np.argsort(-scores[keep], kind="stable")][:SETTINGS["rpn_pre_nms_top_n_test"]]
    dets = np.hstack([proposals[order], scores[order, None]])
    rois = proposals[order][ref_nms(dets, 0.7)][:SETTINGS["rpn_post_nms_top_n_test"]]

    # RoI heads: RoIPool (torchvision's), fc6, fc7, predictor.
    pooled = torchvision.ops.roi_pool(torch.from_numpy(feature[None]), [torch.from_numpy(rois)], 7, 1 / 16).numpy()
    x = pooled.reshape(len(rois), -1)
    x = np.maximum(x @ s["roi_heads.box_head.fc6.weight"].T + s["roi_heads.box_head.fc6.bias"], 0)
    x = np.maximum(x @ s["roi_heads.box_head.fc7.weight"].T + s["roi_heads.box_head.fc7.bias"], 0)
    cls = x @ s["roi_heads.box_predictor.cls_score.weight"].T + s["roi_heads.box_predictor.cls_score.bias"]
    box = x @ s["roi_heads.box_predictor.bbox_pred.weight"].T + s["roi_heads.box_predictor.bbox_pred.bias"]
    probs = np.exp(cls - cls.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    stds = np.tile([0.1, 0.1, 0.2, 0.2], NUM_CLASSES)
    pred = ref_clip_boxes(ref_bbox_transform_inv(rois, box * stds), image_size) / scale
    out_boxes, out_scores, out_labels = [], [], []
    for j in range(1, NUM_CLASSES):
        inds = np.where(probs[:, j] > SETTINGS["box_score_thresh"])[0]
        inds = inds[np.argsort(-probs[inds, j], kind="stable")]
        dets = np.hstack([pred[inds, 4 * j:4 * j + 4], probs[inds, j, None]])
        kept = ref_nms(dets, SETTINGS["box_nms_thresh"]) if len(inds) else []
        for i in kept:
            out_boxes.append(dets[i, :4])
            out_scores.append(dets[i, 4])
            out_labels.append(j)
    scores_all = np.array(out_scores)
    limit = SETTINGS["box_detections_per_img"]
    if len(scores_all) > limit:
        thresh = np.sort(scores_all)[-limit]
        sel = scores_all >= thresh
        out_boxes = [b for b, k in zip(out_boxes, sel) if k]
        out_labels = [b for b, k in zip(out_labels, sel) if k]
        scores_all = scores_all[sel]
    order = np.argsort(-scores_all, kind="stable")
    return (np.array(out_boxes).reshape(-1, 4)[order], scores_all[order],
            np.array(out_labels, np.int64)[order], len(rois))


def test_legacy_pipeline_matches_numpy_reference():
    backbone, spec, state = small_legacy_model()
    model = models.FasterRCNN(backbone, weights=state, _legacy=True, **spec, **SETTINGS)
    assert model.architecture["legacy"] is True
    rng = np.random.default_rng(5)
    images = [rng.random((3, h, w), dtype=np.float32) for h, w in SIZES]
    levels, sizes = model.features(images)
    feature = levels["0"]
    batch_hw = (feature.shape[2] * 16, feature.shape[3] * 16)
    total = 0
    # One batch, as the features were computed (the padded batch decides the anchors beyond each image).
    for i, (ours, (h, w)) in enumerate(zip(model(images), SIZES)):
        scale = min(320 / min(h, w), 512 / max(h, w))
        boxes, scores, labels, proposals = reference(state, feature[i].astype(np.float64), sizes[i], scale, (h, w),
                                                     batch_hw)
        assert proposals == SETTINGS["rpn_post_nms_top_n_test"]
        assert len(scores) > 3
        assert_same_ranking(ours["boxes"], ours["scores"], boxes, scores, box_atol=2e-2, score_atol=1e-4,
                            extra=[(ours["labels"], labels, 0)])
        total += len(scores)
    assert total > 10


def test_legacy_differs_from_torchvision_conventions():
    """The same weights without legacy give other boxes (the "+1" arithmetic and the anchor table matter)."""
    backbone, spec, state = small_legacy_model()
    legacy = models.FasterRCNN(backbone, weights=state, _legacy=True, **spec, **SETTINGS)
    plain = models.FasterRCNN(backbone, weights=state, **spec, **SETTINGS)
    image = np.random.default_rng(6).random((3, 240, 330), dtype=np.float32)
    (a,), (b,) = legacy([image]), plain([image])
    assert len(a["boxes"]) and len(b["boxes"])
    assert not (a["boxes"].shape == b["boxes"].shape and np.allclose(a["boxes"], b["boxes"], atol=0.5))


def test_vgg16_legacy_builder():
    """fasterrcnn_vgg16(legacy=True): faster-rcnn.pytorch's test-time numbers as defaults, overridable."""
    spec_model = models.fasterrcnn_vgg16(weights="random", legacy=True, min_size=224, max_size=320)
    c = spec_model.config
    assert (c["rpn_pre_nms_top_n_test"], c["rpn_post_nms_top_n_test"], c["box_nms_thresh"]) == (6000, 300, 0.3)
    assert (c["min_size"], c["max_size"]) == (224, 320)
    assert spec_model.architecture["legacy"] is True
    assert models.fasterrcnn_vgg16(weights="random", legacy=True).config["min_size"] == 600
    (out,) = spec_model([np.random.default_rng(0).random((3, 200, 260), dtype=np.float32)])
    assert out["boxes"].shape[1] == 4
    with pytest.raises(TypeError, match="legacy"):
        models.fasterrcnn_vgg16(weights="random", legacy="yes")


def test_legacy_is_for_faster_rcnn_inference():
    backbone, spec, state = small_legacy_model()
    model = models.FasterRCNN(backbone, weights=state, _legacy=True, **spec, **SETTINGS)
    with pytest.raises(ValueError, match="legacy: faster-rcnn.pytorch's conventions are for inference only"):
        model.train()
    with pytest.raises(ValueError, match="legacy: faster-rcnn.pytorch's conventions are for Faster R-CNN only"):
        models.MaskRCNN(backbone, weights="random", _legacy=True, mask_roi_pool=parts.MultiScaleRoIAlign(["0"], 14, 2),
                        **spec, **SETTINGS)
