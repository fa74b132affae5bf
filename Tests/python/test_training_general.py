"""Training of the general builder's models against torchvision's `FasterRCNN` / `MaskRCNN` assembled from the same
parts: a custom `nn.Sequential` backbone with frozen batch norms (with and without conv bias), a single-level anchor
generator, MultiScaleRoIAlign or `torchvision.ops.roi_pool` as the box pooler, a TwoMLPHead or a ResNet layer + average
pooling as the box head, small mask heads. Same seeded weights and batch, torchvision's samplers made to draw what
swiftrcnn drew: losses, every trainable gradient (against the float64 gradient, as in test_training.py) and the
weights after SGD steps must agree. Also `weights="random"`: torchvision's keys, shapes and initial distributions."""
import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.resnet import Bottleneck
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.misc import FrozenBatchNorm2d

from swiftrcnn import models, optim
from swiftrcnn.models import parts
from test_general_builder import RoIPoolOnMap, randomize_norm
from training_utils import (assert_gradients_close, assert_trained_weights_match, images_and_targets, numpy_state,
                            torch_losses)

SIZES = [(240, 320), (300, 200)]
SMALL = dict(min_size=320, max_size=512)
NUM_CLASSES = 5
ANCHORS = (((32, 64, 128),), ((0.5, 1.0, 2.0),))


def backbone_pair():
    """A stride-8, 48-channel backbone: frozen norms after a biased and an unbiased convolution."""
    torch_backbone = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), FrozenBatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), FrozenBatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(3, 2, 1), nn.Conv2d(32, 48, 1), nn.ReLU(), nn.Conv2d(48, 48, 3, padding=1))
    torch_backbone.out_channels = 48
    ours = parts.Sequential(
        parts.Conv2d(3, 16, 3, padding=1), parts.BatchNorm2d(16), parts.ReLU(), parts.MaxPool2d(2),
        parts.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), parts.BatchNorm2d(32), parts.ReLU(),
        parts.MaxPool2d(3, 2, 1), parts.Conv2d(32, 48, 1), parts.ReLU(), parts.Conv2d(48, 48, 3, padding=1))
    return torch_backbone, ours


def resnet_head_pair():
    """ResNet's `_make_layer(Bottleneck, 16, 2, stride=2)` from 48 channels, average-pooled and flattened: 64
    features, as the C4 model's layer4 head."""
    downsample = nn.Sequential(nn.Conv2d(48, 64, 1, stride=2, bias=False), FrozenBatchNorm2d(64))
    layer = nn.Sequential(Bottleneck(48, 16, 2, downsample, norm_layer=FrozenBatchNorm2d),
                          Bottleneck(64, 16, norm_layer=FrozenBatchNorm2d))
    return (nn.Sequential(layer, nn.AdaptiveAvgPool2d(1), nn.Flatten()),
            parts.Sequential(parts.ResNetLayer(48, 16, 2, stride=2), parts.AdaptiveAvgPool2d(1), parts.Flatten()))


def build(kind="faster", pooler="align", head="mlp", seed=0):
    """(torchvision model in float32, swiftrcnn's parts as builder keywords) with the same structure."""
    torch.manual_seed(seed)
    torch_backbone, our_backbone = backbone_pair()
    size = 8 if head == "resnet" else 7
    if pooler == "roi_pool":
        tv_pool, our_pool = RoIPoolOnMap("0", size, 1 / 8), parts.RoIPool(size, 1 / 8)
    else:
        tv_pool, our_pool = MultiScaleRoIAlign(["0"], size, 2), parts.MultiScaleRoIAlign(["0"], size, 2)
    if head == "resnet":
        tv_head, our_head = resnet_head_pair()
        rep = 64
    else:
        rep = 96
        tv_head, our_head = TwoMLPHead(48 * size * size, rep), parts.TwoMLPHead(48 * size * size, rep)
    # torchvision's constructor takes only MultiScaleRoIAlign; a RoIPool replaces it afterwards.
    common = dict(rpn_anchor_generator=AnchorGenerator(*ANCHORS), box_roi_pool=MultiScaleRoIAlign(["0"], size, 2),
                  box_head=tv_head,
                  box_predictor=FastRCNNPredictor(rep, NUM_CLASSES), **SMALL)
    ours = dict(backbone=our_backbone, rpn_anchor_generator=parts.AnchorGenerator(*ANCHORS), box_roi_pool=our_pool,
                box_head=our_head, box_predictor=parts.FastRCNNPredictor(rep, NUM_CLASSES))
    if kind == "mask":
        model = MaskRCNN(torch_backbone, mask_roi_pool=MultiScaleRoIAlign(["0"], 14, 2),
                         mask_head=MaskRCNNHeads(48, (32, 32), 1),
                         mask_predictor=MaskRCNNPredictor(32, 24, NUM_CLASSES), **common)
        ours.update(mask_roi_pool=parts.MultiScaleRoIAlign(["0"], 14, 2),
                    mask_head=parts.MaskRCNNHeads(48, (32, 32), 1),
                    mask_predictor=parts.MaskRCNNPredictor(32, 24, NUM_CLASSES))
    else:
        model = FasterRCNN(torch_backbone, **common)
    model.roi_heads.box_roi_pool = tv_pool
    g = torch.Generator().manual_seed(seed + 7)
    for m in model.modules():
        randomize_norm(m, g)
    return model, ours


def swift_model(kind, state, ours, **kwargs):
    builder = models.MaskRCNN if kind == "mask" else models.FasterRCNN
    return builder(weights=state, seed=7, **SMALL, **ours, **kwargs).train()


@pytest.mark.parametrize("kind,pooler,head,counts", [
    ("faster", "align", "mlp", [3, 2]),
    ("faster", "roi_pool", "mlp", [2, 0]),
    ("faster", "align", "resnet", [3, 2]),
    ("mask", "align", "mlp", [2, 3]),
    ("mask", "roi_pool", "resnet", [3, 1]),
])
def test_losses_and_gradients_match_torchvision(kind, pooler, head, counts):
    torch_model, ours = build(kind, pooler, head)
    state = numpy_state(torch_model)
    images, targets = images_and_targets(SIZES, counts, masks=kind == "mask", num_classes=NUM_CLASSES)
    model = swift_model(kind, state, ours)
    losses = model(images, targets)
    model.backward(losses)
    grads = model.gradients()
    choices = model.last_samples
    theirs, their_grads, trainable, _ = torch_losses(torch_model, images, targets, choices)
    assert list(losses) == list(theirs)
    for name, value in theirs.items():
        assert losses[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    # Frozen batch norms are buffers in both libraries: no gradient.
    assert not any(".running_" in n for n in grads)

    exact_model, _ = build(kind, pooler, head)
    exact_model = exact_model.double()
    wide = [{k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in t.items()} for t in targets]
    wide_choices = {k: v.astype(np.float64) if k.startswith("proposals") else v for k, v in choices.items()}
    exact_losses, exact, _, _ = torch_losses(exact_model, [i.astype(np.float64) for i in images], wide, wide_choices)
    for name, value in exact_losses.items():
        assert losses[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    assert_gradients_close(grads, their_grads, exact, trainable)


def test_sgd_steps_match_torchvision(tmp_path):
    """Four SGD steps with momentum and weight decay on a sequential model with a ResNet-layer box head and RoIPool;
    then the saved file loads into torchvision strictly and detects the same."""
    torch_model, ours = build("faster", "roi_pool", "resnet")
    state = numpy_state(torch_model)
    images, targets = images_and_targets(SIZES, [3, 2], num_classes=NUM_CLASSES)
    model = swift_model("faster", state, ours)
    opt = optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    params = [p for p in torch_model.parameters() if p.requires_grad]
    torch_opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9, weight_decay=5e-4)
    for step in range(4):
        losses = model.train_step(images, targets, opt)
        theirs, _, _, _ = torch_losses(torch_model, images, targets, model.last_samples)
        for name, value in theirs.items():
            assert losses[name] == pytest.approx(value, rel=1e-3, abs=1e-5), (step, name)
        torch_opt.step()
    assert_trained_weights_match(model, torch_model, images, tmp_path)


@pytest.mark.parametrize("kind,head", [("faster", "resnet"), ("mask", "mlp")])
def test_random_weights(kind, head):
    """`weights="random"`: torchvision's keys and shapes (no num_batches_tracked), its initial distributions."""
    torch_model, ours = build(kind, "align", head)
    model = (models.MaskRCNN if kind == "mask" else models.FasterRCNN)(weights="random", seed=3, **SMALL, **ours)
    state = model.state_dict()
    expected = {k: tuple(v.shape) for k, v in torch_model.state_dict().items() if "num_batches" not in k}
    assert {k: v.shape for k, v in state.items()} == expected
    # nn.Conv2d's default: U(±1/√fan_in); the first convolution has fan_in 27.
    w = state["backbone.0.weight"]
    assert np.abs(w).max() <= 1 / np.sqrt(27) and np.abs(w).max() > 0.9 / np.sqrt(27)
    assert (state["backbone.1.weight"] == 1).all() and (state["backbone.1.running_var"] == 1).all()
    # RPNHead: N(0, 0.01²), biases 0.
    assert np.std(state["rpn.head.conv.0.0.weight"]) == pytest.approx(0.01, rel=0.05)
    assert (state["rpn.head.cls_logits.bias"] == 0).all()
    if head == "resnet":
        # ResNet: kaiming_normal_(fan_out): std √(2 / (16 · 9)) for the 3×3 convolution.
        assert np.std(state["roi_heads.box_head.0.0.conv2.weight"]) == pytest.approx(np.sqrt(2 / 144), rel=0.1)
    # A seeded initialisation replays; it trains.
    again = (models.MaskRCNN if kind == "mask" else models.FasterRCNN)(weights="random", seed=3, **SMALL, **ours)
    for k, v in again.state_dict().items():
        np.testing.assert_array_equal(v, state[k])
    images, targets = images_and_targets(SIZES, [2, 1], masks=kind == "mask", num_classes=NUM_CLASSES)
    model.train()
    opt = optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    losses = model.train_step(images, targets, opt)
    assert all(np.isfinite(v) for v in losses.values())


def test_new_number_of_classes():
    """A general-builder checkpoint loaded for another number of classes: the predictors are re-initialised."""
    torch_model, ours = build("faster", "align", "mlp")
    state = numpy_state(torch_model)
    ours["box_predictor"] = parts.FastRCNNPredictor(96, 3)
    with pytest.warns(UserWarning, match="re-initialised"):
        model = models.FasterRCNN(weights=state, seed=1, **SMALL, **ours)
    assert model.reinitialized == ["roi_heads.box_predictor.bbox_pred.bias", "roi_heads.box_predictor.bbox_pred.weight",
                                   "roi_heads.box_predictor.cls_score.bias", "roi_heads.box_predictor.cls_score.weight"]
    assert model.state_dict()["roi_heads.box_predictor.cls_score.weight"].shape == (3, 96)


def test_unsupported_architectures_are_refused():
    """Training covers what its backward passes cover; the v2 parts are refused with the reason."""
    _, ours = build("faster", "align", "mlp")
    ours["rpn_head"] = parts.RPNHead(48, 9, conv_depth=2)
    with pytest.raises(ValueError, match="architecture: initialisation covers RPN heads of one convolution"):
        models.FasterRCNN(weights="random", seed=0, **SMALL, **ours)
