"""Parity of swiftrcnn.ops.Matcher with torchvision.models.detection._utils.Matcher, and bad-input behaviour."""
import numpy as np
import pytest
import torchvision.ops as tvops
from hypothesis import given, settings, strategies as st
from torchvision.models.detection._utils import Matcher as TVMatcher

from swiftrcnn import ops
from utils import DTYPES, random_boxes, t

THRESHOLDS = [(0.7, 0.3), (0.5, 0.5), (0.5, 0.4), (0.0, 0.0), (1.0, 0.0)]


def check(quality, high, low, allow):
    ours = ops.Matcher(high, low, allow)(quality)
    theirs = TVMatcher(high, low, allow)(t(quality)).numpy()
    assert ours.dtype == np.int64 and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("allow", [False, True])
@pytest.mark.parametrize("high,low", THRESHOLDS)
@pytest.mark.parametrize("m,n", [(1, 1), (1, 50), (7, 1), (13, 300), (64, 2000)])
def test_random_quality(m, n, high, low, allow, dtype, rng):
    check(rng.uniform(0, 1, (m, n)).astype(dtype), high, low, allow)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("allow", [False, True])
@pytest.mark.parametrize("high,low", THRESHOLDS)
def test_ties(high, low, allow, dtype, rng):
    # Few distinct values: ties for the best ground truth (first wins) and for each gt's best prediction (all
    # restored), values exactly at the thresholds, whole zero rows and columns.
    q = (rng.integers(0, 5, (9, 400)) / 4).astype(dtype)
    q[2] = 0
    q[:, 7] = 0
    check(q, high, low, allow)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("allow", [False, True])
def test_iou_matrix(allow, dtype, rng):
    gt, proposals = random_boxes(rng, 12, dtype, size=300, max_wh=120), random_boxes(rng, 1500, dtype, size=300)
    iou = tvops.box_iou(t(gt), t(proposals)).numpy()
    check(iou, 0.7, 0.3, allow)
    check(iou, 0.5, 0.5, allow)


def test_thresholds_compared_in_float32():
    # float32(0.7) < 0.7 in float64, but torch compares in the tensor's type, where it equals the threshold.
    q = np.array([[np.float32(0.7), np.float32(0.3), np.float32(0.29999998)]], np.float32)
    check(q, 0.7, 0.3, False)
    assert ops.Matcher(0.7, 0.3)(q).tolist() == [0, -2, -1]
    check(q.astype(np.float64), 0.7, 0.3, False)


@pytest.mark.parametrize("allow", [False, True])
def test_infinite_values(allow):
    q = np.array([[-np.inf, 0.2, np.inf, -np.inf], [-np.inf, 0.9, 0.1, -np.inf], [-np.inf, -np.inf, -np.inf, 0.5]])
    check(q, 0.7, 0.3, allow)
    check(q, np.inf, -np.inf, allow)


def test_integer_matrix_and_constants(rng):
    q = rng.integers(0, 3, (4, 30))
    ours = ops.Matcher(2, 1, True)(q)
    np.testing.assert_array_equal(ours, TVMatcher(2, 1, True)(t(q).float()).numpy())
    assert ops.Matcher.BELOW_LOW_THRESHOLD == TVMatcher.BELOW_LOW_THRESHOLD == -1
    assert ops.Matcher.BETWEEN_THRESHOLDS == TVMatcher.BETWEEN_THRESHOLDS == -2
    m = ops.Matcher(0.6, 0.4, allow_low_quality_matches=True)
    assert (m.high_threshold, m.low_threshold, m.allow_low_quality_matches) == (0.6, 0.4, True)


def test_threads_agree(rng):
    import swiftrcnn
    q = (rng.integers(0, 7, (20, 5000)) / 6).astype(np.float32)
    before = swiftrcnn.get_num_threads()
    try:
        swiftrcnn.set_num_threads(1)
        one = ops.Matcher(0.6, 0.3, True)(q)
        swiftrcnn.set_num_threads(2)
        two = ops.Matcher(0.6, 0.3, True)(q)
    finally:
        swiftrcnn.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


@settings(max_examples=150, deadline=None)
@given(m=st.integers(1, 6), n=st.integers(1, 12), levels=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
       high=st.sampled_from([0.0, 0.25, 0.5, 1.0]), gap=st.sampled_from([0.0, 0.25, 0.5]), allow=st.booleans())
def test_property_matches_torchvision(m, n, levels, seed, high, gap, allow):
    q = (np.random.default_rng(seed).integers(0, levels + 1, (m, n)) / levels).astype(np.float32)
    check(q, high, high - gap, allow)


class TestBadInput:
    def test_empty_matrix(self, isolated):
        isolated.expect_error("ops.Matcher(0.7, 0.3)(np.zeros((0, 5)))", ValueError, "match_quality_matrix",
                              "No ground-truth boxes")
        isolated.expect_error("ops.Matcher(0.7, 0.3)(np.zeros((0, 0)))", ValueError, "No ground-truth boxes")
        isolated.expect_error("ops.Matcher(0.7, 0.3)(np.zeros((3, 0)))", ValueError, "match_quality_matrix",
                              "No proposal boxes")

    def test_nan(self, isolated):
        isolated.expect_error("q = np.ones((3, 4)); q[1, 2] = np.nan; ops.Matcher(0.7, 0.3)(q)", ValueError,
                              "match_quality_matrix", "NaN")

    def test_thresholds(self, isolated):
        isolated.expect_error("ops.Matcher(0.3, 0.7)", ValueError, "low_threshold should be <= high_threshold")
        isolated.expect_error("ops.Matcher(float('nan'), 0.3)", ValueError, "low_threshold")
        isolated.expect_error("ops.Matcher(None, 0.3)", TypeError, "high_threshold")
        isolated.expect_error("ops.Matcher(0.7, '0.3')", TypeError, "low_threshold")

    def test_shape_and_type(self, isolated):
        isolated.expect_error("ops.Matcher(0.7, 0.3)(np.ones(4))", ValueError, "match_quality_matrix", "(M, N)")
        isolated.expect_error("ops.Matcher(0.7, 0.3)(np.ones((2, 3, 4)))", ValueError, "match_quality_matrix")
        isolated.expect_error("ops.Matcher(0.7, 0.3)(np.array([['a']]))", TypeError, "match_quality_matrix")
