"""The detectors bench/detector.py runs, each as torchvision builds it (the oracle) and as swiftrcnn builds it from
the same state dict. torchvision's own builders where it has one; the classic models as torchvision expresses them
(see swiftrcnn.models.fasterrcnn_vgg16 / fasterrcnn_resnet50_c4).
"""
from __future__ import annotations

DEFAULT = ("fasterrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn")
ALL = DEFAULT + ("fasterrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn_v2", "keypointrcnn_resnet50_fpn",
                 "fasterrcnn_vgg16", "fasterrcnn_resnet50_c4", "fasterrcnn_mobilenet_v3_large_fpn",
                 "fasterrcnn_mobilenet_v3_large_320_fpn")


def kind(name: str) -> str:
    """"maskrcnn" or "fasterrcnn": which outputs the model has."""
    return "maskrcnn" if name.startswith("mask") else "fasterrcnn"


def torchvision_model(name: str):
    """The torchvision model `name` in eval mode, random weights (seed 0 set by the caller)."""
    import torch
    import torchvision
    from torch import nn
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    if name not in ALL:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(ALL)}")
    if hasattr(torchvision.models.detection, name):
        return getattr(torchvision.models.detection, name)(weights=None, weights_backbone=None).eval()

    class RoIPoolOnMap(nn.Module):
        """torchvision.ops.roi_pool on map "0", as torchvision's RoIHeads calls a box pooler."""

        def __init__(self, output_size, spatial_scale):
            super().__init__()
            self.output_size, self.spatial_scale = output_size, spatial_scale

        def forward(self, features, proposals, image_shapes):
            return torchvision.ops.roi_pool(features["0"], proposals, self.output_size, self.spatial_scale)

    anchors = AnchorGenerator(((128, 256, 512),), ((0.5, 1.0, 2.0),))
    if name == "fasterrcnn_vgg16":
        backbone = torchvision.models.vgg16().features[:-1]
        backbone.out_channels = 512
        model = FasterRCNN(backbone, rpn_anchor_generator=anchors, box_head=TwoMLPHead(512 * 49, 4096),
                           box_predictor=FastRCNNPredictor(4096, 91))
        model.roi_heads.box_roi_pool = RoIPoolOnMap(7, 1 / 16)
    else:
        r = torchvision.models.resnet50(norm_layer=torchvision.ops.FrozenBatchNorm2d)
        backbone = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3)
        backbone.out_channels = 1024
        model = FasterRCNN(backbone, rpn_anchor_generator=anchors, box_roi_pool=MultiScaleRoIAlign(["0"], 14, 2),
                           box_head=nn.Sequential(r.layer4, nn.AdaptiveAvgPool2d(1), nn.Flatten()),
                           box_predictor=FastRCNNPredictor(2048, 91))
    del torch
    return model.eval()


def calibrate_batch_norm(name: str, model, image) -> None:
    """Sets the running statistics of the model's BatchNorm layers to those of its own activations on `image` (a
    float32 CHW tensor), as training would have left them. Only for the MobileNetV3 models: with their initial
    statistics (mean 0, variance 1) the activations shrink about tenfold per stage, the FPN maps come out equal to
    float32 rounding everywhere, and every region gets the same score, so which 100 of the tied detections an engine
    returns is arbitrary. Other models are left as they are.
    """
    import torch
    from torch import nn
    norms = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)] if "mobilenet" in name else []
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    with torch.no_grad():
        for m in norms:  # one batch, each layer's statistics from its input as normalised by the layers before it
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: after one batch, that batch's statistics
            m.train()
        images, _ = model.transform([image])
        model.backbone(images.tensors)
    for m, momentum in zip(norms, momenta):
        m.eval()
        m.momentum = momentum


def swiftrcnn_model(name: str, weights):
    """swiftrcnn's builder `name` on `weights` (a path or a state dict)."""
    from swiftrcnn import models
    if name not in ALL:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(ALL)}")
    return getattr(models, name)(weights=weights)
