"""Parity of swiftrcnn.ops box utilities with torchvision.ops.boxes, and their bad-input behaviour."""
import numpy as np
import pytest
import torch
import torchvision.ops as tvops
from hypothesis import given, settings, strategies as st

from swiftrcnn import ops
from utils import DTYPES, assert_close, random_boxes, t


def edge_boxes(dtype):
    """Zero-size, inverted, negative and outside-the-image boxes mixed with ordinary ones."""
    return np.array([
        [0, 0, 10, 10], [5, 5, 5, 5], [10, 10, 0, 0], [-20, -5, 3, 4], [90, 90, 250, 300],
        [1.5, 2.25, 3.75, 9.5], [0, 0, 0, 10], [3, 3, 8, 8],
    ], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou"])
def test_pairwise_random(fn, dtype, rng):
    a, b = random_boxes(rng, 37, dtype), random_boxes(rng, 53, dtype)
    assert_close(getattr(ops, fn)(a, b), getattr(tvops, fn)(t(a), t(b)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou"])
def test_pairwise_edge_cases(fn, dtype):
    a = edge_boxes(dtype)
    with np.errstate(all="ignore"):
        assert_close(getattr(ops, fn)(a, a[::-1]), getattr(tvops, fn)(t(a), t(a[::-1])))


@pytest.mark.parametrize("fmt", ["xyxy", "xywh", "cxcywh"])
def test_box_iou_formats(fmt, rng):
    a, b = random_boxes(rng, 20, np.float64), random_boxes(rng, 30, np.float64)
    a, b = tvops.box_convert(t(a), "xyxy", fmt).numpy(), tvops.box_convert(t(b), "xyxy", fmt).numpy()
    assert_close(ops.box_iou(a, b, fmt=fmt), tvops.box_iou(t(a), t(b), fmt=fmt))
    assert_close(ops.box_area(a, fmt=fmt), tvops.box_area(t(a), fmt=fmt))


def test_pairwise_batched_leading_dims(rng):
    a = random_boxes(rng, 2 * 3 * 5, np.float32).reshape(2, 3, 5, 4)
    b = random_boxes(rng, 2 * 3 * 7, np.float32).reshape(2, 3, 7, 4)
    assert_close(ops.box_iou(a, b), tvops.box_iou(t(a), t(b)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_box_area(dtype, rng):
    a = np.concatenate([random_boxes(rng, 50, dtype), edge_boxes(dtype)])
    assert_close(ops.box_area(a), tvops.box_area(t(a)))
    assert_close(ops.box_area(a.reshape(2, -1, 4)), tvops.box_area(t(a.reshape(2, -1, 4))))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("in_fmt", ["xyxy", "xywh", "cxcywh"])
@pytest.mark.parametrize("out_fmt", ["xyxy", "xywh", "cxcywh"])
def test_box_convert(in_fmt, out_fmt, dtype, rng):
    a = random_boxes(rng, 40, dtype)
    assert_close(ops.box_convert(a, in_fmt, out_fmt), tvops.box_convert(t(a), in_fmt, out_fmt))


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_boxes_to_image(dtype, rng):
    a = (random_boxes(rng, 60, dtype, size=160) - 30).astype(dtype)
    assert_close(ops.clip_boxes_to_image(a, (90, 120)), tvops.clip_boxes_to_image(t(a), (90, 120)))
    a3 = a.reshape(3, 20, 4)
    assert_close(ops.clip_boxes_to_image(a3, (90, 120)), tvops.clip_boxes_to_image(t(a3), (90, 120)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("min_size", [0.0, 1e-2, 5.0, 25.0])
def test_remove_small_boxes(min_size, dtype, rng):
    a = np.concatenate([random_boxes(rng, 80, dtype, min_wh=0, max_wh=30), edge_boxes(dtype)])
    ours = ops.remove_small_boxes(a, min_size)
    assert ours.dtype == np.int64
    np.testing.assert_array_equal(ours, tvops.remove_small_boxes(t(a), min_size).numpy())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[st.floats(-50, 50, allow_nan=False, width=32)] * 4), min_size=0, max_size=12),
       st.lists(st.tuples(*[st.floats(-50, 50, allow_nan=False, width=32)] * 4), min_size=0, max_size=12))
def test_box_iou_property(l1, l2):
    a = np.array(l1, np.float64).reshape(-1, 4)
    b = np.array(l2, np.float64).reshape(-1, 4)
    with np.errstate(all="ignore"):
        ours = ops.box_iou(a, b)
        theirs = tvops.box_iou(t(a), t(b))
    assert_close(ours, theirs)


def test_empty_inputs():
    e = np.zeros((0, 4), np.float32)
    assert ops.box_iou(e, np.ones((3, 4), np.float32)).shape == (0, 3)
    assert ops.box_area(e).shape == (0,)
    assert ops.box_convert(e, "xyxy", "cxcywh").shape == (0, 4)
    assert ops.remove_small_boxes(e, 1.0).shape == (0,)


def test_input_layouts(rng):
    """Fortran order, strided views, read-only and big-endian inputs give the same result as a plain array."""
    a = random_boxes(rng, 30, np.float64)
    b = random_boxes(rng, 20, np.float64)
    expected = ops.box_iou(a, b)
    ro = a.copy()
    ro.setflags(write=False)
    variants = [np.asfortranarray(a), np.repeat(a, 2, axis=0)[::2], ro, a.astype(">f8"), a.tolist()]
    for v in variants:
        np.testing.assert_array_equal(ops.box_iou(v, b), expected)
    assert ops.box_iou(a.astype(np.float32), b).dtype == np.float64  # mixed precision promotes
    assert ops.box_iou(a.astype(np.int32), b.astype(np.int16)).dtype == np.float32


class TestBadInput:
    def test_wrong_shape(self, isolated):
        isolated.expect_error("ops.box_iou(np.zeros((3, 5)), np.zeros((2, 4)))", ValueError, "boxes1", "(3, 5)")
        isolated.expect_error("ops.box_area(np.zeros((3,)))", ValueError, "boxes")
        isolated.expect_error("ops.box_area(np.float32(3))", ValueError, "boxes")

    def test_wrong_type(self, isolated):
        isolated.expect_error("ops.box_iou(np.array([['a'] * 4]), np.zeros((2, 4)))", TypeError, "boxes1")
        isolated.expect_error("ops.box_iou(np.zeros((1, 4), complex), np.zeros((2, 4)))", TypeError, "boxes1")
        isolated.expect_error("ops.box_convert(np.zeros((1, 4)), 'xyxy', 'polar')", ValueError, "out_fmt")
        isolated.expect_error("ops.remove_small_boxes(np.zeros((1, 4)), 'big')", TypeError, "min_size")

    def test_clip_size(self, isolated):
        isolated.expect_error("ops.clip_boxes_to_image(np.zeros((1, 4)), (-1, 5))", ValueError, "size")
        isolated.expect_error("ops.clip_boxes_to_image(np.zeros((1, 4)), 5)", ValueError, "size")

    def test_nan_propagates_without_crash(self, isolated):
        kind, _ = isolated.run("result = ops.box_iou(np.full((2, 4), np.nan), np.ones((2, 4)))")
        assert kind == "ok"


@pytest.mark.parametrize("dtype", [np.uint8, np.bool_, np.float32, np.int64])
def test_masks_to_boxes_matches_torchvision(dtype):
    rng = np.random.default_rng(3)
    masks = np.zeros((6, 13, 17), dtype)
    masks[0, 2:5, 3:9] = 1
    masks[1, 7, 16] = 1                     # one pixel in the last column
    masks[2] = rng.random((13, 17)) > 0.9   # scattered pixels
    masks[4, :, 0] = 1                      # a single column; masks[3] and masks[5] stay empty
    masks[5, 12, :] = 0
    got = ops.masks_to_boxes(masks)
    expected = tvops.masks_to_boxes(torch.from_numpy(masks)).numpy()
    assert got.dtype == np.float32 and got.shape == (6, 4)
    np.testing.assert_array_equal(got, expected)
    assert ops.masks_to_boxes(np.zeros((0, 5, 5), dtype)).shape == (0, 4)
    assert ops.masks_to_boxes(np.zeros((3, 0, 5), dtype)).shape == (0, 4)  # no elements: torchvision's (0, 4)
    with pytest.raises(ValueError, match="masks"):
        ops.masks_to_boxes(np.ones((4, 4), dtype))
