"""Parity of swiftrcnn.ops.roi_pool (output and argmax) and roi_pool_backward with torchvision, and bad-input
behaviour."""
import numpy as np
import pytest
import torch
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
        [1, 10, 8, 10, 8], [0, 9.5, 7.5, 12, 12],
    ], dtype)


def torch_roi_pool(x, rois, scale, ph, pw):
    out, argmax = torch.ops.torchvision.roi_pool(t(x), t(rois), scale, ph, pw)
    return out, argmax.numpy().astype(np.int64)


def check_forward(x, rois, output_size, scale):
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    out, argmax = ops.roi_pool(x, rois, output_size, scale, return_argmax=True)
    ref, ref_argmax = torch_roi_pool(x, rois, scale, ph, pw)
    assert_close(out, ref)
    assert argmax.dtype == np.int64
    np.testing.assert_array_equal(argmax, ref_argmax)


def torch_grad(x, rois, output_size, scale, grad):
    xt = t(x).requires_grad_()
    tvops.roi_pool(xt, t(rois), output_size, scale).backward(t(grad))
    return xt.grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output_size", [1, (2, 3), 7])
@pytest.mark.parametrize("scale", [1.0, 0.5, 0.25, 1.3])
def test_forward_random(output_size, scale, dtype, rng):
    x = rng.normal(size=(2, 5, 13, 17)).astype(dtype)
    check_forward(x, random_rois(rng, 60, 2, 40, dtype), output_size, scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output_size", [(2, 2), (3, 4), (5, 5)])
def test_forward_edge_boxes(output_size, dtype, rng):
    x = rng.normal(size=(2, 3, 9, 11)).astype(dtype)
    check_forward(x, edge_rois(dtype), output_size, 1.0)
    check_forward(x, edge_rois(dtype), output_size, 0.5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_nan_and_lowest_values(dtype, rng):
    # Small integers make ties everywhere: the first maximum in row-major order must win, as in torchvision.
    x = rng.integers(0, 3, size=(2, 4, 9, 11)).astype(dtype)
    check_forward(x, random_rois(rng, 80, 2, 12, dtype), (3, 3), 1.0)
    # NaN is never the maximum; a bin of -inf gives -FLT_MAX with argmax -1 (torchvision's starting value).
    x[0, 0, :4, :4] = np.nan
    x[1, 1, 2:7, 3:9] = -np.inf
    x[0, 2, :, :] = -np.inf
    check_forward(x, edge_rois(dtype), (2, 3), 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_list_of_boxes(dtype, rng):
    x = rng.normal(size=(3, 4, 12, 12)).astype(dtype)
    boxes = [random_rois(rng, n, 1, 12, dtype)[:, 1:] for n in (4, 0, 6)]
    ours = ops.roi_pool(x, boxes, 3, 1.0)
    assert_close(ours, tvops.roi_pool(t(x), [t(b) for b in boxes], 3, 1.0))


def test_boxes_take_the_input_dtype(rng):
    x = rng.normal(size=(1, 2, 8, 8)).astype(np.float32)
    rois = random_rois(rng, 10, 1, 8, np.float64)
    out = ops.roi_pool(x, rois, 2)
    assert out.dtype == np.float32
    assert_close(out, tvops.roi_pool(t(x), t(rois.astype(np.float32)), 2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty(dtype):
    x = np.ones((2, 3, 5, 5), dtype)
    out, argmax = ops.roi_pool(x, np.zeros((0, 5), dtype), (2, 4), return_argmax=True)
    assert out.shape == argmax.shape == (0, 3, 2, 4) and out.dtype == dtype
    assert ops.roi_pool(np.ones((2, 0, 5, 5), dtype), np.array([[0, 1, 1, 3, 3]]), 2).shape == (1, 0, 2, 2)
    assert ops.roi_pool(np.ones((0, 3, 5, 5), dtype), [], 2).shape == (0, 3, 2, 2)
    grad = ops.roi_pool_backward(np.ones((0, 3, 2, 4), dtype), np.zeros((0, 3, 2, 4), np.int64), (2, 3, 5, 5),
                                 np.zeros((0, 5)))
    np.testing.assert_array_equal(grad, np.zeros((2, 3, 5, 5), dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output_size", [(2, 3), 7])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_backward(output_size, scale, dtype, rng):
    x = rng.normal(size=(2, 5, 13, 17)).astype(dtype)
    rois = np.concatenate([random_rois(rng, 50, 2, 40, dtype), edge_rois(dtype)])
    out, argmax = ops.roi_pool(x, rois, output_size, scale, return_argmax=True)
    grad = rng.normal(size=out.shape).astype(dtype)
    assert_close(ops.roi_pool_backward(grad, argmax, x.shape, rois), torch_grad(x, rois, output_size, scale, grad))
    # The argmax as torchvision returns it (int32) is accepted too.
    _, tv_argmax = torch.ops.torchvision.roi_pool(t(x), t(rois), scale, *out.shape[2:])
    assert_close(ops.roi_pool_backward(grad, tv_argmax.numpy(), x.shape, rois),
                 torch_grad(x, rois, output_size, scale, grad))


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_single_image_without_boxes(dtype, rng):
    x = rng.normal(size=(1, 3, 10, 10)).astype(dtype)
    boxes = [random_rois(rng, 30, 1, 10, dtype)[:, 1:]]
    out, argmax = ops.roi_pool(x, boxes, 3, 1.0, return_argmax=True)
    grad = rng.normal(size=out.shape).astype(dtype)
    ref = torch_grad(x, np.concatenate([np.zeros((30, 1), dtype), boxes[0]], 1), 3, 1.0, grad)
    assert_close(ops.roi_pool_backward(grad, argmax, x.shape), ref)
    assert_close(ops.roi_pool_backward(grad, argmax, x.shape, boxes), ref)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_counts_agree(threads, rng):
    x = rng.normal(size=(2, 7, 16, 16))
    rois = random_rois(rng, 40, 2, 16, np.float64)
    before = swiftrcnn.get_num_threads()
    try:
        swiftrcnn.set_num_threads(threads)
        out, argmax = ops.roi_pool(x, rois, 4, return_argmax=True)
        grad = ops.roi_pool_backward(out, argmax, x.shape, rois)
    finally:
        swiftrcnn.set_num_threads(before)
    assert_close(out, torch_roi_pool(x, rois, 1.0, 4, 4)[0])
    assert_close(grad, torch_grad(x, rois, 4, 1.0, out))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9), st.integers(1, 4),
       st.integers(1, 4), st.sampled_from([0.25, 0.5, 1.0, 2.0]), st.integers(0, 2**31 - 1))
def test_property_matches_torchvision(n, c, h, w, ph, pw, scale, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=(n, c, h, w)).astype(np.float64)
    rois = random_rois(rng, 8, n, max(h, w) / scale, np.float64)
    rois[:, 1:] = np.round(rois[:, 1:] * 2) / 2  # many exact rounding ties
    check_forward(x, rois, (ph, pw), scale)
    out, argmax = ops.roi_pool(x, rois, (ph, pw), scale, return_argmax=True)
    assert_close(ops.roi_pool_backward(out, argmax, x.shape, rois), torch_grad(x, rois, (ph, pw), scale, out))


class TestBadInput:
    X = "x = np.zeros((2, 3, 8, 8)); "

    def test_boxes_values(self, isolated):
        for row, fragment in [("[0, 1, np.nan, 3, 4]", "non-finite"), ("[0, 1, 2, np.inf, 4]", "non-finite"),
                              ("[2, 1, 1, 3, 3]", "batch index"), ("[-1, 1, 1, 3, 3]", "batch index"),
                              ("[0.5, 1, 1, 3, 3]", "batch index"), ("[np.nan, 1, 1, 3, 3]", "batch index")]:
            isolated.expect_error(self.X + f"ops.roi_pool(x, np.array([{row}]), 2)", ValueError, "boxes", fragment)

    def test_boxes_shapes(self, isolated):
        isolated.expect_error(self.X + "ops.roi_pool(x, np.zeros((3, 4)), 2)", ValueError, "boxes", "(K, 5)")
        isolated.expect_error(self.X + "ops.roi_pool(x, [np.zeros((3, 5))], 2)", ValueError, "boxes[0]", "(L, 4)")
        isolated.expect_error(self.X + "ops.roi_pool(x, [[[0, 0, 1]]], 2)", ValueError, "boxes[0]")
        isolated.expect_error(self.X + "ops.roi_pool(x, 'boxes', 2)", TypeError, "boxes")

    def test_input(self, isolated):
        isolated.expect_error("ops.roi_pool(np.zeros((3, 8, 8)), np.zeros((1, 5)), 2)", ValueError, "input",
                              "(N, C, H, W)")
        isolated.expect_error("ops.roi_pool(np.zeros((1, 1, 8, 8), np.complex64), np.zeros((1, 5)), 2)", TypeError,
                              "input")

    def test_output_size_and_scale(self, isolated):
        isolated.expect_error(self.X + "ops.roi_pool(x, np.zeros((1, 5)), 0)", ValueError, "output_size")
        isolated.expect_error(self.X + "ops.roi_pool(x, np.zeros((1, 5)), (2, -3))", ValueError, "output_size")
        isolated.expect_error(self.X + "ops.roi_pool(x, np.zeros((1, 5)), (1, 2, 3))", ValueError, "output_size")
        isolated.expect_error(self.X + "ops.roi_pool(x, np.zeros((1, 5)), 2.5)", TypeError, "output_size")
        isolated.expect_error(self.X + "ops.roi_pool(x, np.zeros((1, 5)), 10**6)", MemoryError, "output_size")
        isolated.expect_error(self.X + "ops.roi_pool(x, np.zeros((1, 5)), 10**30)", ValueError, "output_size")
        for scale in ["0", "-1", "float('nan')", "float('inf')"]:
            isolated.expect_error(self.X + f"ops.roi_pool(x, np.zeros((1, 5)), 2, {scale})", ValueError,
                                  "spatial_scale")

    def test_backward_argmax(self, isolated):
        setup = "g = np.ones((1, 3, 2, 2)); b = np.zeros((1, 5)); a = np.zeros((1, 3, 2, 2), np.int64); "
        isolated.expect_error(setup + "a[0, 1, 1, 0] = 64; ops.roi_pool_backward(g, a, (2, 3, 8, 8), b)",
                              ValueError, "argmax", "64")
        isolated.expect_error(setup + "a[0, 0, 0, 0] = -2; ops.roi_pool_backward(g, a, (2, 3, 8, 8), b)",
                              ValueError, "argmax", "-2")
        isolated.expect_error(setup + "ops.roi_pool_backward(g, a[..., :1], (2, 3, 8, 8), b)", ValueError, "argmax")
        isolated.expect_error(setup + "ops.roi_pool_backward(g, a * 1.0, (2, 3, 8, 8), b)", TypeError, "argmax")

    def test_backward_shapes(self, isolated):
        setup = "g = np.ones((1, 3, 2, 2)); b = np.zeros((1, 5)); a = np.zeros((1, 3, 2, 2), np.int64); "
        isolated.expect_error(setup + "ops.roi_pool_backward(g, a, (2, 3, 8, 8))", ValueError, "boxes", "required")
        isolated.expect_error(setup + "ops.roi_pool_backward(g, a, (2, 4, 8, 8), b)", ValueError, "grad_output")
        isolated.expect_error(setup + "ops.roi_pool_backward(g, a, (3, 8, 8), b)", ValueError, "input_shape")
        isolated.expect_error(setup + "ops.roi_pool_backward(g, a, (2, 3, -8, 8), b)", ValueError, "input_shape")
        isolated.expect_error(setup + "ops.roi_pool_backward(g, a, (2, 3, 8, 8), np.zeros((2, 5)))", ValueError,
                              "boxes", "K = 1")
        isolated.expect_error(setup + "b[0, 0] = 2; ops.roi_pool_backward(g, a, (2, 3, 8, 8), b)", ValueError,
                              "boxes", "batch index")
        isolated.expect_error(setup + "ops.roi_pool_backward(g, a, (10**5, 3, 10**5, 10**5), b)", MemoryError,
                              "input_shape")


@pytest.mark.parametrize("op", ["roi_align", "roi_pool", "ps_roi_align", "ps_roi_pool"])
def test_every_roi_op_takes_boxes_in_the_same_forms(op):
    """One conversion for all RoI ops: a (K, 5) array, a plain list of [batch_index, x1, y1, x2, y2] rows and a
    list of per-image (L, 4) arrays give the same result (roi_align alone accepted the plain rows before)."""
    from swiftrcnn import ops as sr_ops
    x = np.random.default_rng(0).random((2, 8, 10, 10), dtype=np.float32)
    rows = [[1, 1.0, 2.0, 7.0, 8.0], [0, 0.5, 0.5, 4.0, 6.0]]
    f = getattr(sr_ops, op)
    expected = f(x, np.array(rows, np.float32), 2)
    np.testing.assert_array_equal(f(x, rows, 2), expected)
    per_image = [np.array([rows[1][1:]], np.float32), np.array([rows[0][1:]], np.float32)]
    np.testing.assert_array_equal(f(x, per_image, 2), expected[::-1])
