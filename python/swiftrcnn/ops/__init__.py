"""torchvision.ops on NumPy arrays: the same names, arguments, defaults and results.

Inputs are anything `numpy.asarray` accepts; float32 and float64 are kept, other reals become float32. Outputs are
NumPy arrays of the input's float type; indices are int64. Invalid input raises ValueError or TypeError naming the
argument.
"""
from .boxes import (
    batched_nms,
    box_area,
    box_convert,
    box_iou,
    clip_boxes_to_image,
    complete_box_iou,
    distance_box_iou,
    generalized_box_iou,
    masks_to_boxes,
    nms,
    remove_small_boxes,
    soft_nms,
)
from .anchors import AnchorGenerator
from .box_coder import BoxCoder
from . import legacy
from .matcher import BalancedPositiveNegativeSampler, Matcher
from .paste_masks import paste_masks_in_image
from .ps_roi_align import ps_roi_align, ps_roi_align_backward
from .ps_roi_pool import ps_roi_pool, ps_roi_pool_backward
from .roi_pool import roi_pool, roi_pool_backward
from .roi_align import roi_align, roi_align_backward
from .poolers import MultiScaleRoIAlign

__all__ = [
    "AnchorGenerator", "BalancedPositiveNegativeSampler", "BoxCoder", "Matcher", "MultiScaleRoIAlign", "batched_nms",
    "box_area", "box_convert", "box_iou", "clip_boxes_to_image", "complete_box_iou", "distance_box_iou",
    "generalized_box_iou", "legacy", "masks_to_boxes", "nms", "paste_masks_in_image", "ps_roi_align",
    "ps_roi_align_backward", "ps_roi_pool", "ps_roi_pool_backward", "remove_small_boxes", "roi_align",
    "roi_align_backward", "roi_pool", "roi_pool_backward", "soft_nms",
]
