"""Integer arguments beyond the C ABI's 64-bit range, and result sizes beyond the library's limits, are errors that
name the argument (not OverflowError from argument parsing, nor numpy's allocation errors)."""
import numpy as np
import pytest

from swiftrcnn import models, ops

HUGE = 2 ** 70
X = np.zeros((1, 4, 8, 8), np.float32)
B = np.array([[0, 0, 0, 4, 4]], np.float32)


@pytest.mark.parametrize("call, name", [
    (lambda: ops.roi_align(X, B, (7, HUGE)), "output_size"),
    (lambda: ops.roi_align(X, B, HUGE), "output_size"),
    (lambda: ops.roi_align(X, B, 7, sampling_ratio=-HUGE), "sampling_ratio"),
    (lambda: ops.roi_pool(X, B, (2 ** 63, 2)), "output_size"),
    (lambda: ops.ps_roi_align(X, B, 2, sampling_ratio=HUGE), "sampling_ratio"),
    (lambda: ops.roi_align_backward(np.zeros((1, 4, 2, 2), np.float32), B, (1, 4, HUGE, 8)), "input_shape"),
    (lambda: ops.paste_masks_in_image(np.zeros((1, 28, 28), np.float32), np.zeros((1, 4), np.float32),
                                      (HUGE, 3)), "img_shape"),
    (lambda: ops.AnchorGenerator()(batch_hw=(HUGE, 5), feature_hw=[(1, 1)] * 5), "batch_hw"),
    (lambda: models.fasterrcnn_resnet50_fpn(weights={}, min_size=HUGE), "min_size"),
    (lambda: models.maskrcnn_resnet50_fpn(weights={}, box_detections_per_img=-HUGE), "box_detections_per_img"),
])
def test_out_of_range_ints_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("call, name", [
    (lambda: ops.roi_align(X, B, (7, 2 ** 40)), "output_size"),
    (lambda: ops.roi_align_backward(np.zeros((1, 4, 2, 2), np.float32), B, (1, 4, 2 ** 40, 8)), "input_shape"),
    (lambda: ops.MultiScaleRoIAlign(["0"], (2 ** 40, 7), 2)({"0": X}, [B[:, 1:]], [(32, 32)]), "output_size"),
])
def test_results_too_large_name_the_argument(call, name):
    with pytest.raises(MemoryError, match=name):
        call()
