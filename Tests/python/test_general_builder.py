"""The general builders `models.FasterRCNN(backbone, num_classes, ...)` / `models.MaskRCNN(...)` against
torchvision's `FasterRCNN` / `MaskRCNN` assembled from the same parts: a custom `nn.Sequential` backbone (with
batch norms, strided convolutions and max-pools), a single-level anchor generator, MultiScaleRoIAlign or
`torchvision.ops.roi_pool` as the box pooler, and custom head sizes. Same seeded weights (sharpened so detections
are confident and distinct), same images: detections must match one to one."""
import json

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

import swiftrcnn
from swiftrcnn import models
from swiftrcnn.models import parts
from detector_utils import assert_same_ranking, images, sharpen_rpn

SIZES = [(240, 320), (300, 200), (256, 256)]
SMALL = dict(min_size=320, max_size=512)
ANCHORS = (((32, 64, 128),), ((0.5, 1.0, 2.0),))


class RoIPoolOnMap(nn.Module):
    """torchvision.ops.roi_pool on one named map, as torchvision's RoIHeads calls a box pooler."""

    def __init__(self, name, output_size, spatial_scale):
        super().__init__()
        self.name, self.output_size, self.spatial_scale = name, output_size, spatial_scale

    def forward(self, features, proposals, image_shapes):
        return torchvision.ops.roi_pool(features[self.name], proposals, self.output_size, self.spatial_scale)


# (torch module, swiftrcnn part) pairs of one backbone: stride 8, 48 channels; batch norms with and without conv bias.
def backbone_pair():
    torch_layers = [nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                    nn.MaxPool2d(3, 2, 1), nn.Conv2d(32, 48, 1), nn.ReLU(), nn.Conv2d(48, 48, 3, padding=1)]
    ours = parts.Sequential(parts.Conv2d(3, 16, 3, padding=1), parts.BatchNorm2d(16), parts.ReLU(), parts.MaxPool2d(2),
                            parts.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), parts.BatchNorm2d(32),
                            parts.ReLU(), parts.MaxPool2d(3, 2, 1), parts.Conv2d(32, 48, 1), parts.ReLU(),
                            parts.Conv2d(48, 48, 3, padding=1))
    backbone = nn.Sequential(*torch_layers)
    backbone.out_channels = 48
    return backbone, ours


@torch.no_grad()
def randomize_norms(model):
    """Running statistics and affine parameters far from identity, so folding them is tested."""
    g = torch.Generator().manual_seed(7)
    for m in model.modules():
        randomize_norm(m, g)


@torch.no_grad()
def randomize_norm(m, g):
    if isinstance(m, (nn.BatchNorm2d, torchvision.ops.FrozenBatchNorm2d)):
        n = m.weight.shape[0]
        m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
        m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
        m.weight.copy_(torch.rand(n, generator=g) + 0.5)
        m.bias.copy_(torch.randn(n, generator=g) * 0.2)


@torch.no_grad()
def sharpened(model, imgs, spread=4.0, background=12.0, randomize=True):
    """As detector_utils' sharpening, but this small random backbone's box features vary little between proposals,
    so each class's logit is normalised to a spread of `spread` over these proposals before the background is
    raised."""
    if randomize:
        randomize_norms(model)
    model.eval()
    sharpen_rpn(model)
    image_list, _ = model.transform(imgs)
    feats = model.backbone(image_list.tensors)
    feats = {"0": feats} if isinstance(feats, torch.Tensor) else feats
    proposals, _ = model.rpn(image_list, feats)
    heads = model.roi_heads
    x = heads.box_head(heads.box_roi_pool(feats, proposals, image_list.image_sizes))
    cls = heads.box_predictor.cls_score
    centred = cls.weight @ (x - x.mean(0)).T
    cls.weight.mul_(spread / centred.std(1, keepdim=True))
    cls.bias.copy_(-(cls.weight @ x.mean(0)))
    cls.bias[0] += background
    heads.box_predictor.bbox_pred.weight.mul_(0.05)
    return model


def state(model):
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def compare(ours, theirs, masks=False, box_atol=2e-2, limit=100):
    total = 0
    for o, t in zip(ours, theirs):
        t = {k: v.numpy() for k, v in t.items()}
        assert_same_ranking(o["boxes"], o["scores"], t["boxes"], t["scores"], box_atol=box_atol, score_atol=1e-4,
                            truncated=len(t["scores"]) == limit, extra=[(o["labels"], t["labels"], 0)])
        total += len(t["scores"])
        if masks:
            assert o["masks"].shape == t["masks"].shape
            np.testing.assert_allclose(o["masks"], t["masks"], atol=2e-3)
    return total


@pytest.mark.parametrize("pooler", ["multi_scale_roi_align", "roi_pool"])
def test_sequential_backbone_faster_rcnn(pooler):
    torch.manual_seed(0)
    backbone, our_backbone = backbone_pair()
    if pooler == "roi_pool":
        tv_pool, our_pool = RoIPoolOnMap("0", 7, 1 / 8), parts.RoIPool(7, 1 / 8)
    else:
        tv_pool, our_pool = MultiScaleRoIAlign(["0"], 7, 2), parts.MultiScaleRoIAlign(["0"], 7, 2)
    tv = FasterRCNN(backbone, rpn_anchor_generator=AnchorGenerator(*ANCHORS), box_head=TwoMLPHead(48 * 49, 256),
                    box_predictor=FastRCNNPredictor(256, 5), **SMALL)
    tv.roi_heads.box_roi_pool = tv_pool  # torchvision's constructor takes only MultiScaleRoIAlign
    imgs = images(SIZES)
    sharpened(tv, imgs)
    ours = models.FasterRCNN(our_backbone, weights=state(tv), rpn_anchor_generator=parts.AnchorGenerator(*ANCHORS),
                             box_roi_pool=our_pool, box_head=parts.TwoMLPHead(48 * 49, 256),
                             box_predictor=parts.FastRCNNPredictor(256, 5), **SMALL)
    with torch.no_grad():
        theirs = tv(imgs)
    got = ours([im.numpy() for im in imgs])
    assert compare(got, theirs) >= 20, "the sharpened model should detect a few dozen objects"
    levels, sizes = ours.features([im.numpy() for im in imgs])
    with torch.no_grad():
        image_list, _ = tv.transform(imgs)
        expected = tv.backbone(image_list.tensors).numpy()
    assert list(levels) == ["0"] and sizes == [tuple(s) for s in image_list.image_sizes]
    np.testing.assert_allclose(levels["0"], expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_sequential_backbone_mask_rcnn():
    torch.manual_seed(1)
    backbone, our_backbone = backbone_pair()
    tv = MaskRCNN(backbone, box_predictor=FastRCNNPredictor(1024, 4), rpn_anchor_generator=AnchorGenerator(*ANCHORS),
                  box_roi_pool=MultiScaleRoIAlign(["0"], 5, 2), mask_roi_pool=MultiScaleRoIAlign(["0"], 10, 1),
                  mask_head=MaskRCNNHeads(48, [32, 24], 1), mask_predictor=MaskRCNNPredictor(24, 16, 4), **SMALL)
    imgs = images(SIZES, seed=3)
    sharpened(tv, imgs)
    ours = models.MaskRCNN(our_backbone, box_predictor=parts.FastRCNNPredictor(1024, 4), weights=state(tv),
                           rpn_anchor_generator=parts.AnchorGenerator(*ANCHORS),
                           box_roi_pool=parts.MultiScaleRoIAlign(["0"], 5, 2),
                           mask_roi_pool=parts.MultiScaleRoIAlign(["0"], 10, 1),
                           mask_head=parts.MaskRCNNHeads(48, [32, 24]),
                           mask_predictor=parts.MaskRCNNPredictor(24, 16, 4), **SMALL)
    with torch.no_grad():
        theirs = tv(imgs)
    got = ours([im.numpy() for im in imgs])
    assert compare(got, theirs, masks=True) >= 10


def tv_vgg16(pooler, num_classes=6):
    """The classic Faster R-CNN as torchvision expresses it (see models.fasterrcnn_vgg16)."""
    backbone = torchvision.models.vgg16().features[:-1]
    backbone.out_channels = 512
    model = FasterRCNN(backbone, rpn_anchor_generator=AnchorGenerator(((128, 256, 512),), ((0.5, 1.0, 2.0),)),
                       box_head=TwoMLPHead(512 * 49, 4096), box_predictor=FastRCNNPredictor(4096, num_classes),
                       **SMALL)
    if pooler == "roi_pool":
        model.roi_heads.box_roi_pool = RoIPoolOnMap("0", 7, 1 / 16)
    return model


@pytest.mark.parametrize("pooler", ["roi_pool", "roi_align"])
def test_fasterrcnn_vgg16(pooler):
    torch.manual_seed(2)
    tv = tv_vgg16(pooler)
    imgs = images(SIZES, seed=5)
    sharpened(tv, imgs)
    ours = models.fasterrcnn_vgg16(weights=state(tv), num_classes=6, pooler=pooler, **SMALL)
    with torch.no_grad():
        theirs = tv(imgs)
    got = ours([im.numpy() for im in imgs])
    assert compare(got, theirs) >= 20


def tv_resnet50_c4(pooler, num_classes=4, **kwargs):
    """The C4 model as torchvision expresses it (see models.fasterrcnn_resnet50_c4)."""
    r = torchvision.models.resnet50(norm_layer=torchvision.ops.FrozenBatchNorm2d)
    backbone = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3)
    backbone.out_channels = 1024
    model = FasterRCNN(backbone, rpn_anchor_generator=AnchorGenerator(((128, 256, 512),), ((0.5, 1.0, 2.0),)),
                       box_roi_pool=MultiScaleRoIAlign(["0"], 14, 2),
                       box_head=nn.Sequential(r.layer4, nn.AdaptiveAvgPool2d(1), nn.Flatten()),
                       box_predictor=FastRCNNPredictor(2048, num_classes), **kwargs)
    if pooler == "roi_pool":
        model.roi_heads.box_roi_pool = RoIPoolOnMap("0", 14, 1 / 16)
    return model


@pytest.mark.parametrize("pooler", ["roi_align", "roi_pool"])
def test_fasterrcnn_resnet50_c4(pooler):
    # 40 proposals per image: layer4 on 14 x 14 regions costs 1.6 GFLOP per region.
    kwargs = dict(SMALL, rpn_post_nms_top_n_test=40)
    torch.manual_seed(4)
    tv = tv_resnet50_c4(pooler, **kwargs)
    imgs = images(SIZES, seed=6)
    sharpened(tv, imgs, background=6.0)
    ours = models.fasterrcnn_resnet50_c4(weights=state(tv), num_classes=4, pooler=pooler, **kwargs)
    with torch.no_grad():
        theirs = tv(imgs)
    got = ours([im.numpy() for im in imgs])
    # 0.05 px: random weights through 16 bottlenecks (layer4 included) amplify float32 rounding into the deltas.
    assert compare(got, theirs, box_atol=5e-2) >= 5


@pytest.mark.parametrize("kind", ["faster", "mask"])
def test_resnet50_fpn_v2(kind):
    """The v2 models: FPN, box head and mask head with batch norms (randomised there, so folding is tested), two RPN
    convolutions, the conv + fc box head."""
    factory = getattr(torchvision.models.detection, f"{kind}rcnn_resnet50_fpn_v2")
    torch.manual_seed(8)
    tv = factory(weights=None, weights_backbone=None, num_classes=7, **SMALL).eval()
    g = torch.Generator().manual_seed(9)
    for part in (tv.backbone.fpn, tv.roi_heads):
        for m in part.modules():
            randomize_norm(m, g)
    imgs = images(SIZES, seed=11)
    sharpened(tv, imgs, background=8.0, randomize=False)
    ours = getattr(models, f"{kind}rcnn_resnet50_fpn_v2")(weights=state(tv), num_classes=7, **SMALL)
    with torch.no_grad():
        theirs = tv(imgs)
    got = ours([im.numpy() for im in imgs])
    assert compare(got, theirs, masks=kind == "mask", box_atol=5e-2) >= 10


def test_resnet50_fpn_builder_is_the_general_builder(tmp_path):
    """fasterrcnn_resnet50_fpn is FasterRCNN(parts.ResNet50FPN(), ...) with the default parts, described as such."""
    sd = models.random_state_dict("faster", num_classes=3, seed=0)
    a = models.fasterrcnn_resnet50_fpn(weights=sd, num_classes=3, **SMALL)
    b = models.FasterRCNN(parts.ResNet50FPN(), 3, weights=sd, rpn_anchor_generator=parts.AnchorGenerator(
        ((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5),
        box_roi_pool=parts.MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2), box_head=parts.TwoMLPHead(256 * 49, 1024),
        **SMALL)
    assert a.architecture == {"backbone": {"type": "resnet50_fpn"}}
    img = np.random.default_rng(0).random((3, 200, 240), dtype=np.float32)
    ra, rb = a([img])[0], b([img])[0]
    for k in ra:
        np.testing.assert_array_equal(ra[k], rb[k])


def test_architecture_errors_name_the_part():
    _, backbone = backbone_pair()
    anchors = parts.AnchorGenerator(*ANCHORS)
    with pytest.raises(ValueError, match="rpn_anchor_generator: required"):
        models.FasterRCNN(backbone, 3, weights={}, box_roi_pool=parts.MultiScaleRoIAlign(["0"], 7, 2))
    # Names the backbone lacks are skipped, as torchvision's MultiScaleRoIAlign does; none of them is an error.
    with pytest.raises(ValueError, match=r'featmap_names: none of \["p2", "p3"\] is a backbone level'):
        models.FasterRCNN(backbone, 3, weights={}, rpn_anchor_generator=anchors,
                          box_roi_pool=parts.MultiScaleRoIAlign(["p2", "p3"], 7, 2))
    with pytest.raises(ValueError, match="anchor_sizes: the backbone has 1 feature map"):
        models.FasterRCNN(backbone, 3, weights={}, rpn_anchor_generator=parts.AnchorGenerator(
            ((32,), (64,)), ((1.0,), (1.0,))), box_roi_pool=parts.RoIPool(7, 1 / 8))
    with pytest.raises(ValueError, match=r"layers\[1\]: conv2d in_channels is 8 but the layer before gives 4"):
        models.FasterRCNN(parts.Sequential(parts.Conv2d(3, 4, 3), parts.Conv2d(8, 8, 3)), 3, weights={},
                          rpn_anchor_generator=anchors, box_roi_pool=parts.RoIPool(7, 1 / 8))
    with pytest.raises(ValueError, match="box_head.in_channels: expected out_channels"):
        models.FasterRCNN(backbone, 3, weights={}, rpn_anchor_generator=anchors,
                          box_roi_pool=parts.RoIPool(7, 1 / 8), box_head=parts.TwoMLPHead(100, 64))
    with pytest.raises(ValueError, match="box_predictor: required with a box_head of representation_size 64"):
        models.FasterRCNN(backbone, 3, weights={}, rpn_anchor_generator=anchors,
                          box_roi_pool=parts.RoIPool(7, 1 / 8), box_head=parts.TwoMLPHead(48 * 49, 64))
    with pytest.raises(ValueError, match="num_classes: should be None when box_predictor"):
        models.FasterRCNN(backbone, 3, weights={}, rpn_anchor_generator=anchors, box_roi_pool=parts.RoIPool(7, 1 / 8),
                          box_predictor=parts.FastRCNNPredictor(1024, 3))
    with pytest.raises(TypeError, match="layers\\[0\\]: expected Conv2d"):
        parts.Sequential(nn.Conv2d(3, 4, 3))  # type: ignore[arg-type]
    # Missing weights are listed by torchvision key, as for the ResNet-50-FPN models.
    with pytest.raises(ValueError, match=r"backbone\.0\.weight"):
        models.FasterRCNN(backbone, 3, weights={}, rpn_anchor_generator=anchors, box_roi_pool=parts.RoIPool(7, 1 / 8))


def test_architecture_json_is_checked_by_the_library():
    """The JSON crossing the C ABI is parsed and checked in Swift: malformed or unknown members are value errors."""
    cfg = list(models.fasterrcnn_resnet50_fpn(weights=models.random_state_dict("faster", 2), num_classes=2)
               ._config_tuple())
    for text, message in [("{", "invalid JSON"), ('{"backbone": 3}', "backbone: expected a JSON object"),
                          ('{"bakbone": {}}', "unknown member 'bakbone'"),
                          ('{"backbone": {"type": "vgg"}}', "backbone.type: expected"),
                          ('{"box_roi_pool": {"type": "roi_pool", "output_size": 7, "spatial_scale": -1}}',
                           "spatial_scale: expected a positive number"),
                          ('[' * 100 + ']' * 100, "nested deeper")]:
        cfg[-1] = text
        with pytest.raises(ValueError, match=message):
            swiftrcnn._C.model_create(tuple(cfg), [], [])
    cfg[-1] = json.dumps({"backbone": {"type": "resnet50_fpn"}})
    with pytest.raises(ValueError, match="missing keys"):
        swiftrcnn._C.model_create(tuple(cfg), [], [])


def test_keypointrcnn_resnet50_fpn():
    """Keypoint R-CNN: boxes as the other models, and per detection 17 keypoints (bicubic-resized heat maps, arg-max)
    and their scores."""
    from detector_utils import sharpen_classifier
    torch.manual_seed(12)
    kwargs = dict(SMALL, box_detections_per_img=30)
    tv = torchvision.models.detection.keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None, **kwargs).eval()
    imgs = images(SIZES, seed=13)
    sharpen_rpn(tv)
    with torch.no_grad():
        image_list, _ = tv.transform(imgs)
        feats = tv.backbone(image_list.tensors)
        proposals, _ = tv.rpn(image_list, feats)
    sharpen_classifier(tv, feats, image_list, proposals, background=10.0)
    ours = models.keypointrcnn_resnet50_fpn(weights=state(tv), **kwargs)
    with torch.no_grad():
        theirs = tv(imgs)
    got = ours([im.numpy() for im in imgs])
    assert compare(got, theirs, limit=30) >= 10
    points = differing = 0
    for o, t in zip(got, theirs):
        t = {k: v.numpy() for k, v in t.items()}
        assert o["keypoints"].shape == t["keypoints"].shape and o["keypoints"].dtype == np.float32
        assert o["keypoints_scores"].shape == t["keypoints_scores"].shape
        for i in range(len(o["scores"])):
            j = int(np.argmin(np.abs(t["boxes"] - o["boxes"][i]).max(1)))
            close = np.abs(o["keypoints"][i] - t["keypoints"][j]).max(1) <= 1e-2
            points += len(close)
            differing += int((~close).sum())
            # A keypoint may move to a near-tied maximum (heat maps equal to ~1e-5); its score stays the maximum.
            np.testing.assert_allclose(o["keypoints_scores"][i], t["keypoints_scores"][j], atol=1e-3, rtol=1e-4)
    assert differing <= points // 50, f"{differing} of {points} keypoints differ"
