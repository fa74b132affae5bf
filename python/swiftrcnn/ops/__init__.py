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
    nms,
    remove_small_boxes,
    soft_nms,
)
from .roi_align import roi_align, roi_align_backward
from .poolers import MultiScaleRoIAlign
