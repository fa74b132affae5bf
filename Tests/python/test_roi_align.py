"""Parity of swiftrcnn.ops.roi_align and roi_align_backward with torchvision.ops.roi_align (forward, and backward
through torch autograd), edge cases, and bad-input behaviour."""
import numpy as np
import pytest
import torchvision.ops as tvops
from hypothesis import given, settings, strategies as st

from swiftrcnn import ops
from utils import DTYPES, assert_close, t

SAMPLING_RATIOS = [-1, 0, 1, 2, 3]


def random_rois(rng, k, n, dtype, size=60.0, allow_inverted=True):
    """(k, 5) RoIs over an image of about `size` pixels: some partly or fully outside, some zero-size, and (when
    allowed) some inverted (x2 < x1 or y2 < y1)."""
    xy = rng.uniform(-0.3 * size, 1.1 * size, (k, 2))
    wh = rng.uniform(-0.2 * size if allow_inverted else 0.0, 0.6 * size, (k, 2))
    rois = np.concatenate([rng.integers(0, n, (k, 1)), xy, xy + wh], axis=1)
    rois[: k // 8, 3:] = rois[: k // 8, 1:3]  # zero width and height
    rois[k // 8: k // 4, 3] = rois[k // 8: k // 4, 1]  # zero width only
    return rois.astype(dtype)


def torch_forward_backward(x, rois, output_size, scale, sr, aligned, grad):
    tx = t(x).requires_grad_()
    y = tvops.roi_align(tx, t(rois), output_size, scale, sr, aligned)
    y.backward(t(grad))
    return y.detach(), tx.grad


def check_parity(x, rois, output_size, scale, sr, aligned, rng):
    ours = ops.roi_align(x, rois, output_size, scale, sr, aligned)
    grad = rng.standard_normal(ours.shape).astype(x.dtype)
    ty, tgrad = torch_forward_backward(x, rois, output_size, scale, sr, aligned, grad)
    assert_close(ours, ty)
    assert_close(ops.roi_align_backward(grad, rois, x.shape, scale, sr, aligned), tgrad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", SAMPLING_RATIOS)
@pytest.mark.parametrize("scale", [1.0, 0.5, 0.25])
def test_parity_random(dtype, aligned, sampling_ratio, scale, rng):
    x = rng.standard_normal((2, 3, 13, 17)).astype(dtype)
    # torchvision fails on inverted boxes with aligned=True and adaptive sampling (negative grid); see
    # test_aligned_inverted_adaptive for ours.
    inverted_ok = not (aligned and sampling_ratio <= 0)
    rois = random_rois(rng, 60, 2, dtype, size=17 / scale, allow_inverted=inverted_ok)
    check_parity(x, rois, (3, 4), scale, sampling_ratio, aligned, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output_size", [1, 2, 7, (5, 3), (1, 6)])
def test_output_sizes(dtype, output_size, rng):
    x = rng.standard_normal((1, 4, 20, 16)).astype(dtype)
    rois = random_rois(rng, 25, 1, dtype, size=20)
    for sr in [-1, 2]:
        check_parity(x, rois, output_size, 1.0, sr, False, rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_boxes_on_map_borders(dtype, rng):
    """Samples exactly at -1, 0, H - 1 and H (the clamping and cut-off boundaries) and beyond."""
    h, w = 6, 8
    x = rng.standard_normal((1, 2, h, w)).astype(dtype)
    rois = np.array([[0, -1, -1, w, h], [0, -2, -2, w + 1, h + 1], [0, 0, 0, w - 1, h - 1], [0, w - 1, h - 1, w, h],
                     [0, -1, -1, 0, 0], [0, w, h, w + 2, h + 2], [0, -5, -5, -1.5, -1.5], [0, 2.5, 3.5, 2.5, 3.5],
                     [0, 100, 100, 200, 200], [0, -0.5, 2, w - 0.5, 2.0]], dtype)
    for aligned in [False, True]:
        for sr in SAMPLING_RATIOS:
            check_parity(x, rois, (3, 2), 1.0, sr, aligned, rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_list_of_boxes(dtype, rng):
    x = rng.standard_normal((3, 2, 10, 12)).astype(dtype)
    per_image = [random_rois(rng, k, 1, dtype, size=12)[:, 1:] for k in (4, 0, 5)]
    ours = ops.roi_align(x, per_image, 2, 1.0, 2)
    theirs = tvops.roi_align(t(x), [t(b) for b in per_image], 2, 1.0, 2)
    assert_close(ours, theirs)
    grad = rng.standard_normal(ours.shape).astype(dtype)
    tx = t(x).requires_grad_()
    tvops.roi_align(tx, [t(b) for b in per_image], 2, 1.0, 2).backward(t(grad))
    assert_close(ops.roi_align_backward(grad, per_image, x.shape, 1.0, 2), tx.grad)


def test_boxes_converted_to_input_dtype(rng):
    x = rng.standard_normal((1, 2, 8, 8)).astype(np.float32)
    rois = random_rois(rng, 6, 1, np.float64, size=8, allow_inverted=False)
    ours = ops.roi_align(x, rois, 2)
    assert ours.dtype == np.float32
    assert_close(ours, tvops.roi_align(t(x), t(rois.astype(np.float32)), 2))
    # Integer inputs become float32.
    assert ops.roi_align(np.ones((1, 1, 4, 4), np.int32), [[0, 0, 0, 2, 2]], 1).dtype == np.float32


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty(dtype, rng):
    x = rng.standard_normal((2, 3, 5, 5)).astype(dtype)
    out = ops.roi_align(x, np.empty((0, 5), dtype), (2, 3))
    assert out.shape == (0, 3, 2, 3) and out.dtype == dtype
    grad = ops.roi_align_backward(np.empty((0, 3, 2, 3), dtype), np.empty((0, 5), dtype), (2, 3, 5, 5))
    np.testing.assert_array_equal(grad, np.zeros((2, 3, 5, 5), dtype))
    assert ops.roi_align(x, [], 2).shape == (0, 3, 2, 2)
    assert ops.roi_align(np.empty((0, 3, 5, 5), dtype), np.empty((0, 5)), 2).shape == (0, 3, 2, 2)
    assert ops.roi_align(np.empty((1, 0, 5, 5), dtype), [[0, 0, 0, 1, 1]], 2).shape == (1, 0, 2, 2)


def test_map_without_rows_gives_zeros():
    """torchvision reads out of bounds (segfaults) on an H = 0 map; ours takes no samples."""
    out = ops.roi_align(np.ones((1, 2, 0, 4)), [[0, 0, 0, 3, 3]], 2)
    np.testing.assert_array_equal(out, np.zeros((1, 2, 2, 2)))
    grad = ops.roi_align_backward(np.ones((1, 2, 2, 2)), [[0, 0, 0, 3, 3]], (1, 2, 4, 0))
    assert grad.shape == (1, 2, 4, 0)


def test_aligned_inverted_adaptive():
    """An inverted box with aligned=True and adaptive sampling has a non-positive grid, hence no samples: ours
    gives zeros (torchvision raises for some of these and returns zeros for others)."""
    x = np.arange(2 * 6 * 6, dtype=np.float64).reshape(1, 2, 6, 6)
    rois = np.array([[0, 4, 4, 1, 1], [0, 4, 1, 1, 4], [0, 1, 4, 4, 1]], np.float64)
    np.testing.assert_array_equal(ops.roi_align(x, rois, 2, aligned=True), np.zeros((3, 2, 2, 2)))
    both = rois[:1]  # both sides negative: torchvision does not fail here
    assert_close(ops.roi_align(x, both, 2, aligned=True), tvops.roi_align(t(x), t(both), 2, aligned=True))
    grad = ops.roi_align_backward(np.ones((3, 2, 2, 2)), rois, x.shape, aligned=True)
    np.testing.assert_array_equal(grad, np.zeros_like(x))


def test_hand_checked_values():
    """A 1 x 1 bin with one sample at the centre of [0, 2] x [0, 2] interpolates pixels (1, 1)...; aligned shifts
    the box by half a pixel."""
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    # Sample at (1, 1): value x[1, 1] = 5.
    assert ops.roi_align(x, [[0, 0, 0, 2, 2]], 1, sampling_ratio=1)[0, 0, 0, 0] == 5.0
    # aligned: box [0.5, 2.5] - 0.5 -> [0, 2], sample at (1, 1) again.
    assert ops.roi_align(x, [[0, 0.5, 0.5, 2.5, 2.5]], 1, sampling_ratio=1, aligned=True)[0, 0, 0, 0] == 5.0
    # Sample at (1.5, 0.5): rows 1 and 2, cols 0 and 1, each weight 1/4 -> (4 + 5 + 8 + 9) / 4.
    assert ops.roi_align(x, [[0, 0, 1, 1, 2]], 1, sampling_ratio=1)[0, 0, 0, 0] == 6.5


def test_batch_index_selects_image(rng):
    x = rng.standard_normal((3, 2, 6, 6))
    rois = np.array([[2, 0, 0, 5, 5], [0, 0, 0, 5, 5]], np.float64)
    out = ops.roi_align(x, rois, 2, sampling_ratio=2)
    np.testing.assert_array_equal(out[0], ops.roi_align(x[2:], [[0, 0, 0, 5, 5]], 2, sampling_ratio=2)[0])
    np.testing.assert_array_equal(out[1], ops.roi_align(x[:1], [[0, 0, 0, 5, 5]], 2, sampling_ratio=2)[0])


def test_many_rois_several_threads(rng):
    """Enough RoIs and channels that every thread gets work; the split must not change results."""
    import swiftrcnn
    x = rng.standard_normal((2, 16, 30, 40)).astype(np.float32)
    rois = random_rois(rng, 400, 2, np.float32, size=160, allow_inverted=False)
    results = []
    before = swiftrcnn.get_num_threads()
    try:
        for threads in [1, 3]:
            swiftrcnn.set_num_threads(threads)
            results.append((ops.roi_align(x, rois, 7, 0.25, -1),
                            ops.roi_align_backward(np.ones((400, 16, 7, 7), np.float32), rois, x.shape, 0.25, -1)))
    finally:
        swiftrcnn.set_num_threads(before)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    check_parity(x, rois, 7, 0.25, -1, False, rng)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), *[st.floats(-12, 24, allow_nan=False, width=32)] * 4),
                min_size=1, max_size=8),
       st.sampled_from(SAMPLING_RATIOS), st.booleans(), st.sampled_from([1.0, 0.5, 2.0]))
def test_property_matches_torchvision(rows, sampling_ratio, aligned, scale):
    rois = np.array(rows, np.float64)
    if aligned and sampling_ratio <= 0:
        rois[:, 3:] = np.maximum(rois[:, 3:], rois[:, 1:3])  # see test_aligned_inverted_adaptive
    x = np.random.default_rng(len(rows)).standard_normal((2, 2, 9, 11))
    check_parity(x, rois, (2, 3), scale, sampling_ratio, aligned, np.random.default_rng(0))


class TestBadInput:
    def test_batch_index(self, isolated):
        isolated.expect_error("ops.roi_align(np.ones((2, 1, 4, 4)), [[2, 0, 0, 1, 1]], 2)", ValueError,
                              "boxes", "batch index", "[0, 2)")
        isolated.expect_error("ops.roi_align(np.ones((2, 1, 4, 4)), [[-1, 0, 0, 1, 1]], 2)", ValueError, "boxes")
        isolated.expect_error("ops.roi_align(np.ones((2, 1, 4, 4)), [[0.5, 0, 0, 1, 1]], 2)", ValueError,
                              "boxes", "integer")
        isolated.expect_error("ops.roi_align(np.ones((2, 1, 4, 4)), [[np.nan, 0, 0, 1, 1]], 2)", ValueError, "boxes")
        isolated.expect_error("ops.roi_align_backward(np.ones((1, 1, 2, 2)), [[1, 0, 0, 1, 1]], (1, 1, 4, 4))",
                              ValueError, "boxes", "batch index")

    def test_non_finite_coordinates(self, isolated):
        for bad in ["np.nan", "np.inf", "-np.inf"]:
            isolated.expect_error(f"ops.roi_align(np.ones((1, 1, 4, 4)), [[0, 0, {bad}, 1, 1]], 2)", ValueError,
                                  "boxes", "non-finite")
            isolated.expect_error(
                f"ops.roi_align_backward(np.ones((1, 1, 2, 2)), [[0, 0, 0, 1, {bad}]], (1, 1, 4, 4))",
                ValueError, "boxes", "non-finite")
        # Finite in float64 but infinite once converted to the float32 input's type.
        isolated.expect_error("ops.roi_align(np.ones((1, 1, 4, 4), np.float32), [[0, 0, 0, 1e300, 1]], 2)",
                              ValueError, "boxes")
        # Finite, but overflowing float32 once multiplied by spatial_scale.
        isolated.expect_error("ops.roi_align(np.ones((1, 1, 4, 4), np.float32), [[0, 0, 0, 3e38, 1]], 2, 100.0, 2)",
                              ValueError, "boxes", "spatial_scale")

    def test_output_size(self, isolated):
        for size in ["0", "(2, 0)", "(-1, 2)"]:
            isolated.expect_error(f"ops.roi_align(np.ones((1, 1, 4, 4)), [[0, 0, 0, 1, 1]], {size})", ValueError,
                                  "output_size")
        isolated.expect_error("ops.roi_align(np.ones((1, 1, 4, 4)), [[0, 0, 0, 1, 1]], (1, 2, 3))", ValueError,
                              "output_size")
        isolated.expect_error("ops.roi_align(np.ones((1, 1, 4, 4)), [[0, 0, 0, 1, 1]], 1.5)", TypeError,
                              "output_size")
        isolated.expect_error("ops.roi_align_backward(np.ones((1, 1, 0, 2)), [[0, 0, 0, 1, 1]], (1, 1, 4, 4))",
                              ValueError, "grad_output")

    def test_spatial_scale(self, isolated):
        for scale in ["0.0", "-1.0", "float('nan')", "float('inf')"]:
            isolated.expect_error(f"ops.roi_align(np.ones((1, 1, 4, 4)), [[0, 0, 0, 1, 1]], 2, {scale})",
                                  ValueError, "spatial_scale")
        isolated.expect_error("ops.roi_align(np.ones((1, 1, 4, 4), np.float32), [[0, 0, 0, 1, 1]], 2, 1e-60)",
                              ValueError, "spatial_scale")
        isolated.expect_error("ops.roi_align_backward(np.ones((1, 1, 2, 2)), [[0, 0, 0, 1, 1]], (1, 1, 4, 4), 0.0)",
                              ValueError, "spatial_scale")
        isolated.expect_error("ops.roi_align(np.ones((1, 1, 4, 4)), [[0, 0, 0, 1, 1]], 2, None)", TypeError,
                              "spatial_scale")

    def test_sampling_work_is_bounded(self, isolated):
        # Adaptive sampling of a box far larger than any map would take ~1e12 samples.
        isolated.expect_error("ops.roi_align(np.ones((1, 1, 4, 4)), [[0, 0, 0, 1e7, 1e7]], 7)", ValueError,
                              "boxes", "sampling_ratio", timeout=20)
        isolated.expect_error("ops.roi_align_backward(np.ones((1, 1, 7, 7)), [[0, 0, 0, 1e7, 1e7]], (1, 1, 4, 4))",
                              ValueError, "boxes", timeout=20)
        isolated.expect_error("ops.roi_align(np.ones((1, 1, 4, 4)), [[0, 0, 0, 1, 1]], 7, sampling_ratio=10**6)",
                              ValueError, "sampling_ratio", timeout=20)
        isolated.expect_error("ops.roi_align(np.ones((1, 1, 4, 4)), [[0, 0, 0, 1, 1]], 7, sampling_ratio=2**62)",
                              ValueError, "sampling_ratio", timeout=20)
        # Many moderate boxes and channels: the total is bounded too.
        isolated.expect_error("ops.roi_align(np.ones((1, 512, 1, 4096), np.float32), np.tile([0, 0, 0, 4e3, 4e3], "
                              "(64, 1)), 1)", ValueError, "boxes", "per call", timeout=20)
        # The same box with a fixed sampling ratio is cheap and fine.
        kind, msg = isolated.run("result = ops.roi_align(np.ones((1, 1, 4, 4)), [[0, 0, 0, 1e7, 1e7]], 7, "
                                 "sampling_ratio=2).shape")
        assert (kind, msg) == ("ok", "(1, 1, 7, 7)")

    def test_shapes(self, isolated):
        isolated.expect_error("ops.roi_align(np.ones((1, 4, 4)), [[0, 0, 0, 1, 1]], 2)", ValueError, "input",
                              "(N, C, H, W)")
        isolated.expect_error("ops.roi_align(np.ones((1, 1, 4, 4)), np.ones((3, 4)), 2)", ValueError, "boxes",
                              "(K, 5)")
        isolated.expect_error("ops.roi_align(np.ones((1, 1, 4, 4)), [np.ones((3, 5))], 2)", ValueError, "boxes[0]",
                              "(L, 4)")
        isolated.expect_error("ops.roi_align(np.ones((1, 1, 4, 4)), [[0, 0, 0, 1, 1]], 2, sampling_ratio=1.5)",
                              TypeError, "sampling_ratio")
        isolated.expect_error("ops.roi_align(np.ones((1, 1, 4, 4)), 'boxes', 2)", TypeError, "boxes")

    def test_backward_shapes(self, isolated):
        isolated.expect_error("ops.roi_align_backward(np.ones((1, 2, 2, 2)), [[0, 0, 0, 1, 1]], (1, 3, 4, 4))",
                              ValueError, "grad_input", "C = 2")
        isolated.expect_error("ops.roi_align_backward(np.ones((2, 1, 2, 2)), [[0, 0, 0, 1, 1]], (1, 1, 4, 4))",
                              ValueError, "boxes", "grad_output")
        isolated.expect_error("ops.roi_align_backward(np.ones((1, 1, 2)), [[0, 0, 0, 1, 1]], (1, 1, 4, 4))",
                              ValueError, "grad_output")
        isolated.expect_error("ops.roi_align_backward(np.ones((1, 1, 2, 2)), [[0, 0, 0, 1, 1]], (1, 1, 4))",
                              ValueError, "input_shape")
        isolated.expect_error("ops.roi_align_backward(np.ones((1, 1, 2, 2)), [[0, 0, 0, 1, 1]], (1, 1, 4, -4))",
                              ValueError, "input_shape")
        isolated.expect_error("ops.roi_align_backward(np.ones((1, 1, 2, 2)), [[0, 0, 0, 1, 1]], (1, 1, 4.5, 4))",
                              TypeError, "input_shape")
