"""The parts of a two-stage detector, for the general builders `FasterRCNN(backbone, num_classes, ...)` and
`MaskRCNN(...)`: descriptions of torchvision's modules (same names and arguments), holding no weights.

A torchvision user who assembled a custom detector describes it with the same parts and loads its state dict:

    >>> from swiftrcnn.models import FasterRCNN
    >>> from swiftrcnn.models.parts import (AnchorGenerator, Conv2d, MaxPool2d, MultiScaleRoIAlign, ReLU,
    ...                                     Sequential)
    >>> backbone = Sequential(Conv2d(3, 32, 3, padding=1), ReLU(), MaxPool2d(2), Conv2d(32, 64, 3, padding=1), ReLU())
    >>> model = FasterRCNN(backbone, num_classes=3, weights="custom.pth",
    ...                    rpn_anchor_generator=AnchorGenerator(((16, 32, 64),), ((0.5, 1.0, 2.0),)),
    ...                    box_roi_pool=MultiScaleRoIAlign(["0"], 7, 2))

`Sequential` is torchvision's `nn.Sequential` backbone: its state-dict keys are `backbone.<index>.weight` etc., and
it returns one feature map, "0". `ResNet50FPN()` is `resnet_fpn_backbone("resnet50")` (levels "0" ... "3", "pool").
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..ops._array import as_int, as_real

__all__ = ["AdaptiveAvgPool2d", "AnchorGenerator", "BatchNorm2d", "Conv2d", "FastRCNNConvFCHead", "FastRCNNPredictor",
           "from_architecture", "KeypointRCNNHeads", "KeypointRCNNPredictor", "RPNHead", "Flatten", "Linear",
           "ResNetLayer", "resnet50_c4", "MaskRCNNHeads", "MaskRCNNPredictor", "MaxPool2d",
           "MobileNetV3LargeFPN", "MultiScaleRoIAlign", "ReLU", "ResNet50FPN", "RoIPool", "Sequential", "TwoMLPHead",
           "vgg16_features"]

Spec = dict[str, Any]


def _pair_free(value: int | Sequence[int], name: str) -> int:
    """torchvision accepts an int or an (h, w) pair for sizes; swiftrcnn's layers are square."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or as_int(value[0], name) != as_int(value[1], name):
            raise ValueError(f"{name}: expected an int or a square (n, n) pair, got {value!r}")
        return as_int(value[0], name)
    return as_int(value, name)


class _Part:
    def spec(self) -> Spec:
        raise NotImplementedError

    def __repr__(self) -> str:
        s = self.spec()
        args = ", ".join(f"{k}={v!r}" for k, v in s.items() if k != "type")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(repr(self))


class Conv2d(_Part):
    """torch.nn.Conv2d (square kernel, one group, no dilation)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0, bias: bool = True) -> None:
        self.in_channels = as_int(in_channels, "in_channels")
        self.out_channels = as_int(out_channels, "out_channels")
        self.kernel_size = _pair_free(kernel_size, "kernel_size")
        self.stride = _pair_free(stride, "stride")
        self.padding = _pair_free(padding, "padding")
        self.bias = bool(bias)

    def spec(self) -> Spec:
        return dict(type="conv2d", in_channels=self.in_channels, out_channels=self.out_channels,
                    kernel_size=self.kernel_size, stride=self.stride, padding=self.padding, bias=self.bias)


class BatchNorm2d(_Part):
    """torch.nn.BatchNorm2d (eval mode) or torchvision's FrozenBatchNorm2d, right after a Conv2d."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        self.num_features = as_int(num_features, "num_features")
        self.eps = as_real(eps, "eps")

    def spec(self) -> Spec:
        return dict(type="batch_norm2d", num_features=self.num_features, eps=self.eps)


class ReLU(_Part):
    """torch.nn.ReLU."""

    def spec(self) -> Spec:
        return dict(type="relu")


class MaxPool2d(_Part):
    """torch.nn.MaxPool2d (ceil_mode False, dilation 1)."""

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0) -> None:
        self.kernel_size = _pair_free(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair_free(stride, "stride")
        self.padding = _pair_free(padding, "padding")

    def spec(self) -> Spec:
        return dict(type="max_pool2d", kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)


class ResNetLayer(_Part):
    """torchvision's ResNet `_make_layer(Bottleneck, width, blocks, stride)` (layer1 ... layer4 of resnet50: width
    64 / 128 / 256 / 512, blocks 3 / 4 / 6 / 3, stride 1 / 2 / 2 / 2) from `in_channels`, with frozen batch norms:
    its output has 4 x width channels; keys `<index>.<block>.conv1.weight`, `bn1.*`, ..., `downsample.0/1.*`."""

    def __init__(self, in_channels: int, width: int, blocks: int, stride: int = 1) -> None:
        self.in_channels = as_int(in_channels, "in_channels")
        self.width = as_int(width, "width")
        self.blocks = as_int(blocks, "blocks")
        self.stride = as_int(stride, "stride")
        self.out_channels = 4 * self.width

    def spec(self) -> Spec:
        return dict(type="resnet_layer", in_channels=self.in_channels, width=self.width, blocks=self.blocks,
                    stride=self.stride)


class AdaptiveAvgPool2d(_Part):
    """torch.nn.AdaptiveAvgPool2d(1): global average pooling (other output sizes are not supported)."""

    def __init__(self, output_size: int | Sequence[int] = 1) -> None:
        if _pair_free(output_size, "output_size") != 1:
            raise ValueError(f"output_size: only 1 (global average pooling) is supported, got {output_size!r}")

    def spec(self) -> Spec:
        return dict(type="adaptive_avg_pool2d", output_size=1)


class Flatten(_Part):
    """torch.nn.Flatten() (from dimension 1)."""

    def spec(self) -> Spec:
        return dict(type="flatten")


class Linear(_Part):
    """torch.nn.Linear(in_features, out_features, bias)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        self.in_features = as_int(in_features, "in_features")
        self.out_features = as_int(out_features, "out_features")
        self.bias = bool(bias)

    def spec(self) -> Spec:
        return dict(type="linear", in_features=self.in_features, out_features=self.out_features, bias=self.bias)


_LAYERS = (Conv2d, BatchNorm2d, ReLU, MaxPool2d, ResNetLayer, AdaptiveAvgPool2d, Flatten, Linear)


class Sequential(_Part):
    """torch.nn.Sequential of the layers above (and nested Sequentials): as a backbone, one output map "0" with
    `out_channels` channels; as a box head (`box_head=`), a network ending with flattened features, e.g.
    `Sequential(ResNetLayer(1024, 512, 3, 2), AdaptiveAvgPool2d(1), Flatten())`."""

    def __init__(self, *layers: _Part) -> None:
        for i, layer in enumerate(layers):
            if not isinstance(layer, (*_LAYERS, Sequential)):
                raise TypeError(f"layers[{i}]: expected Conv2d, BatchNorm2d, ReLU, MaxPool2d, ResNetLayer, "
                                f"AdaptiveAvgPool2d, Flatten, Linear or Sequential, got {type(layer).__name__}")
        self.layers = list(layers)
        self.out_channels = 3
        for layer in self.layers:
            if isinstance(layer, Conv2d):
                self.out_channels = layer.out_channels
            elif isinstance(layer, (ResNetLayer, Sequential)):
                self.out_channels = layer.out_channels
            elif isinstance(layer, Linear):
                self.out_channels = layer.out_features

    def spec(self) -> Spec:
        return dict(type="sequential", layers=[layer.spec() for layer in self.layers])

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> _Part:
        return self.layers[index]

    def __repr__(self) -> str:
        return "Sequential(" + ", ".join(repr(layer) for layer in self.layers) + ")"


def resnet50_c4() -> tuple[Sequential, Sequential]:
    """The ResNet-50 C4 split (`../shared/seeds/004`): the backbone is resnet50's conv1, bn1, relu, maxpool, layer1,
    layer2, layer3 (stride 16, 1024 channels; keys backbone.0.* (conv1), backbone.1.* (bn1), backbone.4/5/6.* (layer1
    ... layer3)), the box head its layer4 on the pooled 14 x 14 regions, averaged and flattened (2048 features; keys
    roi_heads.box_head.0.*)."""
    backbone = Sequential(Conv2d(3, 64, 7, stride=2, padding=3, bias=False), BatchNorm2d(64), ReLU(),
                          MaxPool2d(3, 2, 1), ResNetLayer(64, 64, 3, 1), ResNetLayer(256, 128, 4, 2),
                          ResNetLayer(512, 256, 6, 2))
    head = Sequential(ResNetLayer(1024, 512, 3, 2), AdaptiveAvgPool2d(1), Flatten())
    return backbone, head


def vgg16_features() -> Sequential:
    """torchvision's `vgg16().features[:-1]`: the thirteen 3x3 convolutions with ReLU and four of the five
    max-pools (the last is dropped, as Faster R-CNN does), conv5_3 at stride 16 with 512 channels; state-dict
    indices 0 ... 29."""
    layers: list[_Part] = []
    channels = 3
    for block, (width, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]):
        for _ in range(convs):
            layers += [Conv2d(channels, width, 3, padding=1), ReLU()]
            channels = width
        if block < 4:
            layers.append(MaxPool2d(2, 2))
    return Sequential(*layers)


class ResNet50FPN(_Part):
    """torchvision's `resnet_fpn_backbone("resnet50")`: levels "0", "1", "2", "3", "pool", 256 channels. With
    `fpn_norm` the FPN's convolutions have batch norms (`_resnet_fpn_extractor(..., norm_layer=BatchNorm2d)`, the v2
    models)."""

    out_channels = 256

    def __init__(self, fpn_norm: bool = False) -> None:
        self.fpn_norm = bool(fpn_norm)

    def spec(self) -> Spec:
        return dict(type="resnet50_fpn", fpn_norm=True) if self.fpn_norm else dict(type="resnet50_fpn")


class MobileNetV3LargeFPN(_Part):
    """torchvision's `mobilenet_backbone("mobilenet_v3_large", fpn=True)` (`fasterrcnn_mobilenet_v3_large_fpn`'s):
    MobileNetV3-Large's features, the outputs of features[13] and features[16] (both at stride 32) into a two-level
    FPN of 256 channels with its max-pool level: levels "0", "1", "pool". Keys `backbone.body.<i>.*` (the
    `features` indices), `backbone.fpn.*`."""

    out_channels = 256

    def spec(self) -> Spec:
        return dict(type="mobilenet_v3_large_fpn")


class RPNHead(_Part):
    """torchvision's RPNHead(in_channels, num_anchors, conv_depth=1)."""

    def __init__(self, in_channels: int, num_anchors: int, conv_depth: int = 1) -> None:
        self.in_channels = as_int(in_channels, "in_channels")
        self.num_anchors = as_int(num_anchors, "num_anchors")
        self.conv_depth = as_int(conv_depth, "conv_depth")

    def spec(self) -> Spec:
        return dict(conv_depth=self.conv_depth)


def _norm(norm_layer: str | None) -> bool:
    if norm_layer not in (None, "batch_norm2d"):
        raise ValueError(f"norm_layer: expected None or 'batch_norm2d', got {norm_layer!r}")
    return norm_layer is not None


def FastRCNNConvFCHead(input_size: Sequence[int], conv_layers: Sequence[int],  # noqa: N802 (torchvision's name)
                       fc_layers: Sequence[int], norm_layer: str | None = None) -> Sequential:
    """torchvision's FastRCNNConvFCHead((C, H, W), conv_layers, fc_layers, norm_layer) as a sequential box head:
    3x3 Conv2dNormActivations (bias-free with `norm_layer="batch_norm2d"`), flatten, then Linear + ReLU per
    fc layer (the v2 models: ((256, 7, 7), [256] * 4, [1024], "batch_norm2d"))."""
    norm = _norm(norm_layer)
    c, h, w = (as_int(v, "input_size") for v in input_size)
    blocks: list[_Part] = []
    for out in conv_layers:
        out = as_int(out, "conv_layers")
        inner: list[_Part] = [Conv2d(c, out, 3, padding=1, bias=not norm)]
        if norm:
            inner.append(BatchNorm2d(out))
        blocks.append(Sequential(*inner, ReLU()))
        c = out
    blocks.append(Flatten())
    features = c * h * w
    for out in fc_layers:
        out = as_int(out, "fc_layers")
        blocks += [Linear(features, out), ReLU()]
        features = out
    return Sequential(*blocks)


class AnchorGenerator(_Part):
    """torchvision's AnchorGenerator: one tuple of sizes and one of aspect ratios per feature map."""

    def __init__(self, sizes: Sequence[Sequence[float]] = ((128, 256, 512),),
                 aspect_ratios: Sequence[Sequence[float]] = ((0.5, 1.0, 2.0),)) -> None:
        def lists(values: Sequence[Sequence[float]], name: str) -> list[list[float]]:
            if not isinstance(values, (list, tuple)) or not all(isinstance(v, (list, tuple)) for v in values):
                raise TypeError(f"{name}: expected a tuple of tuples of numbers, one per feature map")
            return [[as_real(x, name) for x in level] for level in values]

        self.sizes = lists(sizes, "sizes")
        self.aspect_ratios = lists(aspect_ratios, "aspect_ratios")
        if len(self.sizes) != len(self.aspect_ratios):
            raise ValueError(f"aspect_ratios: expected one tuple per level of sizes ({len(self.sizes)}), got "
                             f"{len(self.aspect_ratios)}")

    def num_anchors_per_location(self) -> list[int]:
        return [len(s) * len(r) for s, r in zip(self.sizes, self.aspect_ratios)]

    def spec(self) -> Spec:
        return dict(sizes=self.sizes, aspect_ratios=self.aspect_ratios)


class MultiScaleRoIAlign(_Part):
    """torchvision.ops.MultiScaleRoIAlign(featmap_names, output_size, sampling_ratio)."""

    def __init__(self, featmap_names: Sequence[str], output_size: int | Sequence[int], sampling_ratio: int) -> None:
        if isinstance(featmap_names, str) or not all(isinstance(n, str) for n in featmap_names):
            raise TypeError("featmap_names: expected a list of str")
        self.featmap_names = list(featmap_names)
        self.output_size = _pair_free(output_size, "output_size")
        self.sampling_ratio = as_int(sampling_ratio, "sampling_ratio")

    def spec(self) -> Spec:
        return dict(type="multi_scale_roi_align", featmap_names=self.featmap_names, output_size=self.output_size,
                    sampling_ratio=self.sampling_ratio)


class RoIPool(_Part):
    """torchvision.ops.roi_pool(features[featmap_name], proposals, output_size, spatial_scale) as the box pooler
    (torchvision takes it through a module calling `roi_pool` on that map)."""

    def __init__(self, output_size: int | Sequence[int], spatial_scale: float, featmap_name: str = "0") -> None:
        self.output_size = _pair_free(output_size, "output_size")
        self.spatial_scale = as_real(spatial_scale, "spatial_scale")
        if not isinstance(featmap_name, str):
            raise TypeError(f"featmap_name: expected a str, got {type(featmap_name).__name__}")
        self.featmap_name = featmap_name

    def spec(self) -> Spec:
        return dict(type="roi_pool", featmap_name=self.featmap_name, output_size=self.output_size,
                    spatial_scale=self.spatial_scale)


class TwoMLPHead(_Part):
    """torchvision's TwoMLPHead(in_channels, representation_size): fc6, fc7 with ReLU."""

    def __init__(self, in_channels: int, representation_size: int) -> None:
        self.in_channels = as_int(in_channels, "in_channels")
        self.representation_size = as_int(representation_size, "representation_size")

    def spec(self) -> Spec:
        return dict(type="two_mlp_head", representation_size=self.representation_size)


class FastRCNNPredictor(_Part):
    """torchvision's FastRCNNPredictor(in_channels, num_classes): cls_score and bbox_pred."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        self.in_channels = as_int(in_channels, "in_channels")
        self.num_classes = as_int(num_classes, "num_classes")

    def spec(self) -> Spec:
        return dict(in_channels=self.in_channels, num_classes=self.num_classes)


class MaskRCNNHeads(_Part):
    """torchvision's MaskRCNNHeads(in_channels, layers, dilation=1, norm_layer=None): 3x3 convolutions with ReLU
    (bias-free and with batch norms for `norm_layer="batch_norm2d"`, the v2 models)."""

    def __init__(self, in_channels: int, layers: Sequence[int], dilation: int = 1,
                 norm_layer: str | None = None) -> None:
        self.in_channels = as_int(in_channels, "in_channels")
        self.layers = [as_int(v, "layers") for v in layers]
        if as_int(dilation, "dilation") != 1:
            raise ValueError(f"dilation: only 1 is supported, got {dilation}")
        self.norm = _norm(norm_layer)

    def spec(self) -> Spec:
        return dict(layers=self.layers, norm=True) if self.norm else dict(layers=self.layers)


class MaskRCNNPredictor(_Part):
    """torchvision's MaskRCNNPredictor(in_channels, dim_reduced, num_classes)."""

    def __init__(self, in_channels: int, dim_reduced: int, num_classes: int) -> None:
        self.in_channels = as_int(in_channels, "in_channels")
        self.dim_reduced = as_int(dim_reduced, "dim_reduced")
        self.num_classes = as_int(num_classes, "num_classes")

    def spec(self) -> Spec:
        return dict(dim_reduced=self.dim_reduced)


class KeypointRCNNHeads(_Part):
    """torchvision's KeypointRCNNHeads(in_channels, layers): 3x3 convolutions with ReLU (keys keypoint_head.0, .2,
    ...)."""

    def __init__(self, in_channels: int, layers: Sequence[int]) -> None:
        self.in_channels = as_int(in_channels, "in_channels")
        self.layers = [as_int(v, "layers") for v in layers]

    def spec(self) -> Spec:
        return dict(layers=self.layers)


class KeypointRCNNPredictor(_Part):
    """torchvision's KeypointRCNNPredictor(in_channels, num_keypoints): 4x4 transposed convolution, stride 2, then
    bilinear upsampling x2."""

    def __init__(self, in_channels: int, num_keypoints: int) -> None:
        self.in_channels = as_int(in_channels, "in_channels")
        self.num_keypoints = as_int(num_keypoints, "num_keypoints")

    def spec(self) -> Spec:
        return dict(num_keypoints=self.num_keypoints)


def architecture(backbone: _Part, num_classes: int, rpn_anchor_generator: AnchorGenerator | None,
                 rpn_head: RPNHead | None,
                 box_roi_pool: MultiScaleRoIAlign | RoIPool | None, box_head: TwoMLPHead | Sequential | None,
                 box_predictor: FastRCNNPredictor | None = None,
                 mask_roi_pool: MultiScaleRoIAlign | None = None, mask_head: MaskRCNNHeads | None = None,
                 mask_predictor: MaskRCNNPredictor | None = None,
                 keypoint_roi_pool: MultiScaleRoIAlign | None = None, keypoint_head: KeypointRCNNHeads | None = None,
                 keypoint_predictor: KeypointRCNNPredictor | None = None) -> Spec:
    """The JSON description `srcnn_model_config.architecture` takes, with torchvision's defaults for the parts not
    given (those of `FasterRCNN` / `MaskRCNN`: MultiScaleRoIAlign over "0" ... "3", TwoMLPHead of 1024, ...)."""
    if not isinstance(backbone, (Sequential, ResNet50FPN, MobileNetV3LargeFPN)):
        raise TypeError(f"backbone: expected swiftrcnn.models.parts.Sequential, ResNet50FPN or MobileNetV3LargeFPN, "
                        f"got {type(backbone).__name__}")
    spec: Spec = dict(backbone=backbone.spec())
    out_channels = backbone.out_channels
    if rpn_anchor_generator is not None:
        if not isinstance(rpn_anchor_generator, AnchorGenerator):
            raise TypeError("rpn_anchor_generator: expected an AnchorGenerator")
        spec["anchor_sizes"] = rpn_anchor_generator.sizes
        spec["aspect_ratios"] = rpn_anchor_generator.aspect_ratios
    elif isinstance(backbone, (Sequential, MobileNetV3LargeFPN)):
        # torchvision's FasterRCNN default generator is the FPN's five levels; it only fits a five-level backbone.
        raise ValueError(f"rpn_anchor_generator: required for a {type(backbone).__name__} backbone (torchvision's "
                         "default is the ResNet FPN's five levels)")
    if rpn_head is not None:
        if not isinstance(rpn_head, RPNHead):
            raise TypeError("rpn_head: expected an RPNHead")
        if rpn_head.in_channels != out_channels:
            raise ValueError(f"rpn_head.in_channels: expected the backbone's out_channels {out_channels}, got "
                             f"{rpn_head.in_channels}")
        anchors = (rpn_anchor_generator.num_anchors_per_location()[0] if rpn_anchor_generator is not None else 3)
        if rpn_head.num_anchors != anchors:
            raise ValueError(f"rpn_head.num_anchors: expected the anchor generator's {anchors} per location, got "
                             f"{rpn_head.num_anchors}")
        if rpn_head.conv_depth != 1:
            spec["rpn_head"] = rpn_head.spec()
    if box_roi_pool is not None:
        if not isinstance(box_roi_pool, (MultiScaleRoIAlign, RoIPool)):
            raise TypeError("box_roi_pool: expected MultiScaleRoIAlign or RoIPool")
        spec["box_roi_pool"] = box_roi_pool.spec()
    elif isinstance(backbone, Sequential):
        raise ValueError("box_roi_pool: required for a Sequential backbone (torchvision's default pools levels "
                         "'0' ... '3')")
    resolution = box_roi_pool.output_size if box_roi_pool is not None else 7
    representation = 1024
    if isinstance(box_head, TwoMLPHead):
        expected = out_channels * resolution * resolution
        if box_head.in_channels != expected:
            raise ValueError(f"box_head.in_channels: expected out_channels * output_size ** 2 = {expected}, got "
                             f"{box_head.in_channels}")
        spec["box_head"] = box_head.spec()
        representation = box_head.representation_size
    elif isinstance(box_head, Sequential):
        spec["box_head"] = box_head.spec()
        representation = box_head.out_channels
    elif box_head is not None:
        raise TypeError("box_head: expected a TwoMLPHead or a Sequential")
    if box_predictor is not None:
        if not isinstance(box_predictor, FastRCNNPredictor):
            raise TypeError("box_predictor: expected a FastRCNNPredictor")
        if box_predictor.in_channels != representation:
            raise ValueError(f"box_predictor.in_channels: expected the box head's representation size "
                             f"{representation}, got {box_predictor.in_channels}")
    elif box_head is not None and representation != 1024:
        # torchvision then builds FastRCNNPredictor(1024, num_classes), which cannot take this head's output.
        raise ValueError(f"box_predictor: required with a box_head of representation_size {representation} "
                         "(torchvision's default predictor takes 1024 features)")
    if mask_roi_pool is not None:
        if not isinstance(mask_roi_pool, MultiScaleRoIAlign):
            raise TypeError("mask_roi_pool: expected a MultiScaleRoIAlign")
        spec["mask_roi_pool"] = mask_roi_pool.spec()
    if mask_head is not None:
        if mask_head.in_channels != out_channels:
            raise ValueError(f"mask_head.in_channels: expected the backbone's out_channels {out_channels}, got "
                             f"{mask_head.in_channels}")
        spec["mask_head"] = mask_head.spec()
    if mask_predictor is not None:
        if mask_predictor.num_classes != num_classes:
            raise ValueError(f"mask_predictor.num_classes: expected num_classes {num_classes}, got "
                             f"{mask_predictor.num_classes}")
        spec["mask_predictor"] = mask_predictor.spec()
    if keypoint_roi_pool is not None:
        if not isinstance(keypoint_roi_pool, MultiScaleRoIAlign):
            raise TypeError("keypoint_roi_pool: expected a MultiScaleRoIAlign")
        spec["keypoint_roi_pool"] = keypoint_roi_pool.spec()
    layers = [512] * 8
    if keypoint_head is not None:
        if keypoint_head.in_channels != out_channels:
            raise ValueError(f"keypoint_head.in_channels: expected the backbone's out_channels {out_channels}, got "
                             f"{keypoint_head.in_channels}")
        layers = keypoint_head.layers
        if layers != [512] * 8:
            spec["keypoint_head"] = keypoint_head.spec()
    if keypoint_predictor is not None:
        if keypoint_predictor.in_channels != layers[-1]:
            raise ValueError(f"keypoint_predictor.in_channels: expected the keypoint head's {layers[-1]}, got "
                             f"{keypoint_predictor.in_channels}")
        if keypoint_predictor.num_keypoints != 17:
            spec["keypoint_predictor"] = keypoint_predictor.spec()
    return spec


# ---- from the JSON description back to the parts ----------------------------------------------------------------

def _get(spec: Spec, key: str, kind: type, where: str) -> Any:
    if not isinstance(spec, dict) or key not in spec:
        raise ValueError(f"architecture: {where} has no '{key}'")
    value = spec[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"architecture: {where}['{key}'] should be {kind.__name__}, got {value!r}")
    return value


def _layer_from_spec(spec: Spec, where: str) -> _Part:
    """One layer (or nested Sequential / the ResNet-50-FPN backbone) from its `spec()`."""
    kind = _get(spec, "type", str, where)
    if kind == "sequential":
        layers = _get(spec, "layers", list, where)
        return Sequential(*(_layer_from_spec(layer, f"{where}.layers[{i}]") for i, layer in enumerate(layers)))
    if kind == "conv2d":
        return Conv2d(_get(spec, "in_channels", int, where), _get(spec, "out_channels", int, where),
                      _get(spec, "kernel_size", int, where), _get(spec, "stride", int, where),
                      _get(spec, "padding", int, where), _get(spec, "bias", bool, where))
    if kind == "batch_norm2d":
        return BatchNorm2d(_get(spec, "num_features", int, where), _get(spec, "eps", float, where))
    if kind == "relu":
        return ReLU()
    if kind == "max_pool2d":
        return MaxPool2d(_get(spec, "kernel_size", int, where), _get(spec, "stride", int, where),
                         _get(spec, "padding", int, where))
    if kind == "resnet_layer":
        return ResNetLayer(_get(spec, "in_channels", int, where), _get(spec, "width", int, where),
                           _get(spec, "blocks", int, where), _get(spec, "stride", int, where))
    if kind == "adaptive_avg_pool2d":
        return AdaptiveAvgPool2d(spec.get("output_size", 1))
    if kind == "flatten":
        return Flatten()
    if kind == "linear":
        return Linear(_get(spec, "in_features", int, where), _get(spec, "out_features", int, where),
                      _get(spec, "bias", bool, where))
    if kind == "resnet50_fpn":
        return ResNet50FPN(fpn_norm=bool(spec.get("fpn_norm", False)))
    if kind == "mobilenet_v3_large_fpn":
        return MobileNetV3LargeFPN()
    raise ValueError(f"architecture: {where} has an unknown type {kind!r}")


def _align_from_spec(spec: Spec, key: str) -> MultiScaleRoIAlign:
    """A branch's pooler (`spec[key]`), which must be a MultiScaleRoIAlign."""
    pool = _pooler_from_spec(spec[key], key)
    if not isinstance(pool, MultiScaleRoIAlign):
        raise ValueError(f"architecture: {key} should be multi_scale_roi_align")
    return pool


def _pooler_from_spec(spec: Spec, where: str) -> MultiScaleRoIAlign | RoIPool:
    kind = _get(spec, "type", str, where)
    if kind == "multi_scale_roi_align":
        return MultiScaleRoIAlign(_get(spec, "featmap_names", list, where), _get(spec, "output_size", int, where),
                                  _get(spec, "sampling_ratio", int, where))
    if kind == "roi_pool":
        return RoIPool(_get(spec, "output_size", int, where), _get(spec, "spatial_scale", float, where),
                       _get(spec, "featmap_name", str, where))
    raise ValueError(f"architecture: {where} has an unknown pooler type {kind!r}")


def from_architecture(spec: Spec, num_classes: int, kind: str = "faster") -> dict[str, Any]:
    """The parts of a model from its JSON description (`architecture(...)`, a model's `architecture` attribute,
    or the `swiftrcnn.architecture` metadata of a file it saved), as the keyword arguments of the general builder
    of `kind` ("faster": `FasterRCNN`, "mask": `MaskRCNN`, "keypoint": `KeypointRCNN`): `backbone`,
    `rpn_anchor_generator`, `rpn_head`, `box_roi_pool`, `box_head`, `box_predictor` (for `num_classes`; the
    builder's `num_classes` must then be None) and the branch's parts. Parts the description leaves out are
    None (the builder's defaults), so `architecture(**from_architecture(spec, k))` is `spec` again. ValueError
    naming the faulty entry for a description this version cannot rebuild."""
    if kind not in ("faster", "mask", "keypoint"):
        raise ValueError(f"kind: expected 'faster', 'mask' or 'keypoint', got {kind!r}")
    if not isinstance(spec, dict):
        raise TypeError(f"spec: expected the architecture dict, got {type(spec).__name__}")
    num_classes = as_int(num_classes, "num_classes")
    known = {"backbone", "anchor_sizes", "aspect_ratios", "rpn_head", "box_roi_pool", "box_head", "legacy"}
    branch = {"mask": ("mask_roi_pool", "mask_head", "mask_predictor"),
              "keypoint": ("keypoint_roi_pool", "keypoint_head", "keypoint_predictor")}.get(kind, ())
    unknown = sorted(set(spec) - known - set(branch))
    if unknown:
        raise ValueError(f"architecture: entries {unknown} are not parts of a {kind} model")
    backbone = _layer_from_spec(_get(spec, "backbone", dict, "architecture"), "backbone")
    if not isinstance(backbone, (Sequential, ResNet50FPN, MobileNetV3LargeFPN)):
        raise ValueError("architecture: the backbone should be a sequential network, resnet50_fpn or "
                         "mobilenet_v3_large_fpn")
    out_channels = backbone.out_channels
    out: dict[str, Any] = {"backbone": backbone}
    generator = None
    if "anchor_sizes" in spec or "aspect_ratios" in spec:
        generator = AnchorGenerator(_get(spec, "anchor_sizes", list, "architecture"),
                                    _get(spec, "aspect_ratios", list, "architecture"))
    out["rpn_anchor_generator"] = generator
    out["rpn_head"] = None
    if "rpn_head" in spec:
        anchors = generator.num_anchors_per_location()[0] if generator is not None else 3
        out["rpn_head"] = RPNHead(out_channels, anchors, _get(spec["rpn_head"], "conv_depth", int, "rpn_head"))
    pool = _pooler_from_spec(spec["box_roi_pool"], "box_roi_pool") if "box_roi_pool" in spec else None
    out["box_roi_pool"] = pool
    representation = 1024
    head: TwoMLPHead | Sequential | None = None
    if "box_head" in spec:
        head_spec = _get(spec, "box_head", dict, "architecture")
        if head_spec.get("type") == "two_mlp_head":
            resolution = pool.output_size if pool is not None else 7
            representation = _get(head_spec, "representation_size", int, "box_head")
            head = TwoMLPHead(out_channels * resolution * resolution, representation)
        else:
            seq = _layer_from_spec(head_spec, "box_head")
            if not isinstance(seq, Sequential):
                raise ValueError("architecture: box_head should be two_mlp_head or a sequential network")
            head, representation = seq, seq.out_channels
    out["box_head"] = head
    out["box_predictor"] = FastRCNNPredictor(representation, num_classes)
    if kind == "mask":
        out["mask_roi_pool"] = out["mask_head"] = out["mask_predictor"] = None
        if "mask_roi_pool" in spec:
            out["mask_roi_pool"] = _align_from_spec(spec, "mask_roi_pool")
        mask_layers = [256] * 4
        if "mask_head" in spec:
            head_spec = _get(spec, "mask_head", dict, "architecture")
            mask_layers = [as_int(v, "mask_head.layers") for v in _get(head_spec, "layers", list, "mask_head")]
            out["mask_head"] = MaskRCNNHeads(out_channels, mask_layers, 1,
                                             "batch_norm2d" if head_spec.get("norm") else None)
        if "mask_predictor" in spec:
            dim = _get(spec["mask_predictor"], "dim_reduced", int, "mask_predictor")
            out["mask_predictor"] = MaskRCNNPredictor(mask_layers[-1] if mask_layers else out_channels, dim,
                                                      num_classes)
    if kind == "keypoint":
        out["keypoint_roi_pool"] = out["keypoint_head"] = out["keypoint_predictor"] = None
        if "keypoint_roi_pool" in spec:
            out["keypoint_roi_pool"] = _align_from_spec(spec, "keypoint_roi_pool")
        kp_layers = [512] * 8
        if "keypoint_head" in spec:
            kp_layers = [as_int(v, "keypoint_head.layers")
                         for v in _get(spec["keypoint_head"], "layers", list, "keypoint_head")]
            out["keypoint_head"] = KeypointRCNNHeads(out_channels, kp_layers)
        if "keypoint_predictor" in spec:
            out["keypoint_predictor"] = KeypointRCNNPredictor(
                kp_layers[-1], _get(spec["keypoint_predictor"], "num_keypoints", int, "keypoint_predictor"))
    if spec.get("legacy"):
        out["_legacy"] = True  # faster-rcnn.pytorch's conventions (the vgg16 / c4 builders' legacy=True)
    return out
