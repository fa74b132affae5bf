"""swiftrcnn.models: the builders' arguments, the transform (normalise, resize, pad) and the ResNet-50-FPN backbone
against torchvision's `model.transform` and `model.backbone`, on seeded random weights with non-trivial batch-norm
statistics; bad images, configs and state dicts in the `isolated` worker."""
import threading

import numpy as np
import pytest
import torch
from torchvision.models.detection import fasterrcnn_resnet50_fpn as tv_fasterrcnn
from torchvision.models.detection import maskrcnn_resnet50_fpn as tv_maskrcnn
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from swiftrcnn import models

SMALL = dict(min_size=320, max_size=512)
LEVELS = ["0", "1", "2", "3", "pool"]


def _randomize_batch_norms(model, seed):
    """Non-trivial frozen statistics and affine parameters in every batch norm of the backbone."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, v in model.state_dict().items():
            if not name.startswith("backbone.body.") or v.dtype != torch.float32 or v.dim() != 1:
                continue
            if name.endswith("running_mean") or name.endswith(".bias"):
                v.copy_(torch.randn(v.shape, generator=g) * 0.1)
            elif name.endswith("running_var") or name.endswith(".weight"):
                v.copy_(torch.rand(v.shape, generator=g) + 0.5)


def _backbone_state(model):
    """The full state dict (the model is built strictly from every key); these tests look at the backbone."""
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def _mask_state(faster_model):
    """A Mask R-CNN state dict sharing every key of `faster_model` (backbone, RPN, box head) plus the mask
    branch of a seeded torchvision Mask R-CNN."""
    torch.manual_seed(1)
    mask = tv_maskrcnn(weights=None, weights_backbone=None).eval()
    state = {k: v.numpy().copy() for k, v in mask.state_dict().items()}
    state.update(_backbone_state(faster_model))
    return state


@pytest.fixture(scope="module")
def tv_model():
    torch.manual_seed(0)
    m = tv_fasterrcnn(weights=None, weights_backbone=None, **SMALL).eval()
    _randomize_batch_norms(m, 1)
    return m


@pytest.fixture(scope="module")
def model(tv_model):
    return models.fasterrcnn_resnet50_fpn(weights=_backbone_state(tv_model), **SMALL)


def _default_transform():
    """torchvision's transform as fasterrcnn_resnet50_fpn builds it with its default arguments."""
    return GeneralizedRCNNTransform(800, 1333, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]).eval()


def _images(seed, sizes):
    rng = np.random.default_rng(seed)
    return [rng.random((3, h, w), dtype=np.float32) for h, w in sizes]


def _torch_reference(tv_model, images):
    with torch.no_grad():
        image_list, _ = tv_model.transform([torch.from_numpy(i) for i in images])
        features = tv_model.backbone(image_list.tensors)
    return image_list, features


def _assert_features(ours, theirs, rtol=1e-4):
    assert list(ours) == LEVELS
    for name in LEVELS:
        want = theirs[name].numpy()
        got = ours[name]
        assert got.dtype == np.float32 and got.shape == want.shape, (name, got.shape, want.shape)
        scale = np.abs(want).max()
        err = np.abs(got - want).max()
        assert err <= rtol * scale, f"level {name}: max error {err} vs max |value| {scale}"


class TestBuilders:
    @pytest.mark.parametrize("ours, theirs", [(models.fasterrcnn_resnet50_fpn, tv_fasterrcnn),
                                              (models.maskrcnn_resnet50_fpn, tv_maskrcnn)])
    def test_defaults_are_torchvisions(self, tv_model, ours, theirs):
        tv = theirs(weights=None, weights_backbone=None)
        m = ours(weights=_mask_state(tv_model) if ours is models.maskrcnn_resnet50_fpn else _backbone_state(tv_model))
        assert isinstance(m, models.MaskRCNN if ours is models.maskrcnn_resnet50_fpn else models.FasterRCNN)
        want = dict(
            num_classes=tv.roi_heads.box_predictor.cls_score.out_features,
            min_size=tv.transform.min_size[-1], max_size=tv.transform.max_size,
            image_mean=tuple(tv.transform.image_mean), image_std=tuple(tv.transform.image_std),
            rpn_pre_nms_top_n_test=tv.rpn._pre_nms_top_n["testing"],
            rpn_post_nms_top_n_test=tv.rpn._post_nms_top_n["testing"],
            rpn_nms_thresh=tv.rpn.nms_thresh, rpn_score_thresh=tv.rpn.score_thresh,
            box_score_thresh=tv.roi_heads.score_thresh, box_nms_thresh=tv.roi_heads.nms_thresh,
            box_detections_per_img=tv.roi_heads.detections_per_img,
            rpn_pre_nms_top_n_train=tv.rpn._pre_nms_top_n["training"],
            rpn_post_nms_top_n_train=tv.rpn._post_nms_top_n["training"],
            rpn_fg_iou_thresh=tv.rpn.proposal_matcher.high_threshold,
            rpn_bg_iou_thresh=tv.rpn.proposal_matcher.low_threshold,
            rpn_batch_size_per_image=tv.rpn.fg_bg_sampler.batch_size_per_image,
            rpn_positive_fraction=tv.rpn.fg_bg_sampler.positive_fraction,
            box_fg_iou_thresh=tv.roi_heads.proposal_matcher.high_threshold,
            box_bg_iou_thresh=tv.roi_heads.proposal_matcher.low_threshold,
            box_batch_size_per_image=tv.roi_heads.fg_bg_sampler.batch_size_per_image,
            box_positive_fraction=tv.roi_heads.fg_bg_sampler.positive_fraction,
            bbox_reg_weights=tuple(tv.roi_heads.box_coder.weights),
            # torchvision's default for a model built from pretrained weights (weights are always given here).
            trainable_backbone_layers=3, min_sizes=(), seed=0)
        assert m.config == want

    def test_arguments_are_passed(self, tv_model):
        m = models.fasterrcnn_resnet50_fpn(weights=_backbone_state(tv_model), num_classes=None, min_size=64,
                                           max_size=100, image_mean=[0.5, 0.5, 0.5], image_std=(0.1, 0.2, 0.3),
                                           box_detections_per_img=7)
        assert m.config["num_classes"] == 91 and m.config["image_std"] == (0.1, 0.2, 0.3)
        assert m.config["box_detections_per_img"] == 7
        _, sizes = m.transform(_images(0, [(50, 80)]))
        assert sizes == [(62, 100)]

    def test_weights_from_a_checkpoint_file(self, tv_model, model, tmp_path):
        path = tmp_path / "backbone.pth"
        torch.save(tv_model.state_dict(), path)
        m = models.fasterrcnn_resnet50_fpn(weights=str(path), **SMALL)
        images = _images(4, [(70, 50)])
        a, b = m.features(images)[0], model.features(images)[0]
        assert all(np.array_equal(a[k], b[k]) for k in LEVELS)

    def test_mask_rcnn_shares_the_backbone(self, tv_model, model):
        mask = models.maskrcnn_resnet50_fpn(weights=_mask_state(tv_model), **SMALL)
        images = _images(3, [(90, 120)])
        a, sa = model.features(images)
        b, sb = mask.features(images)
        assert sa == sb and all(np.array_equal(a[k], b[k]) for k in LEVELS)


class TestTransform:
    @pytest.mark.parametrize("sizes", [[(200, 300)], [(300, 200), (120, 500), (57, 61)], [(480, 640), (33, 17)],
                                       [(1, 7)], [(320, 512)]])
    def test_matches_torchvision(self, tv_model, model, sizes):
        images = _images(len(sizes), sizes)
        with torch.no_grad():
            image_list, _ = tv_model.transform([torch.from_numpy(i) for i in images])
        batch, image_sizes = model.transform(images)
        assert image_sizes == [tuple(s) for s in image_list.image_sizes]
        want = image_list.tensors.numpy()
        assert batch.shape == want.shape and batch.dtype == np.float32
        assert batch.shape[2] % 32 == 0 and batch.shape[3] % 32 == 0
        np.testing.assert_allclose(batch, want, rtol=1e-6, atol=1e-6)

    def test_default_sizes_match_torchvision(self, tv_model):
        # The resize rule at 800 / 1333, including images whose long side binds.
        tv = _default_transform()
        m = models.fasterrcnn_resnet50_fpn(weights=_backbone_state(tv_model))
        for size in [(480, 640), (100, 1000), (1333, 799), (7, 3), (800, 1333), (601, 1001)]:
            with torch.no_grad():
                want = tv([torch.zeros(3, *size)])[0].image_sizes
            assert m.transform(np.zeros((1, 3) + size, np.float32))[1] == [tuple(s) for s in want], size

    @pytest.mark.parametrize("min_size, max_size", [(800.0, 1333.0), (320.5, 511.75), (100.25, 1333)])
    def test_float_sizes_match_torchvision(self, tv_model, min_size, max_size):
        # Issue #9: a float min_size was a TypeError; torchvision's transform takes it as a float.
        tv = GeneralizedRCNNTransform(min_size, max_size, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]).eval()
        m = models.fasterrcnn_resnet50_fpn(weights=_backbone_state(tv_model), min_size=min_size, max_size=max_size)
        assert m.config["min_size"] == min_size and m.config["max_size"] == max_size
        images = _images(6, [(480, 640), (301, 97)])
        with torch.no_grad():
            image_list = tv([torch.from_numpy(i) for i in images])[0]
        batch, sizes = m.transform(images)
        assert sizes == [tuple(s) for s in image_list.image_sizes]
        np.testing.assert_allclose(batch, image_list.tensors.numpy(), rtol=1e-6, atol=1e-6)

    def test_inputs_accepted(self, model):
        images = _images(5, [(40, 60), (40, 60)])
        want, sizes = model.transform(images)
        as4d, sizes4d = model.transform(np.stack(images))
        as64, sizes64 = model.transform([i.astype(np.float64) for i in images])
        strided, _ = model.transform([np.asfortranarray(i) for i in images])
        assert sizes == sizes4d == sizes64
        assert np.array_equal(want, as4d) and np.array_equal(want, as64) and np.array_equal(want, strided)


class TestFeatures:
    @pytest.mark.parametrize("sizes", [[(240, 320)], [(300, 200), (160, 350)]])
    def test_matches_torchvision(self, tv_model, model, sizes):
        images = _images(10 + len(sizes), sizes)
        image_list, want = _torch_reference(tv_model, images)
        got, image_sizes = model.features(images)
        assert image_sizes == [tuple(s) for s in image_list.image_sizes]
        _assert_features(got, want)

    def test_matches_torchvision_at_default_sizes(self, tv_model):
        m = models.fasterrcnn_resnet50_fpn(weights=_backbone_state(tv_model))
        images = _images(20, [(480, 640)])
        with torch.no_grad():
            image_list, _ = _default_transform()([torch.from_numpy(i) for i in images])
            want = tv_model.backbone(image_list.tensors)
        got, image_sizes = m.features(images)
        assert image_sizes == [(800, 1066)] == [tuple(s) for s in image_list.image_sizes]
        _assert_features(got, want)

    def test_concurrent_calls(self, tv_model):
        m = models.fasterrcnn_resnet50_fpn(weights=_backbone_state(tv_model), min_size=64, max_size=96)
        batches = [_images(30 + i, [(50 + 7 * i, 70)]) for i in range(4)]
        want = [m.features(b)[0] for b in batches]
        got = [None] * len(batches)

        def run(i):
            got[i] = m.features(batches[i])[0]

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(batches))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for w, g in zip(want, got):
            assert all(np.array_equal(w[k], g[k]) for k in LEVELS)


def _shapes_literal(tv_model):
    return repr({k: tuple(v.shape) for k, v in _backbone_state(tv_model).items()})


# Builds `state` (zeros of the backbone's shapes) and `build(**kwargs)` in the worker; the test appends its code.
_SETUP = """
import swiftrcnn.models
state = {{k: np.zeros(s, np.float32) for k, s in {shapes}.items()}}
def build(**kw):
    return swiftrcnn.models.fasterrcnn_resnet50_fpn(weights=state, **kw)
"""


class TestBadInput:
    @pytest.fixture(scope="class")
    def setup(self, tv_model):
        return _SETUP.format(shapes=_shapes_literal(tv_model))

    def test_bad_images(self, isolated, setup):
        m = setup + "m = build(min_size=320, max_size=512)\n"
        isolated.expect_error(m + "m.features([np.zeros((4, 10, 10), np.float32)])", ValueError, "images[0]",
                              "(3, H, W)")
        isolated.expect_error(m + "m.features([np.zeros((3, 8, 8)), np.zeros((1, 8, 8))])", ValueError,
                              "images[1]", "(1, 8, 8)")
        isolated.expect_error(m + "x = np.zeros((3, 8, 8)); x[1, 2, 3] = np.nan; m.features([x])", ValueError,
                              "images[0]", "NaN")
        isolated.expect_error(m + "x = np.zeros((3, 8, 8)); x[0, 0, 0] = -np.inf; m.transform([x])", ValueError,
                              "images[0]", "infinite")
        isolated.expect_error(m + "m.features([np.zeros((3, 0, 8))])", ValueError, "images[0]", "H, W >= 1")
        isolated.expect_error(m + "m.features([np.zeros((3, 8, 8), np.uint8)])", TypeError, "images[0]",
                              "floating")
        isolated.expect_error(m + "m.features([np.zeros((8, 8))])", ValueError, "images[0]", "(C, H, W)")
        isolated.expect_error(m + "m.features([])", ValueError, "images", "1...")
        isolated.expect_error(m + "m.features(5)", TypeError, "images")
        # Resized to zero rows: scale = 512 / 5000, 1 row -> 0.
        isolated.expect_error(m + "m.features([np.zeros((3, 1, 5000))])", ValueError, "images[0]",
                              "resizes to 0 x 512")
        isolated.expect_error(setup + "build(min_size=32768, max_size=32768).transform([np.zeros((3, 1, 1))])",
                              MemoryError, "exceeds")

    @pytest.mark.parametrize("kwargs, exc, fragment", [
        ("min_size=0", ValueError, "min_size"),
        ("max_size=-5", ValueError, "max_size"),
        ("min_size=10**6", ValueError, "min_size"),
        ("min_size=0.5", ValueError, "min_size"),
        ("min_size=float('nan')", ValueError, "min_size"),
        ("max_size=float('inf')", ValueError, "max_size"),
        ("min_size='800'", TypeError, "min_size"),
        ("max_size=True", TypeError, "max_size"),
        ("num_classes=0", ValueError, "num_classes"),
        ("image_mean=(0.5, float('nan'), 0.5)", ValueError, "image_mean"),
        ("image_std=(0.5, 0.0, 0.5)", ValueError, "image_std"),
        ("image_std=(0.5, 0.5)", ValueError, "image_std"),
        ("rpn_pre_nms_top_n_test=-1", ValueError, "rpn_pre_nms_top_n_test"),
        ("rpn_post_nms_top_n_test=-1", ValueError, "rpn_post_nms_top_n_test"),
        ("rpn_score_thresh=float('nan')", ValueError, "rpn_score_thresh"),
        ("box_score_thresh=float('nan')", ValueError, "box_score_thresh"),
        ("box_detections_per_img=-1", ValueError, "box_detections_per_img"),
        ("box_detections_per_img='7'", TypeError, "box_detections_per_img"),
        ("trainable_backbone_layers=3, foo=1, bar=2", TypeError, "'foo', 'bar'"),
        ("trainable_backbone_layers=6", ValueError, "trainable_backbone_layers"),
        ("min_size=()", ValueError, "min_size"),
    ])
    def test_bad_config(self, isolated, setup, kwargs, exc, fragment):
        isolated.expect_error(setup + f"build({kwargs})", exc, fragment)

    def test_bad_state_dicts(self, isolated, setup):
        isolated.expect_error(setup + "swiftrcnn.models.fasterrcnn_resnet50_fpn()", ValueError, "weights")
        message = isolated.expect_error(
            setup + """
del state["backbone.body.layer2.0.conv2.weight"]
state["backbone.fpn.inner_blocks.1.0.bias"] = np.zeros(255, np.float32)
state["backbone.body.bn1.running_var"] = np.zeros((64, 1), np.float32)
state["rpn.head.extra.weight"] = np.zeros((256, 256, 3, 3), np.float32)
state["backbone.body.layer1.0.bn1.num_batches_tracked"] = np.array(5)
build()""", ValueError,
            "missing keys: backbone.body.layer2.0.conv2.weight (expected shape [128, 128, 3, 3])",
            "backbone.fpn.inner_blocks.1.0.bias: expected shape [256], got [255]",
            "backbone.body.bn1.running_var: expected shape [64], got [64, 1]",
            "unexpected keys: rpn.head.extra.weight")
        assert "num_batches_tracked" not in message
        isolated.expect_error(setup + "state['backbone.body.conv1.weight'] = np.zeros((64, 3, 7, 7), np.int32); "
                              "build()", TypeError, "backbone.body.conv1.weight", "int32")
        isolated.expect_error(setup + "swiftrcnn.models.fasterrcnn_resnet50_fpn(weights=42)", TypeError, "source")

    def test_float64_weights_are_cast(self, isolated, setup):
        kind, message = isolated.run(setup + """
state = {k: v.astype(np.float64) for k, v in state.items()}
feats, sizes = build(min_size=64, max_size=64).features([np.ones((3, 20, 30))])
result = (sorted(feats), sizes, float(np.abs(feats["0"]).max()))""")
        assert kind == "ok", message
        assert message == "(['0', '1', '2', '3', 'pool'], [(42, 64)], 0.0)"
