"""Detection data sets as torchvision's reference scripts read them: (image, target) pairs of NumPy arrays.

    >>> from swiftrcnn.datasets import CocoDetection
    >>> data = CocoDetection("val2017", "annotations/instances_val2017.json")
    >>> image, target = data[0]        # (3, H, W) float32 in [0, 1]; target["boxes"] (N, 4) xyxy, ...

`CocoDetection` reads COCO-format data sets (pycocotools decodes the masks); `synthetic.make_scenes` writes a
small, reproducible one (digits over photographs) for trying detectors and the training loop. Both need the
tools extra (`pip install swiftrcnn[tools]`; the synthetic scenes also scikit-image), imported when first used.
"""
from . import synthetic
from .coco import COCO_CATEGORIES, CocoDetection

__all__ = ["COCO_CATEGORIES", "CocoDetection", "synthetic"]
