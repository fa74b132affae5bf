"""Parity of swiftrcnn.ops.paste_masks_in_image with torchvision.models.detection.roi_heads.paste_masks_in_image,
and bad-input behaviour."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torchvision.models.detection.roi_heads import expand_boxes, paste_masks_in_image as tv_paste

import swiftrcnn
from swiftrcnn import ops
from utils import DTYPES, assert_close, t


def reference(masks, boxes, img_shape, padding=1):
    """torchvision's result with boxes clipped to the image. torchvision raises for boxes that start right of or
    below the image (its slices then disagree), so it pastes into a canvas extended right and down, then crops;
    boxes whose expanded box (torchvision's own expand_boxes) ends left of or above the image paste nothing."""
    h, w = img_shape
    m = masks.shape[-1]
    expanded = expand_boxes(t(boxes), (m + 2 * padding) / m).to(torch.int64).numpy()
    outside = (expanded[:, 2] < -1) | (expanded[:, 3] < -1)
    canvas = (max(h, int(expanded[:, 3].max(initial=0)) + 2), max(w, int(expanded[:, 2].max(initial=0)) + 2))
    big = tv_paste(t(masks[~outside]), t(boxes[~outside]), canvas, padding)
    out = torch.zeros((len(boxes), 1, h, w), dtype=big.dtype)
    out[torch.from_numpy(~outside)] = big[:, :, :h, :w]
    return out


def random_case(rng, n, m, img_shape, dtype, lo=-30.0, max_wh=200.0):
    """Masks in [0, 1] and boxes, many of them crossing the image border, a few wholly outside it."""
    h, w = img_shape
    masks = rng.uniform(0, 1, (n, 1, m, m)).astype(dtype)
    x1 = rng.uniform(lo, w + 20, n)
    y1 = rng.uniform(lo, h + 20, n)
    bw, bh = rng.uniform(0, max_wh, n), rng.uniform(0, max_wh, n)
    boxes = np.stack([x1, y1, np.maximum(x1 + bw, 0), np.maximum(y1 + bh, 0)], 1).astype(dtype)
    return masks, boxes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding", [0, 1, 3])
@pytest.mark.parametrize("m", [1, 7, 28])
def test_random(m, padding, dtype, rng):
    masks, boxes = random_case(rng, 40, m, (150, 210), dtype, max_wh=200 * m / (m + 2 * padding))
    ours = ops.paste_masks_in_image(masks, boxes, (150, 210), padding)
    assert_close(ours, reference(masks, boxes, (150, 210), padding))


@pytest.mark.parametrize("dtype", DTYPES)
def test_boxes_inside_image_direct(dtype, rng):
    # Boxes well inside the image: torchvision's own call, no canvas.
    masks = rng.uniform(0, 1, (25, 1, 28, 28)).astype(dtype)
    xy = rng.uniform(5, 100, (25, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.2, 80, (25, 2))], 1).astype(dtype)
    ours = ops.paste_masks_in_image(masks, boxes, (200, 190))
    assert_close(ours, tv_paste(t(masks), t(boxes), (200, 190)))
    assert_close(ops.paste_masks_in_image(masks, boxes, (200, 190), padding=2),
                 tv_paste(t(masks), t(boxes), (200, 190), padding=2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_degenerate_and_inverted_boxes(dtype, rng):
    boxes = np.array([[10, 10, 10, 10], [10.9, 3.2, 11.1, 3.3], [20, 20, 5, 5], [30, 5, 29.5, 40], [0, 0, 0.4, 0.4],
                      [-0.7, -0.7, 0.6, 0.6], [3, 4, 3.5, 60], [0, 0, 63, 47], [-5, -5, 70, 60], [62, 46, 63, 47]],
                     dtype)
    masks = rng.uniform(0, 1, (len(boxes), 1, 28, 28)).astype(dtype)
    for padding in (0, 1, 5):
        ours = ops.paste_masks_in_image(masks, boxes, (48, 64), padding)
        assert_close(ours, reference(masks, boxes, (48, 64), padding))


@pytest.mark.parametrize("dtype", DTYPES)
def test_boxes_outside_image(dtype, rng):
    # Wholly left of / above / right of / below the image: nothing is pasted (torchvision raises for the ones
    # whose slices disagree and gives zeros for the others).
    boxes = np.array([[-60, 5, -30, 20], [5, -60, 20, -30], [200, 5, 230, 20], [5, 200, 20, 230],
                      [-40, -40, -2, -2]], dtype)
    masks = rng.uniform(0.5, 1, (len(boxes), 1, 14, 14)).astype(dtype)
    ours = ops.paste_masks_in_image(masks, boxes, (50, 60))
    assert ours.shape == (5, 1, 50, 60) and not ours.any()
    # A box whose expanded right edge lands on -1 is pasted by torchvision too: zeros both ways.
    edge = np.array([[-30, 3, -1.2, 9]], dtype)
    assert_close(ops.paste_masks_in_image(masks[:1], edge, (50, 60)), tv_paste(t(masks[:1]), t(edge), (50, 60)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_detection_sized(dtype, rng):
    # Mask R-CNN's post-processing: 28x28 masks into an 800x1333 image.
    masks, boxes = random_case(rng, 12, 28, (800, 1333), dtype, lo=0, max_wh=500)
    boxes[:, 2] = np.minimum(boxes[:, 2], 1332)
    boxes[:, 3] = np.minimum(boxes[:, 3], 799)
    boxes[:, :2] = np.minimum(boxes[:, :2], boxes[:, 2:])
    ours = ops.paste_masks_in_image(masks, boxes, (800, 1333))
    assert_close(ours, tv_paste(t(masks), t(boxes), (800, 1333)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty(dtype):
    out = ops.paste_masks_in_image(np.zeros((0, 1, 28, 28), dtype), np.zeros((0, 4), dtype), (30, 40))
    expected = tv_paste(torch.zeros((0, 1, 28, 28), dtype=torch.from_numpy(np.zeros(0, dtype)).dtype),
                        torch.zeros((0, 4)), (30, 40))
    assert out.shape == tuple(expected.shape) == (0, 1, 30, 40) and out.dtype == dtype


def test_boxes_take_the_masks_type(rng):
    masks, boxes = random_case(rng, 10, 28, (60, 70), np.float32)
    ours = ops.paste_masks_in_image(masks, boxes.astype(np.float64), (60, 70))
    assert ours.dtype == np.float32
    assert_close(ours, reference(masks, boxes, (60, 70)))
    lists = ops.paste_masks_in_image(masks.tolist(), boxes.tolist(), [60, 70])
    assert lists.dtype == np.float64


def test_threads_agree(rng):
    masks, boxes = random_case(rng, 33, 28, (120, 140), np.float32)
    before = swiftrcnn.get_num_threads()
    try:
        swiftrcnn.set_num_threads(1)
        one = ops.paste_masks_in_image(masks, boxes, (120, 140))
        swiftrcnn.set_num_threads(2)
        two = ops.paste_masks_in_image(masks, boxes, (120, 140))
    finally:
        swiftrcnn.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


@settings(max_examples=120, deadline=None)
@given(m=st.integers(1, 9), padding=st.integers(0, 4), h=st.integers(1, 40), w=st.integers(1, 40),
       coords=st.lists(st.floats(-15, 55, width=32), min_size=4, max_size=4), seed=st.integers(0, 2**32 - 1),
       double=st.booleans())
def test_property_matches_torchvision(m, padding, h, w, coords, seed, double):
    dtype = np.float64 if double else np.float32
    x1, y1, x2, y2 = coords
    boxes = np.array([[x1, y1, max(x2, 0.0), max(y2, 0.0)]], dtype)
    masks = np.random.default_rng(seed).uniform(0, 1, (1, 1, m, m)).astype(dtype)
    assert_close(ops.paste_masks_in_image(masks, boxes, (h, w), padding), reference(masks, boxes, (h, w), padding))


class TestBadInput:
    def test_non_finite_boxes(self, isolated):
        for bad in ("np.nan", "np.inf", "-np.inf", "1e20"):
            isolated.expect_error(f"b = np.array([[1, 2, 3, 4], [1, 2, {bad}, 4]]); "
                                  f"ops.paste_masks_in_image(np.ones((2, 1, 5, 5)), b, (10, 10))", ValueError, "boxes")

    def test_shapes(self, isolated):
        isolated.expect_error("ops.paste_masks_in_image(np.ones((2, 5, 5)), np.ones((2, 4)), (10, 10))", ValueError,
                              "masks", "(N, 1, M, M)")
        isolated.expect_error("ops.paste_masks_in_image(np.ones((2, 2, 5, 5)), np.ones((2, 4)), (10, 10))",
                              ValueError, "masks")
        isolated.expect_error("ops.paste_masks_in_image(np.ones((2, 1, 5, 6)), np.ones((2, 4)), (10, 10))",
                              ValueError, "masks", "square")
        isolated.expect_error("ops.paste_masks_in_image(np.ones((2, 1, 0, 0)), np.ones((2, 4)), (10, 10))",
                              ValueError, "masks", "M > 0")
        isolated.expect_error("ops.paste_masks_in_image(np.ones((2, 1, 5, 5)), np.ones((3, 4)), (10, 10))",
                              ValueError, "boxes", "(N, 4)")
        isolated.expect_error("ops.paste_masks_in_image(np.ones((2, 1, 5, 5)), np.ones((2, 5)), (10, 10))",
                              ValueError, "boxes")

    def test_image_shape_and_padding(self, isolated):
        call = "ops.paste_masks_in_image(np.ones((2, 1, 5, 5)), np.ones((2, 4)), {}, {})"
        isolated.expect_error(call.format("(0, 10)", 1), ValueError, "img_shape")
        isolated.expect_error(call.format("(10, -3)", 1), ValueError, "img_shape")
        isolated.expect_error(call.format("(10,)", 1), ValueError, "img_shape")
        isolated.expect_error(call.format("(10.5, 10)", 1), TypeError, "img_shape")
        isolated.expect_error(call.format("(10, 10)", -1), ValueError, "padding")
        isolated.expect_error(call.format("(10, 10)", 10**6), ValueError, "padding")
        isolated.expect_error(call.format("(10, 10)", 1.0), TypeError, "padding")
        isolated.expect_error(call.format("(2**40, 2**40)", 1), MemoryError, "img_shape")
        isolated.expect_error("ops.paste_masks_in_image(np.ones((0, 1, 5, 5)), np.ones((0, 4)), (2**40, 2**40))",
                              MemoryError, "img_shape")

    def test_wrong_types(self, isolated):
        isolated.expect_error("ops.paste_masks_in_image(np.ones((1, 1, 5, 5), bool).astype(object), np.ones((1, 4)),"
                              " (10, 10))", TypeError, "masks")
