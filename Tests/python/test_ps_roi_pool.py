"""Parity of swiftrcnn.ops.ps_roi_pool and ps_roi_pool_backward with torchvision (backward against autograd of
torchvision's op, including its clamping to the last row/column that the forward pass leaves out), and bad-input
behaviour."""
import numpy as np
import pytest
import torchvision.ops as tvops
from hypothesis import given, settings, strategies as st

import swiftrcnn
from swiftrcnn import ops
from utils import DTYPES, assert_close, t


def random_rois(rng, k, batch, size, dtype):
    """(k, 5) RoIs over a size x size image: ordinary, partly outside, zero-size and inverted boxes."""
    xy = rng.uniform(-0.2 * size, 1.1 * size, (k, 4))
    rois = np.concatenate([rng.integers(0, batch, (k, 1)), xy], axis=1)
    rois[::7, 3:5] = rois[::7, 1:3]  # zero-size
    return rois.astype(dtype)


def edge_rois(dtype):
    """Boxes on a 9 x 11 map: whole map, outside on either side, zero-size, inverted, half-integer corners (rounding
    ties), huge, on the last row/column."""
    return np.array([
        [0, 0, 0, 10, 8], [1, -5, -5, -1, -1], [0, 20, 20, 30, 30], [0, 3, 3, 3, 3], [1, 6, 5, 2, 1],
        [0, -3, -2, 4, 5], [0, 2.5, 1.5, 6.5, 4.5], [1, -0.5, -1.5, 0.5, 0.5], [0, -1e4, -1e4, 1e4, 1e4],
        [1, 10, 8, 10, 8], [0, 9.5, 7.5, 12, 12], [0, 0, 0, 20, 20],
    ], dtype)


def check_forward(x, rois, output_size, scale):
    assert_close(ops.ps_roi_pool(x, rois, output_size, scale), tvops.ps_roi_pool(t(x), t(rois), output_size, scale))


def check_backward(x, rois, output_size, scale, rng):
    xt = t(x).requires_grad_()
    out = tvops.ps_roi_pool(xt, t(rois), output_size, scale)
    grad = rng.normal(size=tuple(out.shape)).astype(x.dtype)
    out.backward(t(grad))
    assert_close(ops.ps_roi_pool_backward(grad, rois, x.shape, scale), xt.grad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output_size", [1, (2, 3), 7])
@pytest.mark.parametrize("scale", [1.0, 0.5, 0.25, 1.3])
def test_forward_random(output_size, scale, dtype, rng):
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    x = rng.normal(size=(2, 2 * ph * pw, 13, 17)).astype(dtype)
    check_forward(x, random_rois(rng, 50, 2, 40, dtype), output_size, scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output_size", [(2, 2), (3, 4)])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_forward_edge_boxes(output_size, scale, dtype, rng):
    x = rng.normal(size=(2, 2 * output_size[0] * output_size[1], 9, 11)).astype(dtype)
    check_forward(x, edge_rois(dtype), output_size, scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_list_of_boxes_and_box_dtype(dtype, rng):
    x = rng.normal(size=(3, 8, 12, 12)).astype(dtype)
    boxes = [random_rois(rng, n, 1, 12, np.float64)[:, 1:] for n in (4, 0, 6)]
    ours = ops.ps_roi_pool(x, boxes, 2, 1.0)
    assert ours.dtype == dtype
    assert_close(ours, tvops.ps_roi_pool(t(x), [t(b.astype(dtype)) for b in boxes], 2, 1.0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty(dtype):
    x = np.ones((2, 12, 5, 5), dtype)
    assert ops.ps_roi_pool(x, np.zeros((0, 5), dtype), (2, 3)).shape == (0, 2, 2, 3)
    assert ops.ps_roi_pool(np.ones((2, 0, 5, 5), dtype), np.array([[0, 1, 1, 3, 3]]), 2).shape == (1, 0, 2, 2)
    grad = ops.ps_roi_pool_backward(np.ones((0, 2, 2, 3), dtype), np.zeros((0, 5)), (2, 12, 5, 5))
    np.testing.assert_array_equal(grad, np.zeros((2, 12, 5, 5), dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output_size", [(2, 3), 7])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_backward(output_size, scale, dtype, rng):
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    x = rng.normal(size=(2, 2 * ph * pw, 11, 13)).astype(dtype)
    rois = np.concatenate([random_rois(rng, 30, 2, 30, dtype), edge_rois(dtype)])
    check_backward(x, rois, output_size, scale, rng)


@pytest.mark.parametrize("threads", [1, 3])
def test_thread_counts_agree(threads, rng):
    x = rng.normal(size=(2, 3 * 16, 16, 16))
    rois = random_rois(rng, 40, 2, 16, np.float64)
    before = swiftrcnn.get_num_threads()
    try:
        swiftrcnn.set_num_threads(threads)
        check_forward(x, rois, 4, 1.0)
        check_backward(x, rois, 4, 1.0, rng)
    finally:
        swiftrcnn.set_num_threads(before)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9), st.integers(1, 4),
       st.integers(1, 4), st.sampled_from([0.25, 0.5, 1.0, 2.0]), st.integers(0, 2**31 - 1))
def test_property_matches_torchvision(n, c, h, w, ph, pw, scale, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c * ph * pw, h, w))
    rois = random_rois(rng, 6, n, max(h, w) / scale, np.float64)
    rois[:, 1:] = np.round(rois[:, 1:] * 2) / 2  # many exact rounding ties
    check_forward(x, rois, (ph, pw), scale)
    check_backward(x, rois, (ph, pw), scale, rng)


class TestBadInput:
    X = "x = np.zeros((2, 8, 8, 8)); "

    def test_boxes_values(self, isolated):
        for row, fragment in [("[0, np.nan, 1, 3, 4]", "non-finite"), ("[0, 1, 2, 3, np.inf]", "non-finite"),
                              ("[-1, 1, 1, 3, 3]", "batch index"), ("[0.25, 1, 1, 3, 3]", "batch index")]:
            isolated.expect_error(self.X + f"ops.ps_roi_pool(x, np.array([{row}]), 2)", ValueError, "boxes",
                                  fragment)
        # Finite boxes whose scaled corners leave every integer range still give a defined (empty) result.
        kind, msg = isolated.run("result = ops.ps_roi_pool(np.ones((1, 4, 8, 8), np.float32), "
                                 "np.array([[0, -3e38, -3e38, 3e38, 3e38]]), 2, 4.0)")
        assert kind == "ok", msg

    def test_channels_output_size_scale(self, isolated):
        isolated.expect_error(self.X + "ops.ps_roi_pool(x, np.zeros((1, 5)), 3)", ValueError, "input", "multiple")
        isolated.expect_error(self.X + "ops.ps_roi_pool(x, np.zeros((1, 5)), (2, 0))", ValueError, "output_size")
        isolated.expect_error(self.X + "ops.ps_roi_pool(x, np.zeros((1, 5)), 2, -0.5)", ValueError,
                              "spatial_scale")
        isolated.expect_error(self.X + "ops.ps_roi_pool(x, np.zeros((1, 5)), 2, float('nan'))", ValueError,
                              "spatial_scale")
        isolated.expect_error("ops.ps_roi_pool(np.zeros((2, 8, 8)), np.zeros((1, 5)), 2)", ValueError, "input")
        isolated.expect_error(self.X + "ops.ps_roi_pool(x, np.zeros((1, 6)), 2)", ValueError, "boxes")

    def test_backward_shapes(self, isolated):
        setup = "g = np.ones((1, 2, 2, 2)); b = np.zeros((1, 5)); "
        isolated.expect_error(setup + "ops.ps_roi_pool_backward(g, b, (2, 9, 8, 8))", ValueError, "input_shape")
        isolated.expect_error(setup + "ops.ps_roi_pool_backward(g, np.zeros((3, 5)), (2, 8, 8, 8))", ValueError,
                              "boxes", "K = 1")
        isolated.expect_error(setup + "b[0, 3] = np.nan; ops.ps_roi_pool_backward(g, b, (2, 8, 8, 8))", ValueError,
                              "boxes", "non-finite")
        isolated.expect_error(setup + "ops.ps_roi_pool_backward(g, b, (2, 8, 8, 8), 0)", ValueError,
                              "spatial_scale")
        isolated.expect_error(setup + "ops.ps_roi_pool_backward(g.astype(np.float32), b, [2, 8, 8, 'x'])",
                              TypeError, "input_shape")
