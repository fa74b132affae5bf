"""Parity of swiftrcnn.ops.BoxCoder with torchvision.models.detection._utils.BoxCoder, and bad-input behaviour."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torchvision.models.detection._utils import BoxCoder as TVBoxCoder

from swiftrcnn import ops
from swiftrcnn.ops.box_coder import BBOX_XFORM_CLIP
from utils import DTYPES, assert_close, random_boxes, t

WEIGHTS = [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0), (2.5, 0.3, 7.0, 1 / 3)]


def random_codes(rng, n, k, dtype, scale=1.0):
    return (rng.standard_normal((n, 4 * k)) * scale).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weights", WEIGHTS)
def test_encode_single(weights, dtype, rng):
    ref, prop = random_boxes(rng, 300, dtype), random_boxes(rng, 300, dtype)
    ours = ops.BoxCoder(weights).encode_single(ref, prop)
    assert_close(ours, TVBoxCoder(weights).encode_single(t(ref), t(prop)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("k", [1, 3])
def test_decode_single(k, weights, dtype, rng):
    boxes = random_boxes(rng, 250, dtype)
    # Codes large enough that many dw, dh hit the clamp.
    codes = random_codes(rng, 250, k, dtype, scale=4.0 * max(weights))
    ours = ops.BoxCoder(weights).decode_single(codes, boxes)
    assert_close(ours, TVBoxCoder(weights).decode_single(t(codes), t(boxes)))


@pytest.mark.parametrize("clip", [0.0, 1.0, BBOX_XFORM_CLIP, 20.0, -2.0])
def test_custom_clip(clip, rng):
    boxes, codes = random_boxes(rng, 100, np.float64), random_codes(rng, 100, 2, np.float64, scale=5)
    ours = ops.BoxCoder((1, 1, 1, 1), bbox_xform_clip=clip).decode_single(codes, boxes)
    assert_close(ours, TVBoxCoder((1, 1, 1, 1), bbox_xform_clip=clip).decode_single(t(codes), t(boxes)))


def test_default_clip_constant():
    assert BBOX_XFORM_CLIP == math.log(1000.0 / 16)
    assert ops.BoxCoder((1, 1, 1, 1)).bbox_xform_clip == TVBoxCoder((1, 1, 1, 1)).bbox_xform_clip


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_finite_codes_and_boxes_propagate(dtype):
    boxes = np.array([[0, 0, 10, 10], [5, 5, 5, 5], [10, 10, 0, 0], [0, 0, np.inf, 4], [np.nan, 0, 1, 1],
                      [1, 2, 3, 4]], dtype)
    codes = np.array([[np.nan, 0, 0, 0], [0, 0, np.inf, -np.inf], [np.inf, -np.inf, 0, 0], [0.1, 0.2, 0.3, 0.4],
                      [0, 0, 0, 0], [0, 0, np.nan, 100]], dtype)
    coder, tv = ops.BoxCoder((10, 10, 5, 5)), TVBoxCoder((10, 10, 5, 5))
    with np.errstate(all="ignore"):
        assert_close(coder.decode_single(codes, boxes), tv.decode_single(t(codes), t(boxes)))
        assert_close(coder.encode_single(boxes, boxes[::-1]), tv.encode_single(t(boxes), t(boxes[::-1])))


@pytest.mark.parametrize("dtype", DTYPES)
def test_decode_lists(dtype, rng):
    per_image = [random_boxes(rng, n, dtype) for n in (40, 0, 13)]
    codes = random_codes(rng, 53, 5, dtype)
    ours = ops.BoxCoder((10, 10, 5, 5)).decode(codes, per_image)
    theirs = TVBoxCoder((10, 10, 5, 5)).decode(t(codes), [t(b) for b in per_image])
    assert ours.shape == (53, 5, 4)
    assert_close(ours, theirs)
    # rel_codes with the same number of values in another shape are reshaped to (sum n_i, -1) first.
    assert_close(ops.BoxCoder((10, 10, 5, 5)).decode(codes.reshape(-1, 4), per_image), theirs)


def test_decode_without_boxes():
    empty = np.zeros((0, 4), np.float32)
    codes = np.zeros((0, 8), np.float32)
    ours = ops.BoxCoder((1, 1, 1, 1)).decode(codes, [empty, empty])
    theirs = TVBoxCoder((1, 1, 1, 1)).decode(t(codes), [t(empty), t(empty)])
    assert ours.shape == tuple(theirs.shape) == (0, 8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_encode_lists(dtype, rng):
    sizes = (7, 0, 20)
    ref = [random_boxes(rng, n, dtype) for n in sizes]
    prop = [random_boxes(rng, n, dtype) for n in sizes]
    ours = ops.BoxCoder((10, 10, 5, 5)).encode(ref, prop)
    theirs = TVBoxCoder((10, 10, 5, 5)).encode([t(b) for b in ref], [t(b) for b in prop])
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs):
        assert_close(a, b)


def test_mixed_dtypes_follow_torchvision(rng):
    boxes64 = random_boxes(rng, 30, np.float64)
    codes32 = random_codes(rng, 30, 1, np.float32)
    # decode: boxes are converted to the dtype of rel_codes.
    ours = ops.BoxCoder((10, 10, 5, 5)).decode_single(codes32, boxes64)
    assert ours.dtype == np.float32
    assert_close(ours, TVBoxCoder((10, 10, 5, 5)).decode_single(t(codes32), t(boxes64)))
    # encode: the result is float64. torchvision computes the float32 reference boxes' widths and centres in
    # float32 before promoting; we convert first, so the two agree to float32 precision only.
    ref32 = random_boxes(rng, 30, np.float32)
    ours = ops.BoxCoder((1, 1, 1, 1)).encode_single(ref32, boxes64)
    assert ours.dtype == np.float64
    theirs = TVBoxCoder((1, 1, 1, 1)).encode_single(t(ref32), t(boxes64))
    assert theirs.dtype == torch.float64
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-5)


def test_empty_inputs():
    e = np.zeros((0, 4), np.float64)
    coder = ops.BoxCoder((1, 1, 1, 1))
    assert coder.encode_single(e, e).shape == (0, 4)
    assert coder.decode_single(np.zeros((0, 12)), e).shape == (0, 12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-100, 100), st.floats(-100, 100), st.floats(4, 200), st.floats(4, 200)),
                min_size=1, max_size=20),
       st.lists(st.tuples(st.floats(-100, 100), st.floats(-100, 100), st.floats(4, 200), st.floats(4, 200)),
                min_size=20, max_size=20),
       st.sampled_from(WEIGHTS))
def test_round_trip_property(gt, anchors, weights):
    """decode(encode(gt, anchors), anchors) == gt while the size ratios stay within the clamp (sides 4...200: at
    most 50 times, below e^bbox_xform_clip = 62.5)."""
    def corners(rows):
        a = np.array(rows, np.float64)
        return np.concatenate([a[:, :2], a[:, :2] + a[:, 2:]], axis=1)
    gt = corners(gt)
    anchors = corners(anchors[:len(gt)])
    coder = ops.BoxCoder(weights)
    codes = coder.encode_single(gt, anchors)
    assert_close(codes, TVBoxCoder(weights).encode_single(t(gt), t(anchors)))
    np.testing.assert_allclose(coder.decode_single(codes, anchors), gt, rtol=1e-9, atol=1e-9)


class TestBadInput:
    def test_weights(self, isolated):
        boxes = "b = np.array([[0, 0, 4, 4.]]); "
        for bad in ["(0, 1, 1, 1)", "(1, -1, 1, 1)", "(1, 1, float('nan'), 1)", "(1, 1, 1, float('inf'))"]:
            isolated.expect_error(boxes + f"ops.BoxCoder({bad}).decode_single(b, b)", ValueError, "weights")
            isolated.expect_error(boxes + f"ops.BoxCoder({bad}).encode_single(b, b)", ValueError, "weights")
        isolated.expect_error("ops.BoxCoder((1, 1, 1))", ValueError, "weights")
        isolated.expect_error("ops.BoxCoder(1.0)", TypeError, "weights")
        isolated.expect_error("ops.BoxCoder((1, 1, 1, 'a'))", TypeError, "weights")

    def test_clip(self, isolated):
        boxes = "b = np.array([[0, 0, 4, 4.]]); "
        for bad in ["float('nan')", "float('inf')", "-float('inf')"]:
            isolated.expect_error(boxes + f"ops.BoxCoder((1, 1, 1, 1), {bad}).decode_single(b, b)", ValueError,
                                  "bbox_xform_clip")
        isolated.expect_error("ops.BoxCoder((1, 1, 1, 1), None)", TypeError, "bbox_xform_clip")

    def test_shapes(self, isolated):
        coder = "c = ops.BoxCoder((1, 1, 1, 1)); "
        isolated.expect_error(coder + "c.decode_single(np.zeros((3, 6)), np.zeros((3, 4)))", ValueError,
                              "rel_codes", "(3, 6)")
        isolated.expect_error(coder + "c.decode_single(np.zeros(8), np.zeros((2, 4)))", ValueError, "rel_codes")
        isolated.expect_error(coder + "c.decode_single(np.zeros((3, 8)), np.zeros((2, 4)))", ValueError, "boxes")
        isolated.expect_error(coder + "c.decode_single(np.zeros((3, 8)), np.zeros((3, 5)))", ValueError, "boxes")
        isolated.expect_error(coder + "c.encode_single(np.zeros((3, 4)), np.zeros((2, 4)))", ValueError,
                              "proposals")
        isolated.expect_error(coder + "c.encode_single(np.zeros((3, 3)), np.zeros((3, 4)))", ValueError,
                              "reference_boxes")
        isolated.expect_error(coder + "c.decode(np.zeros((3, 4)), np.zeros((3, 4)))", TypeError, "boxes", "list")
        isolated.expect_error(coder + "c.decode(np.zeros((7,)), [np.zeros((3, 4))])", ValueError, "rel_codes")
        isolated.expect_error(coder + "c.decode(np.zeros((3, 4)), [np.zeros((3, 2))])", ValueError, "boxes[0]")
        isolated.expect_error(coder + "c.encode([], [])", ValueError, "reference_boxes")
        isolated.expect_error(coder + "c.encode([np.zeros((2, 4))], [np.zeros((3, 4))])", ValueError, "proposals")
        isolated.expect_error(coder + "c.decode_single(np.zeros((1, 4), complex), np.zeros((1, 4)))", TypeError,
                              "rel_codes")
