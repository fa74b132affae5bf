"""swiftrcnn.ops.legacy (py-faster-rcnn conventions) against the classic anchor table and small NumPy reference
implementations written here from the description of the original code ("+1" widths), and bad-input behaviour."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from swiftrcnn.ops import legacy
from utils import DTYPES, random_boxes, tol

CLASSIC = [[-84, -40, 99, 55], [-176, -88, 191, 103], [-360, -184, 375, 199],
           [-56, -56, 71, 71], [-120, -120, 135, 135], [-248, -248, 263, 263],
           [-36, -80, 51, 95], [-80, -168, 95, 183], [-168, -344, 183, 359]]


# ---- references -------------------------------------------------------------------------------------------------

def ref_generate_anchors(base_size, ratios, scales):
    """Base box [0, 0, base - 1, base - 1]; per ratio a box of the same area (rounded width, then height), per scale
    that box enlarged, all centred on the base box's centre ((base - 1) / 2)."""
    centre = (base_size - 1) / 2.0
    rows = []
    for r in ratios:
        w = np.round(np.sqrt(base_size * base_size / r))
        h = np.round(w * r)
        for s in scales:
            half_w, half_h = (w * s - 1) / 2.0, (h * s - 1) / 2.0
            rows.append([centre - half_w, centre - half_h, centre + half_w, centre + half_h])
    return np.array(rows, np.float64).reshape(-1, 4)


def whc(b):
    """Widths, heights and centres with inclusive pixel ends."""
    w = b[:, 2] - b[:, 0] + 1
    h = b[:, 3] - b[:, 1] + 1
    return w, h, b[:, 0] + 0.5 * w, b[:, 1] + 0.5 * h


def ref_bbox_transform(ex, gt):
    ew, eh, ex_cx, ex_cy = whc(ex)
    gw, gh, gx, gy = whc(gt)
    return np.stack([(gx - ex_cx) / ew, (gy - ex_cy) / eh, np.log(gw / ew), np.log(gh / eh)], axis=1)


def ref_bbox_transform_inv(boxes, deltas):
    w, h, cx, cy = (v[:, None] for v in whc(boxes.astype(deltas.dtype)))
    d = deltas.reshape(len(deltas), -1, 4)
    pcx, pcy = d[..., 0] * w + cx, d[..., 1] * h + cy
    pw, ph = np.exp(d[..., 2]) * w, np.exp(d[..., 3]) * h
    out = np.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw - 1, pcy + 0.5 * ph - 1], axis=2)
    return out.reshape(deltas.shape)


def ref_clip_boxes(boxes, im_shape):
    out = boxes.copy()
    out[:, 0::2] = np.maximum(np.minimum(out[:, 0::2], im_shape[1] - 1), 0)
    out[:, 1::2] = np.maximum(np.minimum(out[:, 1::2], im_shape[0] - 1), 0)
    return out


def ref_nms(dets, thresh):
    """Visit by score (descending, ties lower index first); drop the remaining boxes whose "+1" overlap with the
    visited one is not <= thresh."""
    x1, y1, x2, y2, s = (dets[:, i] for i in range(5))
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-s, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = iw * ih
        ovr = inter / (areas[i] + areas[rest] - inter)
        order = rest[ovr <= thresh]
    return np.array(keep, np.int64)


def random_dets(rng, n, dtype, size=200):
    scores = rng.permutation(n) / max(n, 1)
    return np.concatenate([random_boxes(rng, n, np.float64, size=size), scores[:, None]], axis=1).astype(dtype)


# ---- generate_anchors -------------------------------------------------------------------------------------------

def test_classic_table():
    anchors = legacy.generate_anchors()
    assert anchors.dtype == np.float64 and anchors.shape == (9, 4)
    np.testing.assert_array_equal(anchors, np.array(CLASSIC, np.float64))
    np.testing.assert_array_equal(legacy.generate_anchors(16, [0.5, 1, 2], 2 ** np.arange(3, 6)), anchors)


@pytest.mark.parametrize("base_size, ratios, scales", [
    (16, (0.5, 1, 2), (8, 16, 32)),
    (8, (0.25, 0.5, 1, 2, 4), (2, 4)),
    (7.5, (1 / 3, 3.0), (1.5, 10)),
    (32, (0.7,), (1,)),
    (16, (), (8,)),
    (16, (1,), ()),
])
def test_generate_anchors(base_size, ratios, scales):
    ours = legacy.generate_anchors(base_size, ratios, scales)
    assert ours.shape == (len(ratios) * len(scales), 4)
    np.testing.assert_allclose(ours, ref_generate_anchors(base_size, ratios, scales), rtol=1e-12, atol=1e-12)


# ---- bbox_transform, bbox_transform_inv ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_bbox_transform(dtype, rng):
    ex, gt = random_boxes(rng, 200, dtype, min_wh=0), random_boxes(rng, 200, dtype, min_wh=0)
    ours = legacy.bbox_transform(ex, gt)
    assert ours.dtype == np.dtype(dtype)
    np.testing.assert_allclose(ours, ref_bbox_transform(ex, gt), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 3])
def test_bbox_transform_inv(k, dtype, rng):
    boxes = random_boxes(rng, 150, np.float64)
    deltas = (rng.standard_normal((150, 4 * k)) * 0.5).astype(dtype)
    ours = legacy.bbox_transform_inv(boxes, deltas)  # float64 boxes are converted to the deltas' dtype
    assert ours.dtype == np.dtype(dtype) and ours.shape == deltas.shape
    np.testing.assert_allclose(ours, ref_bbox_transform_inv(boxes, deltas), **tol(dtype))


def test_bbox_transform_inv_unclamped_and_empty():
    boxes = np.array([[0, 0, 9, 9]], np.float64)
    deltas = np.array([[0, 0, 800, np.nan]], np.float64)
    with np.errstate(all="ignore"):
        out = legacy.bbox_transform_inv(boxes, deltas)
    assert out[0, 0] == -np.inf and out[0, 2] == np.inf and np.isnan(out[0, 1]) and np.isnan(out[0, 3])
    assert legacy.bbox_transform_inv(np.zeros((0, 4)), np.zeros((0, 8), np.float32)).shape == (0, 8)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-500, 500), st.floats(-500, 500), st.floats(0, 400), st.floats(0, 400),
                          st.floats(-500, 500), st.floats(-500, 500), st.floats(0, 400), st.floats(0, 400)),
                min_size=1, max_size=30))
def test_transform_round_trip(rows):
    """bbox_transform_inv(ex, bbox_transform(ex, gt)) == gt: the "- 1" of the inverse undoes the "+ 1" widths."""
    a = np.array(rows, np.float64)
    ex = np.concatenate([a[:, 0:2], a[:, 0:2] + a[:, 2:4]], axis=1)
    gt = np.concatenate([a[:, 4:6], a[:, 4:6] + a[:, 6:8]], axis=1)
    np.testing.assert_allclose(legacy.bbox_transform_inv(ex, legacy.bbox_transform(ex, gt)), gt, atol=1e-8)


# ---- clip_boxes ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("im_shape", [(90, 120, 3), (50.0, 64.0), np.array([33.0, 47.0, 1.6])])
def test_clip_boxes(im_shape, dtype, rng):
    boxes = (random_boxes(rng, 60, np.float64, size=200) - 40).reshape(20, 12).astype(dtype)
    boxes[3, 5] = np.nan
    ours = legacy.clip_boxes(boxes, im_shape)
    assert ours.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(ours, ref_clip_boxes(boxes, (float(im_shape[0]), float(im_shape[1]))))
    assert np.isnan(ours[3, 5])


# ---- nms ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 60, 800])
@pytest.mark.parametrize("thresh", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms(n, thresh, dtype, rng):
    dets = random_dets(rng, n, dtype)
    ours = legacy.nms(dets, thresh)
    assert ours.dtype == np.int64
    np.testing.assert_array_equal(ours, ref_nms(dets, thresh))


def test_nms_plus_one_overlap():
    # A = [0, 0, 9, 9] and B = [5, 0, 14, 9] are 10 x 10 pixels sharing 5 x 10: overlap 50 / 150 = 1/3 (without the
    # "+1" it would be 36 / 126 = 0.286). C = [9, 0, 18, 9] shares one pixel column with A (10 / 190 = 0.053) and six
    # with B (60 / 140 = 0.43).
    dets = np.array([[0, 0, 9, 9, 0.9], [5, 0, 14, 9, 0.8], [9, 0, 18, 9, 0.7]], np.float64)
    np.testing.assert_array_equal(legacy.nms(dets, 1 / 3), [0, 1])  # equal to the threshold: kept
    np.testing.assert_array_equal(legacy.nms(dets, 0.3), [0, 2])
    np.testing.assert_array_equal(legacy.nms(dets, 0.06), [0, 2])
    np.testing.assert_array_equal(legacy.nms(dets, 0.05), [0])


def test_nms_ties_visit_lower_index_first():
    dets = np.array([[0, 0, 9, 9, 0.5], [20, 20, 29, 29, 0.9], [0, 0, 9, 9, 0.5], [1, 1, 9, 9, 0.5]], np.float32)
    np.testing.assert_array_equal(legacy.nms(dets, 0.5), [1, 0])


def test_nms_infinite_boxes_are_suppressed_by_nan_overlap():
    dets = np.array([[0, 0, np.inf, np.inf, 0.9], [0, 0, 5, 5, 0.8], [-np.inf, 0, 1, 1, 0.7], [40, 40, 50, 50, 0.6]])
    with np.errstate(all="ignore"):
        expected = ref_nms(dets, 0.5)
    np.testing.assert_array_equal(legacy.nms(dets, 0.5), expected)


# ---- bad input ----------------------------------------------------------------------------------------------------

class TestBadInput:
    def test_generate_anchors(self, isolated):
        for bad in ["0", "-16", "float('nan')", "float('inf')"]:
            isolated.expect_error(f"ops.legacy.generate_anchors({bad})", ValueError, "base_size")
            isolated.expect_error(f"ops.legacy.generate_anchors(16, [0.5, {bad}])", ValueError, "ratios")
            isolated.expect_error(f"ops.legacy.generate_anchors(16, [1], [8, {bad}])", ValueError, "scales")
        isolated.expect_error("ops.legacy.generate_anchors(16, 0.5)", ValueError, "ratios")
        isolated.expect_error("ops.legacy.generate_anchors(16, [[0.5, 1]])", ValueError, "ratios")
        isolated.expect_error("ops.legacy.generate_anchors('16')", TypeError, "base_size")

    def test_transforms(self, isolated):
        isolated.expect_error("ops.legacy.bbox_transform(np.zeros((3, 4)), np.zeros((2, 4)))", ValueError, "gt_rois")
        isolated.expect_error("ops.legacy.bbox_transform(np.zeros((3, 5)), np.zeros((3, 5)))", ValueError, "ex_rois")
        isolated.expect_error("ops.legacy.bbox_transform_inv(np.zeros((3, 4)), np.zeros((3, 6)))", ValueError,
                              "deltas", "(3, 6)")
        isolated.expect_error("ops.legacy.bbox_transform_inv(np.zeros((2, 4)), np.zeros((3, 8)))", ValueError,
                              "boxes")
        isolated.expect_error("ops.legacy.bbox_transform_inv(np.zeros((3, 4)), np.zeros(12))", ValueError, "deltas")

    def test_clip_boxes(self, isolated):
        for bad in ["(0, 10)", "(10, -1)", "(float('nan'), 10)", "(10, float('inf'))"]:
            isolated.expect_error(f"ops.legacy.clip_boxes(np.zeros((2, 4)), {bad})", ValueError, "im_shape")
        isolated.expect_error("ops.legacy.clip_boxes(np.zeros((2, 4)), 10)", ValueError, "im_shape")
        isolated.expect_error("ops.legacy.clip_boxes(np.zeros((2, 4)), (10,))", ValueError, "im_shape")
        isolated.expect_error("ops.legacy.clip_boxes(np.zeros((2, 5)), (10, 10))", ValueError, "boxes")

    def test_nms(self, isolated):
        isolated.expect_error("d = np.ones((3, 5)); d[1, 4] = np.nan; ops.legacy.nms(d, 0.5)", ValueError, "dets",
                              "NaN")
        isolated.expect_error("d = np.ones((3, 5)); d[2, 0] = np.nan; ops.legacy.nms(d, 0.5)", ValueError, "dets")
        isolated.expect_error("ops.legacy.nms(np.ones((3, 4)), 0.5)", ValueError, "dets", "(3, 4)")
        isolated.expect_error("ops.legacy.nms(np.ones((3, 5)), float('nan'))", ValueError, "thresh")
        isolated.expect_error("ops.legacy.nms(np.ones((3, 5)), None)", TypeError, "thresh")
        isolated.expect_error("ops.legacy.nms(np.ones((3, 5), complex), 0.5)", TypeError, "dets")
