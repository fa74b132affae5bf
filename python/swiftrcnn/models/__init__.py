"""torchvision.models.detection on NumPy arrays: the same builders, arguments and defaults, in eval and training mode.

    >>> from swiftrcnn import models
    >>> model = models.fasterrcnn_resnet50_fpn(weights="fasterrcnn_resnet50_fpn_coco.pth")
    >>> levels, image_sizes = model.features([image])     # image: (3, H, W) floats in [0, 1]

Weights are torchvision state dicts (a checkpoint path or a mapping of names to arrays); nothing is downloaded.
`model.save(path)` writes a .safetensors file that also describes the model, and `load(path)` rebuilds it:

    >>> model.save("detector.safetensors")
    >>> model = models.load("detector.safetensors")
"""
from . import parts
from .detection import (FasterRCNN, KeypointRCNN, MaskRCNN, Parameter, fasterrcnn_mobilenet_v3_large_320_fpn,
                        fasterrcnn_mobilenet_v3_large_fpn, fasterrcnn_resnet50_c4,
                        fasterrcnn_resnet50_fpn, fasterrcnn_resnet50_fpn_v2, fasterrcnn_vgg16,
                        keypointrcnn_resnet50_fpn, maskrcnn_resnet50_fpn, maskrcnn_resnet50_fpn_v2, maskrcnn_small,
                        random_state_dict)
from ._saved import BUILTIN_WEIGHTS, default_model, describe, load

__all__ = ["parts", "FasterRCNN", "KeypointRCNN", "MaskRCNN", "Parameter", "fasterrcnn_mobilenet_v3_large_320_fpn",
           "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_resnet50_c4",
           "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_vgg16", "keypointrcnn_resnet50_fpn",
           "maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2", "maskrcnn_small", "random_state_dict", "describe",
           "load", "default_model", "BUILTIN_WEIGHTS"]
