"""Parity of swiftrcnn.ops.nms / batched_nms with torchvision, soft_nms against a direct implementation of the
paper, and bad-input behaviour."""
import numpy as np
import pytest
import torch
import torchvision.ops as tvops

from swiftrcnn import ops
from utils import DTYPES, random_boxes, t


def distinct_scores(rng, n, dtype):
    """Scores without ties, so the visiting order (and the result) is fully determined."""
    return (rng.permutation(n) / max(n, 1)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 2, 10, 500, 3000])
@pytest.mark.parametrize("iou", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms(n, iou, dtype, rng):
    boxes = random_boxes(rng, n, dtype, size=200)
    scores = distinct_scores(rng, n, dtype)
    ours = ops.nms(boxes, scores, iou)
    assert ours.dtype == np.int64
    np.testing.assert_array_equal(ours, tvops.nms(t(boxes), t(scores), iou).numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_nms_edge_boxes(dtype, rng):
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [5, 5, 5, 5], [10, 10, 0, 0], [-5, -5, 4, 4],
                      [0, 0, 0, 0], [1e6, 1e6, 2e6, 2e6], [2, 2, 9, 9]], dtype)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2], dtype)
    for iou in [0.0, 0.1, 0.5, 0.99]:
        with np.errstate(all="ignore"):
            np.testing.assert_array_equal(ops.nms(boxes, scores, iou), tvops.nms(t(boxes), t(scores), iou).numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 5, 800, 2500])
@pytest.mark.parametrize("classes", [1, 3, 80])
def test_batched_nms(n, classes, dtype, rng):
    boxes = random_boxes(rng, n, dtype, size=200)
    scores = distinct_scores(rng, n, dtype)
    idxs = rng.integers(0, classes, n)
    ours = ops.batched_nms(boxes, scores, idxs.astype(np.int32), 0.5)
    np.testing.assert_array_equal(ours, tvops.batched_nms(t(boxes), t(scores), t(idxs), 0.5).numpy())


def reference_soft_nms(boxes, scores, iou_threshold, sigma, score_threshold, method):
    """Soft-NMS written straight from the paper's pseudo-code, in float64."""
    boxes = boxes.astype(np.float64)
    s = scores.astype(np.float64).copy()
    alive = [i for i in range(len(s)) if s[i] >= score_threshold]
    keep, kept = [], []
    while alive:
        m = max(alive, key=lambda i: (s[i], -i))
        keep.append(m)
        kept.append(s[m])
        alive.remove(m)
        for i in list(alive):
            iou = tvops.box_iou(torch.from_numpy(boxes[[m]]), torch.from_numpy(boxes[[i]])).item()
            if method == "linear":
                if iou > iou_threshold:
                    s[i] *= 1 - iou
            else:
                s[i] *= np.exp(-(iou * iou) / sigma)
            if s[i] < score_threshold:
                alive.remove(i)
    return np.array(keep, np.int64), np.array(kept)


@pytest.mark.parametrize("method", ["linear", "gaussian"])
@pytest.mark.parametrize("n", [0, 1, 40, 150])
def test_soft_nms(method, n, rng):
    boxes = random_boxes(rng, n, np.float64, size=80)
    scores = rng.uniform(0, 1, n)
    keep, kept = ops.soft_nms(boxes, scores, iou_threshold=0.3, sigma=0.5, score_threshold=0.05, method=method)
    rk, rs = reference_soft_nms(boxes, scores, 0.3, 0.5, 0.05, method)
    np.testing.assert_array_equal(keep, rk)
    np.testing.assert_allclose(kept, rs, rtol=1e-12)
    assert np.all(np.diff(kept) <= 0)


def test_soft_nms_float32(rng):
    boxes = random_boxes(rng, 60, np.float32, size=80)
    scores = rng.uniform(0, 1, 60).astype(np.float32)
    keep, kept = ops.soft_nms(boxes, scores, method="linear", iou_threshold=0.3)
    assert kept.dtype == np.float32 and keep.dtype == np.int64
    rk, rs = reference_soft_nms(boxes, scores, 0.3, 0.5, 0.001, "linear")
    np.testing.assert_array_equal(keep, rk)
    np.testing.assert_allclose(kept, rs, rtol=1e-5)


class TestBadInput:
    def test_nan_boxes_and_scores(self, isolated):
        isolated.expect_error("b = np.ones((3, 4)); b[1, 2] = np.nan; ops.nms(b, np.ones(3), 0.5)",
                              ValueError, "boxes", "NaN")
        isolated.expect_error("ops.nms(np.ones((3, 4)), np.array([1, np.nan, 2]), 0.5)", ValueError, "scores", "NaN")
        isolated.expect_error("ops.batched_nms(np.full((3, 4), np.nan), np.ones(3), [0, 1, 2], 0.5)",
                              ValueError, "boxes")
        isolated.expect_error("ops.soft_nms(np.full((3, 4), np.nan), np.ones(3))", ValueError, "boxes")

    def test_mismatched_lengths(self, isolated):
        isolated.expect_error("ops.nms(np.ones((3, 4)), np.ones(2), 0.5)", ValueError, "scores")
        isolated.expect_error("ops.batched_nms(np.ones((3, 4)), np.ones(3), [0, 1], 0.5)", ValueError, "idxs")

    def test_wrong_types(self, isolated):
        isolated.expect_error("ops.batched_nms(np.ones((3, 4)), np.ones(3), [0.5, 1, 2], 0.5)", TypeError, "idxs")
        isolated.expect_error("ops.nms(np.ones((3, 4)), np.ones(3), None)", TypeError, "iou_threshold")
        isolated.expect_error("ops.nms(np.ones((3, 4)), np.ones(3), float('nan'))", ValueError, "iou_threshold")
        isolated.expect_error("ops.soft_nms(np.ones((3, 4)), np.ones(3), method='hard')", ValueError, "method")
        isolated.expect_error("ops.soft_nms(np.ones((3, 4)), np.ones(3), sigma=0)", ValueError, "sigma")

    def test_infinite_boxes_do_not_crash(self, isolated):
        kind, msg = isolated.run("result = ops.nms(np.array([[0, 0, np.inf, np.inf], [0, 0, 1, 1]]), [1, 0.5], 0.5)")
        assert kind == "ok", msg
