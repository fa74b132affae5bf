"""Parity of swiftrcnn.ops.MultiScaleRoIAlign with torchvision.ops.MultiScaleRoIAlign, and bad-input behaviour."""
from collections import OrderedDict

import numpy as np
import pytest
import torchvision.ops as tvops

from swiftrcnn import ops
from utils import DTYPES, assert_close, t


def fpn_features(rng, dtype, image_hw=(200, 264), channels=4, batch=2, strides=(4, 8, 16, 32, 64)):
    """A feature pyramid for images padded to `image_hw`: level maps of size ceil(hw / stride)."""
    h, w = image_hw
    names = ["0", "1", "2", "3", "pool"]
    return OrderedDict((names[i], rng.standard_normal((batch, channels, -(-h // s), -(-w // s))).astype(dtype))
                       for i, s in enumerate(strides))


def boxes_of_all_sizes(rng, n, dtype, image_hw):
    """Boxes from a few pixels to the whole image, so every level is used; some partly outside the image."""
    h, w = image_hw
    side = np.exp(rng.uniform(np.log(2), np.log(1.2 * max(h, w)), (n, 2)))
    xy = rng.uniform(-0.1, 1.0, (n, 2)) * [w, h]
    return np.concatenate([xy, xy + side], axis=1).astype(dtype)


def compare(m_ours, m_theirs, features, boxes, image_shapes):
    ours = m_ours(features, boxes, image_shapes)
    theirs = m_theirs(OrderedDict((k, t(v)) for k, v in features.items()), [t(b) for b in boxes], image_shapes)
    assert_close(ours, theirs)
    return ours


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampling_ratio", [-1, 0, 2])
@pytest.mark.parametrize("output_size", [7, (5, 3)])
def test_fpn_parity(dtype, sampling_ratio, output_size, rng):
    image_hw = (200, 264)
    features = fpn_features(rng, dtype, image_hw)
    boxes = [boxes_of_all_sizes(rng, n, dtype, image_hw) for n in (40, 25)]
    image_shapes = [(190, 250), (200, 264)]
    names = ["0", "1", "2", "3"]
    out = compare(ops.MultiScaleRoIAlign(names, output_size, sampling_ratio),
                  tvops.MultiScaleRoIAlign(names, output_size, sampling_ratio), features, boxes, image_shapes)
    assert out.shape[0] == 65 and out.dtype == dtype


@pytest.mark.parametrize("canonical", [(224, 4), (112, 3), (500, 2)])
def test_canonical_scale_and_level(canonical, rng):
    scale, level = canonical
    image_hw = (256, 256)
    features = fpn_features(rng, np.float32, image_hw)
    boxes = [boxes_of_all_sizes(rng, 50, np.float32, image_hw)]
    names = ["0", "1", "2", "3"]
    compare(ops.MultiScaleRoIAlign(names, 3, 2, canonical_scale=scale, canonical_level=level),
            tvops.MultiScaleRoIAlign(names, 3, 2, canonical_scale=scale, canonical_level=level),
            features, boxes, [image_hw])


def test_feature_subset_follows_dict_order(rng):
    """Levels are the dict's maps that are in featmap_names, in the dict's order (not featmap_names' order)."""
    image_hw = (128, 160)
    features = fpn_features(rng, np.float64, image_hw)
    boxes = [boxes_of_all_sizes(rng, 30, np.float64, image_hw)]
    for names in (["1", "3"], ["3", "0", "2"], ["pool", "0"]):
        compare(ops.MultiScaleRoIAlign(names, 2, -1), tvops.MultiScaleRoIAlign(names, 2, -1), features, boxes,
                [image_hw])


def test_single_level_skips_mapper(rng):
    image_hw = (64, 96)
    features = fpn_features(rng, np.float32, image_hw)
    boxes = [boxes_of_all_sizes(rng, 20, np.float32, image_hw), boxes_of_all_sizes(rng, 5, np.float32, image_hw)]
    for name in ["0", "2"]:
        compare(ops.MultiScaleRoIAlign([name], 4, 2), tvops.MultiScaleRoIAlign([name], 4, 2), features, boxes,
                [image_hw, (60, 90)])


def test_scale_inference_rounds_in_log2(rng):
    """Maps whose size is not an exact power-of-two fraction of the image (e.g. 25 / 200 * 1.1) and images of
    different sizes: the scale is 2^round(log2(height ratio)) of the largest image height."""
    features = OrderedDict([("a", rng.standard_normal((1, 2, 27, 40))), ("b", rng.standard_normal((1, 2, 14, 19))),
                            ("c", rng.standard_normal((1, 2, 6, 11)))])
    boxes = [boxes_of_all_sizes(rng, 40, np.float64, (210, 300))]
    for shapes in ([(210, 300)], [(150, 300), (205, 100)], [(300, 310)]):
        compare(ops.MultiScaleRoIAlign(["a", "b", "c"], 3, 2), tvops.MultiScaleRoIAlign(["a", "b", "c"], 3, 2),
                features, boxes, shapes)


def test_non_consecutive_and_reversed_levels(rng):
    """Levels that skip a scale leave RoIs mapped to the missing level at zero; maps listed from coarse to fine
    give an empty clamp range (torch's clamp then yields the max), both as torchvision."""
    image_hw = (256, 256)
    features = OrderedDict([("p2", rng.standard_normal((1, 3, 64, 64))), ("p4", rng.standard_normal((1, 3, 16, 16)))])
    boxes = [np.concatenate([boxes_of_all_sizes(rng, 40, np.float64, image_hw), [[0, 0, 250, 250]]])]
    out = compare(ops.MultiScaleRoIAlign(["p2", "p4"], 2, 2), tvops.MultiScaleRoIAlign(["p2", "p4"], 2, 2),
                  features, boxes, [image_hw])
    assert np.all(out[-1] == 0)  # level 4 - 2 = 2 has no map
    reversed_features = OrderedDict(reversed(list(features.items())))
    compare(ops.MultiScaleRoIAlign(["p2", "p4"], 2, 2), tvops.MultiScaleRoIAlign(["p2", "p4"], 2, 2),
            reversed_features, boxes, [image_hw])


def test_degenerate_boxes(rng):
    """Zero-area boxes go to the finest level (log2(0) = -inf); inverted boxes with negative area get NaN levels and
    zero outputs; both as torchvision."""
    features = fpn_features(rng, np.float64, (128, 128))
    boxes = [np.array([[10, 10, 10, 10], [10, 10, 30, 10], [40, 40, 20, 60], [40, 40, 20, 20], [0, 0, 128, 128]],
                      np.float64)]
    out = compare(ops.MultiScaleRoIAlign(["0", "1", "2", "3"], 2, 2),
                  tvops.MultiScaleRoIAlign(["0", "1", "2", "3"], 2, 2), features, boxes, [(128, 128)])
    assert np.all(out[2] == 0)


def test_empty_boxes(rng):
    features = fpn_features(rng, np.float32, (64, 64))
    m = ops.MultiScaleRoIAlign(["0", "1"], 3, 2)
    out = m(features, [np.empty((0, 4), np.float32), np.empty((0, 4), np.float32)], [(64, 64)])
    assert out.shape == (0, 4, 3, 3) and out.dtype == np.float32


def test_repr():
    m = ops.MultiScaleRoIAlign(["0", "1"], 7, 2)
    assert repr(m) == repr(tvops.MultiScaleRoIAlign(["0", "1"], 7, 2))


class TestBadInput:
    SETUP = ("f = {'0': np.ones((1, 2, 16, 16)), '1': np.ones((1, 2, 8, 8))}\n"
             "b = [np.array([[0, 0, 4, 4.0]])]\n")

    def test_no_feature_map_selected(self, isolated):
        isolated.expect_error(self.SETUP + "ops.MultiScaleRoIAlign(['x'], 2, 2)(f, b, [(64, 64)])", ValueError,
                              "featmap_names")

    def test_image_shapes(self, isolated):
        isolated.expect_error(self.SETUP + "ops.MultiScaleRoIAlign(['0', '1'], 2, 2)(f, b, [])", ValueError,
                              "image_shapes")
        isolated.expect_error(self.SETUP + "ops.MultiScaleRoIAlign(['0', '1'], 2, 2)(f, b, [(0, 64)])", ValueError,
                              "image_shapes")
        isolated.expect_error(self.SETUP + "ops.MultiScaleRoIAlign(['0', '1'], 2, 2)(f, b, [(64, 64, 3)])",
                              ValueError, "image_shapes")
        isolated.expect_error(self.SETUP + "ops.MultiScaleRoIAlign(['0', '1'], 2, 2)(f, b, [(64.5, 64)])",
                              TypeError, "image_shapes")

    def test_levels_must_agree(self, isolated):
        isolated.expect_error("f = {'0': np.ones((1, 2, 16, 16)), '1': np.ones((1, 3, 8, 8))}\n"
                              "ops.MultiScaleRoIAlign(['0', '1'], 2, 2)(f, [np.ones((1, 4))], [(64, 64)])",
                              ValueError, "features[1]")
        isolated.expect_error("f = {'0': np.ones((1, 2, 16, 16)), '1': np.ones((2, 2, 8, 8))}\n"
                              "ops.MultiScaleRoIAlign(['0', '1'], 2, 2)(f, [np.ones((1, 4))], [(64, 64)])",
                              ValueError, "features[1]")
        isolated.expect_error("f = {'0': np.ones((1, 2, 0, 16)), '1': np.ones((1, 2, 8, 8))}\n"
                              "ops.MultiScaleRoIAlign(['0', '1'], 2, 2)(f, [np.ones((1, 4))], [(64, 64)])",
                              ValueError, "features[0]", "height 0")
        isolated.expect_error("f = {str(i): np.ones((1, 1, 4, 4)) for i in range(17)}\n"
                              "ops.MultiScaleRoIAlign(list(f), 2, 2)(f, [np.ones((1, 4))], [(64, 64)])",
                              ValueError, "features")

    def test_boxes(self, isolated):
        isolated.expect_error(self.SETUP + "ops.MultiScaleRoIAlign(['0', '1'], 2, 2)(f, [np.ones((1, 4)), "
                              "np.ones((1, 4))], [(64, 64)])", ValueError, "boxes", "batch index")
        isolated.expect_error(self.SETUP + "ops.MultiScaleRoIAlign(['0', '1'], 2, 2)(f, [np.array([[0, 0, np.nan, "
                              "4]])], [(64, 64)])", ValueError, "boxes", "non-finite")
        isolated.expect_error(self.SETUP + "ops.MultiScaleRoIAlign(['0', '1'], 2, 2)(f, np.ones((1, 4)), [(64, 64)])",
                              TypeError, "boxes")
        isolated.expect_error(self.SETUP + "ops.MultiScaleRoIAlign(['0', '1'], 2, -1)(f, [np.array([[0, 0, 1e9, "
                              "1e9]])], [(64, 64)])", ValueError, "boxes", "sampling_ratio", timeout=20)

    def test_sizes_and_canonical_scale(self, isolated):
        isolated.expect_error(self.SETUP + "ops.MultiScaleRoIAlign(['0', '1'], 0, 2)(f, b, [(64, 64)])", ValueError,
                              "output_size")
        isolated.expect_error(self.SETUP + "ops.MultiScaleRoIAlign(['0', '1'], 2, 2, canonical_scale=0)(f, b, "
                              "[(64, 64)])", ValueError, "canonical_scale")
        isolated.expect_error("ops.MultiScaleRoIAlign(['0'], 2, 2.5)", TypeError, "sampling_ratio")
        isolated.expect_error("ops.MultiScaleRoIAlign(['0'], 2, 2, 224)", TypeError)
