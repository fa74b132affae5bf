"""Small detectors with random NumPy weights for the tool tests (io, detect, eval, the CLI): a three-convolution
backbone at stride 4, one level of anchors, MultiScaleRoIAlign, TwoMLPHead and FastRCNNPredictor, optionally
the mask branch; small transform sizes so tiny pictures stay tiny. The state dict's keys and shapes are composed
from the parts here (test_tools checks them against torchvision's modules)."""
import numpy as np

from swiftrcnn import models
from swiftrcnn.models import parts

SMALL = dict(min_size=96, max_size=160)


def small_parts(num_classes=4, mask=False):
    backbone = parts.Sequential(parts.Conv2d(3, 16, 3, padding=1), parts.ReLU(), parts.MaxPool2d(2),
                                parts.Conv2d(16, 32, 3, padding=1), parts.ReLU(), parts.MaxPool2d(2),
                                parts.Conv2d(32, 32, 3, padding=1), parts.ReLU())
    out = dict(backbone=backbone,
               rpn_anchor_generator=parts.AnchorGenerator(((32, 64, 128),), ((0.5, 1.0, 2.0),)),
               box_roi_pool=parts.MultiScaleRoIAlign(["0"], 7, 2), box_head=parts.TwoMLPHead(32 * 7 * 7, 64),
               box_predictor=parts.FastRCNNPredictor(64, num_classes))
    if mask:
        out.update(mask_roi_pool=parts.MultiScaleRoIAlign(["0"], 14, 2), mask_head=parts.MaskRCNNHeads(32, [32, 32]),
                   mask_predictor=parts.MaskRCNNPredictor(32, 32, num_classes))
    return out


def state_shapes(p):
    """{key: shape} of the torchvision state dict of a model of `small_parts`-like parts."""
    shapes = {}

    def conv(prefix, out, inp, k, bias=True):
        shapes[f"{prefix}.weight"] = (out, inp, k, k)
        if bias:
            shapes[f"{prefix}.bias"] = (out,)

    def linear(prefix, out, inp):
        shapes[f"{prefix}.weight"] = (out, inp)
        shapes[f"{prefix}.bias"] = (out,)

    for i, layer in enumerate(p["backbone"].layers):
        if isinstance(layer, parts.Conv2d):
            conv(f"backbone.{i}", layer.out_channels, layer.in_channels, layer.kernel_size, layer.bias)
    c = p["backbone"].out_channels
    a = p["rpn_anchor_generator"].num_anchors_per_location()[0]
    conv("rpn.head.conv.0.0", c, c, 3)
    conv("rpn.head.cls_logits", a, c, 1)
    conv("rpn.head.bbox_pred", 4 * a, c, 1)
    head = p["box_head"]
    linear("roi_heads.box_head.fc6", head.representation_size, head.in_channels)
    linear("roi_heads.box_head.fc7", head.representation_size, head.representation_size)
    pred = p["box_predictor"]
    linear("roi_heads.box_predictor.cls_score", pred.num_classes, pred.in_channels)
    linear("roi_heads.box_predictor.bbox_pred", 4 * pred.num_classes, pred.in_channels)
    if "mask_head" in p:
        prev = p["mask_head"].in_channels
        for i, width in enumerate(p["mask_head"].layers):
            conv(f"roi_heads.mask_head.{i}.0", width, prev, 3)
            prev = width
        mp = p["mask_predictor"]
        shapes["roi_heads.mask_predictor.conv5_mask.weight"] = (mp.in_channels, mp.dim_reduced, 2, 2)
        shapes["roi_heads.mask_predictor.conv5_mask.bias"] = (mp.dim_reduced,)
        conv("roi_heads.mask_predictor.mask_fcn_logits", mp.num_classes, mp.dim_reduced, 1)
    return shapes


def random_state(p, seed=0):
    """He-scaled normal weights, small biases; the classifier favours class 1 a little so some detections score
    high."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in state_shapes(p).items():
        if name.endswith("bias"):
            state[name] = (rng.standard_normal(shape) * 0.01).astype(np.float32)
        else:
            fan_in = int(np.prod(shape[1:]))
            state[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    state["roi_heads.box_predictor.cls_score.bias"][1] += 3.0
    return state


def small_model(num_classes=4, mask=False, seed=0, categories=None, **config):
    p = small_parts(num_classes, mask)
    cls = models.MaskRCNN if mask else models.FasterRCNN
    return cls(p.pop("backbone"), weights=random_state(small_parts(num_classes, mask), seed), categories=categories,
               **p, **{**SMALL, **config})
