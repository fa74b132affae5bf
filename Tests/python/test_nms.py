"""Parity of swiftrcnn.ops.nms / batched_nms with torchvision, soft_nms against a direct implementation of the
paper, and bad-input behaviour."""
import time

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


def adversarial_boxes(rng, kind, n, dtype):
    """Inputs that stress the grid index of large-input NMS: size mixes, clusters, nesting, one row."""
    if kind == "mixed_sizes":
        b = random_boxes(rng, n, np.float64, size=1000, min_wh=0.5, max_wh=3)
        big = random_boxes(rng, n // 10, np.float64, size=1000, min_wh=300, max_wh=900)
        b = np.concatenate([b, big])
    elif kind == "clusters":
        centres = rng.uniform(0, 500, (20, 2))
        c = centres[rng.integers(0, 20, n)] + rng.normal(0, 2, (n, 2))
        wh = rng.uniform(10, 14, (n, 2))
        b = np.concatenate([c - wh / 2, c + wh / 2], 1)
    elif kind == "nested":
        s = rng.uniform(1, 400, n)
        b = np.stack([500 - s, 500 - s * 0.9, 500 + s, 500 + s * 1.1], 1)
    elif kind == "row":
        x = rng.uniform(0, 5000, n)
        w = rng.uniform(5, 50, n)
        b = np.stack([x, np.zeros(n), x + w, np.full(n, 10.0)], 1)
    else:  # duplicates and degenerate boxes mixed in
        b = random_boxes(rng, n, np.float64, size=300)
        b[::7] = b[0]
        b[::11, 2] = b[::11, 0]
        b[::13, 3] = b[::13, 1] - 5
    return b.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["mixed_sizes", "clusters", "nested", "row", "degenerate"])
@pytest.mark.parametrize("iou", [0.0, 0.05, 0.3, 0.5, 0.5000001, 0.8, 0.99])
def test_nms_adversarial(kind, iou, dtype, rng):
    boxes = adversarial_boxes(rng, kind, 1500, dtype)
    scores = distinct_scores(rng, len(boxes), dtype)
    with np.errstate(all="ignore"):
        expected = tvops.nms(t(boxes), t(scores), iou).numpy()
    np.testing.assert_array_equal(ops.nms(boxes, scores, iou), expected)


def test_nms_large(rng):
    """20k boxes as in the benchmark: exact agreement with torchvision."""
    boxes = random_boxes(rng, 20000, np.float32, size=1000, min_wh=8, max_wh=200)
    scores = rng.uniform(0, 1, 20000).astype(np.float32)
    np.testing.assert_array_equal(ops.nms(boxes, scores, 0.5), tvops.nms(t(boxes), t(scores), 0.5).numpy())


THRESHOLDS = [1.5, 1.0, 1.0000001, float("inf"), float("nan"), 0.0, -0.5, -1e-9, float("-inf")]


def torch_batched_nms(boxes, scores, idxs, iou):
    """torchvision's batched_nms, except below 0, where its result depends on its strategy: up to 1000 boxes it
    shifts each category apart and runs one NMS, in which IoU 0 across categories exceeds the threshold; above, it
    runs NMS per category as documented. Then: per category (in decreasing score order, ties by index)."""
    if not iou < 0:
        return tvops.batched_nms(t(boxes), t(scores), t(idxs), iou).numpy()
    keep = []
    for c in np.unique(idxs):
        members = np.flatnonzero(idxs == c)
        keep += members[tvops.nms(t(boxes[members]), t(scores[members]), iou).numpy()].tolist()
    keep = np.array(keep, np.int64)
    return keep[np.lexsort((keep, -scores[keep]))]


@pytest.mark.parametrize("iou", THRESHOLDS)
def test_nms_any_threshold(isolated, iou):
    """Issue #9: a threshold above 1 crashed the grid path (64 boxes or more). Any threshold gives torchvision's
    result: 1 or more (and NaN) suppresses nothing, a negative one every box whose IoU with a kept box is a number."""
    setup = ("b = np.array([[i, 0, i + 10, 10] for i in range(64)] + [[0, 0, 0, 0]] * 3, np.float32); "
             "s = np.linspace(1, 0, 67, dtype=np.float32); c = np.arange(67) % 2; "
             f"t = float('{iou}')\n")
    kind, message = isolated.run(setup + "result = (ops.nms(b, s, t).tolist(), ops.batched_nms(b, s, c, t).tolist())")
    assert kind == "ok", message
    ns = {"np": np}
    exec(setup, ns)
    b, s, c = ns["b"], ns["s"], ns["c"]
    assert eval(message) == (tvops.nms(t(b), t(s), iou).tolist(), torch_batched_nms(b, s, c, iou).tolist())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("iou", THRESHOLDS)
def test_nms_any_threshold_random(iou, dtype, rng):
    boxes = adversarial_boxes(rng, "degenerate", 700, dtype)
    scores = distinct_scores(rng, len(boxes), dtype)
    idxs = rng.integers(0, 3, len(boxes))
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(ops.nms(boxes, scores, iou), tvops.nms(t(boxes), t(scores), iou).numpy())
        np.testing.assert_array_equal(ops.batched_nms(boxes, scores, idxs, iou),
                                      torch_batched_nms(boxes, scores, idxs, iou))


OUTLIERS = {
    "huge": [[1e37, 1e37, 1e38, 1e38]],
    "far": [[1e38, 1e38, 1.000001e38, 1.000001e38]],
    "scattered": [[10.0 ** e, 10.0 ** e, 2 * 10.0 ** e, 2 * 10.0 ** e] for e in range(10, 38, 2)],
}


@pytest.mark.parametrize("iou", [0.0, 0.5])
@pytest.mark.parametrize("outlier", list(OUTLIERS))
def test_nms_outliers_stay_fast(rng, outlier, iou):
    """Issue #9: one box with coordinates near 1e38 squeezed all other boxes into one cell of the NMS grid (100k
    boxes: 8 s instead of 0.04 s). The outliers overlap nothing, so the result is the rest's with them kept."""
    bulk = random_boxes(rng, 100_000, np.float32, size=1000, min_wh=5, max_wh=50)
    far = np.array(OUTLIERS[outlier], np.float32)
    boxes = np.concatenate([bulk, far])
    scores = rng.permutation(len(boxes)).astype(np.float32)
    idxs = np.arange(len(boxes)) % 3
    start = time.perf_counter()
    ours = ops.nms(boxes, scores, iou)
    ours_batched = ops.batched_nms(boxes, scores, idxs, iou)
    elapsed = time.perf_counter() - start
    for keep, kept_bulk in [(ours, ops.nms(bulk, scores[:-len(far)], iou)),
                            (ours_batched, ops.batched_nms(bulk, scores[:-len(far)], idxs[:-len(far)], iou))]:
        expected = np.concatenate([kept_bulk, np.arange(len(bulk), len(boxes))])
        np.testing.assert_array_equal(keep, expected[np.argsort(-scores[expected], kind="stable")])
    assert elapsed < 2.0, f"{elapsed:.2f} s"
    # torchvision agrees on a part of the input (all of it takes it half a minute).
    part = np.concatenate([bulk[:3000], far])
    part_scores = np.concatenate([scores[:3000], scores[-len(far):]])
    np.testing.assert_array_equal(ops.nms(part, part_scores, iou),
                                  tvops.nms(t(part), t(part_scores), iou).numpy())


def test_nms_tied_scores_keep_lower_index_first():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30], [20, 20, 30, 30]], np.float32)
    np.testing.assert_array_equal(ops.nms(boxes, np.ones(4, np.float32), 0.5), [0, 2])


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


@pytest.mark.parametrize("boxes, others", [
    ((0, 4), (np.zeros(0), np.zeros(0, np.int64), 0.5)),
    ((0, 4), (np.zeros(5), np.zeros(3, np.int64), 0.5)),
    ((0, 4), (None, None, None)),
    ((0, 4), (np.zeros((0, 3)), np.zeros(0), "x")),
    ((0,), (np.zeros(0), np.zeros(0, np.int64), float("nan"))),
    ((5, 0), (np.zeros(3), [1, 2], -1.0)),
    ((0, 5), (np.zeros(0, np.float64), np.zeros(0, np.int64), 0.5)),
])
def test_batched_nms_empty_boxes(boxes, others):
    """Issue #9: torchvision returns an empty result for boxes without elements, whatever the other arguments (its
    own tests call it so)."""
    def torch_arg(a):
        return t(a) if isinstance(a, np.ndarray) else a
    expected = tvops.batched_nms(torch.zeros(boxes), *map(torch_arg, others))
    ours = ops.batched_nms(np.zeros(boxes, np.float32), *others)
    assert ours.dtype == np.int64 and ours.shape == (0,)
    assert expected.dtype == torch.int64 and tuple(expected.shape) == (0,)


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
        isolated.expect_error("ops.soft_nms(np.ones((3, 4)), np.ones(3), float('nan'))", ValueError, "iou_threshold")
        isolated.expect_error("ops.soft_nms(np.ones((3, 4)), np.ones(3), method='hard')", ValueError, "method")
        isolated.expect_error("ops.soft_nms(np.ones((3, 4)), np.ones(3), sigma=0)", ValueError, "sigma")

    def test_infinite_boxes_do_not_crash(self, isolated):
        kind, msg = isolated.run("result = ops.nms(np.array([[0, 0, np.inf, np.inf], [0, 0, 1, 1]]), [1, 0.5], 0.5)")
        assert kind == "ok", msg
