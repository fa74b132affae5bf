"""Parity of swiftrcnn.ops.AnchorGenerator with torchvision's AnchorGenerator, and its bad-input behaviour."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator
from torchvision.models.detection.image_list import ImageList

from swiftrcnn import ops
from utils import DTYPES

TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def reference(sizes, aspect_ratios, batch_hw, feature_hw, num_images, dtype):
    """torchvision's anchors. Images and feature maps are zero-stride expanded tensors: only their shapes are read,
    so huge images cost no memory."""
    gen = TVAnchorGenerator(sizes, aspect_ratios)
    tdtype = TORCH_DTYPE[np.dtype(dtype).type]
    images = torch.zeros(1, dtype=tdtype).expand(num_images, 3, *batch_hw)
    features = [torch.zeros(1, dtype=tdtype).expand(num_images, 8, h, w) for h, w in feature_hw]
    return gen(ImageList(images, [tuple(batch_hw)] * num_images), features)


def check(sizes, aspect_ratios, batch_hw, feature_hw, num_images=2, dtype=np.float32):
    ours = ops.AnchorGenerator(sizes, aspect_ratios)(batch_hw=batch_hw, feature_hw=feature_hw,
                                                     num_images=num_images, dtype=dtype)
    theirs = reference(sizes, aspect_ratios, batch_hw, feature_hw, num_images, dtype)
    assert len(ours) == len(theirs) == num_images
    for a, b in zip(ours, theirs):
        assert a.dtype == np.dtype(dtype) and a.shape == tuple(b.shape)
        np.testing.assert_array_equal(a, b.numpy())


FPN_SIZES = ((32,), (64,), (128,), (256,), (512,))
CONFIGS = [
    # (sizes, aspect_ratios, batch_hw, feature_hw)
    (((128, 256, 512),), ((0.5, 1.0, 2.0),), (800, 1088), [(50, 68)]),          # Faster R-CNN C4 default
    (FPN_SIZES, ((0.5, 1.0, 2.0),) * 5, (800, 1216), [(200, 304), (100, 152), (50, 76), (25, 38), (13, 19)]),
    ((32, 64, 128), (0.5, 1.0, 2.0), (96, 128), [(24, 32), (12, 16), (6, 8)]),  # flat sizes and one ratio tuple
    (((16, 24.5),), ((0.25, 1 / 3, 3.0, 4.0),), (100, 75), [(7, 9)]),            # strides 14 and 8 (truncated)
    (((20,), (40, 80)), ((1.0,), (0.5, 2.0)), (64, 64), [(100, 3), (1, 1)]),     # feature map larger than image
    (((954.36,),), ((3.0,),), (32, 32), [(2, 2)]),  # float32 rounding of the cell anchor differs from float64
    (((8,),), ((1.0,),), (1, 1), [(1, 1)]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", range(len(CONFIGS)))
def test_parity(config, dtype):
    check(*CONFIGS[config], dtype=dtype)


@pytest.mark.parametrize("num_images", [0, 1, 3])
def test_num_images(num_images):
    check(((32, 64),), ((0.5, 1.0),), (64, 96), [(4, 6)], num_images=num_images)


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_shifts_round_like_torchvision(dtype):
    # Shifts beyond 2^24 are not exact in float32; torchvision converts the int32 shift to float32 before adding.
    check(((100,),), ((0.5, 2.0),), (50_000_001, 40_000_003), [(3, 7)], num_images=1, dtype=dtype)


def test_cell_anchors_and_counts():
    sizes, ratios = ((32, 64, 100.5),) + ((48,),), ((0.5, 1.0, 2.0), (1 / 3, 3.0))
    ours, theirs = ops.AnchorGenerator(sizes, ratios), TVAnchorGenerator(sizes, ratios)
    assert ours.num_anchors_per_location() == theirs.num_anchors_per_location() == [9, 2]
    assert len(ours.cell_anchors) == 2
    for a, b in zip(ours.cell_anchors, theirs.cell_anchors):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b.numpy())
    assert ours.sizes == ((32.0, 64.0, 100.5), (48.0,))


def test_normalisation_of_flat_arguments():
    gen = ops.AnchorGenerator(sizes=(32, 64), aspect_ratios=(0.5, 1.0))
    assert gen.sizes == ((32.0,), (64.0,))
    assert gen.aspect_ratios == ((0.5, 1.0), (0.5, 1.0))
    assert gen.num_anchors_per_location() == [2, 2]


def test_default_arguments():
    gen = ops.AnchorGenerator()
    (anchors,) = gen(batch_hw=(32, 48), feature_hw=[(2, 3)])
    assert anchors.dtype == np.float32 and anchors.shape == (2 * 3 * 9, 4)
    np.testing.assert_array_equal(anchors, reference(((128, 256, 512),), ((0.5, 1.0, 2.0),), (32, 48), [(2, 3)],
                                                     1, np.float32)[0].numpy())


def test_images_get_separate_arrays():
    a, b = ops.AnchorGenerator(((16,),), ((1.0,),))(batch_hw=(8, 8), feature_hw=[(2, 2)], num_images=2)
    a[0, 0] = 1234
    assert b[0, 0] == -8


def test_empty_level_gives_no_anchors():
    check(((), (32,)), ((1.0,), (1.0,)), (16, 16), [(2, 2), (2, 2)])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.lists(st.floats(1, 600, width=32), min_size=1, max_size=3),
                          st.lists(st.floats(0.125, 8, width=32), min_size=1, max_size=3),
                          st.integers(1, 40), st.integers(1, 40)), min_size=1, max_size=3),
       st.integers(1, 700), st.integers(1, 700), st.sampled_from(DTYPES))
def test_property_parity(levels, height, width, dtype):
    sizes = tuple(tuple(lv[0]) for lv in levels)
    ratios = tuple(tuple(lv[1]) for lv in levels)
    check(sizes, ratios, (height, width), [(lv[2], lv[3]) for lv in levels], num_images=1, dtype=dtype)


class TestBadInput:
    def test_sizes_and_ratios(self, isolated):
        for bad in ["0", "-32", "float('nan')", "float('inf')", "1e39"]:
            isolated.expect_error(f"ops.AnchorGenerator((({bad},),), ((1.0,),))", ValueError, "sizes")
            isolated.expect_error(f"ops.AnchorGenerator(((32,),), ((1.0, {bad}),))", ValueError, "aspect_ratios")
        isolated.expect_error("ops.AnchorGenerator(((32,), (64,)), ((1.0,),) * 3)", ValueError, "sizes",
                              "aspect_ratios")
        isolated.expect_error("ops.AnchorGenerator((), ())", ValueError, "sizes")
        isolated.expect_error("ops.AnchorGenerator((('big',),), ((1.0,),))", TypeError, "sizes")

    def test_feature_maps(self, isolated):
        gen = "g = ops.AnchorGenerator(((32,), (64,)), ((1.0,),) * 2); "
        isolated.expect_error(gen + "g(batch_hw=(64, 64), feature_hw=[(8, 8)])", ValueError, "feature_hw", "2")
        isolated.expect_error(gen + "g(batch_hw=(64, 64), feature_hw=[(8, 8), (4, 4), (2, 2)])", ValueError,
                              "feature_hw")
        isolated.expect_error(gen + "g(batch_hw=(64, 64), feature_hw=[])", ValueError, "feature_hw")
        isolated.expect_error(gen + "g(batch_hw=(64, 64), feature_hw=[(8, 0), (4, 4)])", ValueError, "feature_hw",
                              "level 0")
        isolated.expect_error(gen + "g(batch_hw=(64, 64), feature_hw=[(8, 8), (-4, 4)])", ValueError, "feature_hw",
                              "level 1")
        isolated.expect_error(gen + "g(batch_hw=(64, 64), feature_hw=[(8, 8), (4.5, 4)])", TypeError, "feature_hw")

    def test_image_size_and_arguments(self, isolated):
        gen = "g = ops.AnchorGenerator(((32,),), ((1.0,),)); "
        isolated.expect_error(gen + "g(batch_hw=(0, 64), feature_hw=[(8, 8)])", ValueError, "batch_hw")
        isolated.expect_error(gen + "g(batch_hw=(64, -1), feature_hw=[(8, 8)])", ValueError, "batch_hw")
        isolated.expect_error(gen + "g(batch_hw=(2**31, 64), feature_hw=[(8, 8)])", ValueError, "batch_hw")
        isolated.expect_error(gen + "g(batch_hw=64, feature_hw=[(8, 8)])", ValueError, "batch_hw")
        isolated.expect_error(gen + "g(batch_hw=(64, 64), feature_hw=[(8, 8)], num_images=-1)", ValueError,
                              "num_images")
        isolated.expect_error(gen + "g(batch_hw=(64, 64), feature_hw=[(8, 8)], dtype=np.float16)", TypeError,
                              "dtype")
        isolated.expect_error(gen + "g(batch_hw=(64, 64), feature_hw=[(8, 8)], dtype='int64')", TypeError, "dtype")

    def test_absurd_anchor_counts(self, isolated):
        gen = "g = ops.AnchorGenerator(((32, 64),), ((0.5, 1.0, 2.0),)); "
        isolated.expect_error(gen + "g(batch_hw=(10, 10), feature_hw=[(2**20, 2**20)])", MemoryError, "anchors")
        isolated.expect_error(gen + "g(batch_hw=(10, 10), feature_hw=[(2**62, 2**62)])", MemoryError, "anchors")

    def test_direct_binding_lengths(self, isolated):
        # The raw-pointer ABI relies on the binding to check that counts and lengths agree.
        call = ("from swiftrcnn import _C; f64 = lambda *v: np.array(v, np.float64); "
                "i64 = lambda *v: np.array(v, np.int64); out = np.empty((4, 4), np.float32); ")
        isolated.expect_error(call + "_C.anchor_generator(f64(32), i64(2), f64(1), i64(1), 8, 8, "
                              "np.ones((1, 2), np.int64), out)", ValueError, "sizes")
        isolated.expect_error(call + "_C.anchor_generator(f64(32), i64(1), f64(1), i64(1, 0), 8, 8, "
                              "np.ones((1, 2), np.int64), out)", ValueError, "aspect_ratios")
        isolated.expect_error(call + "_C.anchor_generator(f64(32), i64(-1), f64(1), i64(1), 8, 8, "
                              "np.ones((1, 2), np.int64), out)", ValueError, "sizes")
        isolated.expect_error(call + "_C.anchor_generator(np.float32([32]), i64(1), f64(1), i64(1), 8, 8, "
                              "np.ones((1, 2), np.int64), out)", TypeError, "sizes")
        isolated.expect_error(call + "_C.anchor_generator(f64(32), i64(1), f64(1), i64(1), 8, 8, "
                              "np.ones((1, 2), np.int64), out)", ValueError, "anchors", "(1, 4)")
