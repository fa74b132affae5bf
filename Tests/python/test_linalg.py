"""swiftrcnn.linalg.matmul against numpy.matmul in float64, and its bad-input behaviour."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import swiftrcnn
from swiftrcnn import linalg

# (m, n, k): scalars, tile and block edges (8 x 32 tiles; 640-deep, 128-row, 1024-column blocks), tall and skinny,
# and small convolution (im2col) and linear-layer shapes.
SHAPES = [
    (1, 1, 1), (1, 1, 300), (2, 3, 4), (8, 32, 256), (9, 33, 641), (7, 31, 5), (129, 65, 1300),
    (1000, 3, 2), (3, 1000, 2), (1, 700, 500), (700, 1, 300), (5, 2100, 3),
    (64, 1900, 64 * 9), (256, 450, 64), (50, 120, 980),
]
TRANSPOSES = [(False, False), (True, False), (False, True), (True, True)]


def operands(rng, m, n, k, dtype, ta, tb):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


def assert_matches(ours, a, b, ta, tb):
    """ours vs the float64 product of the same inputs: error within 1e-12 (float64) or 1e-6·sqrt(k) (float32) of
    |op(a)|·|op(b)|, the size of the terms summed."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    opa, opb = (a64.T if ta else a64), (b64.T if tb else b64)
    ref = opa @ opb
    scale = np.abs(opa) @ np.abs(opb) + np.finfo(np.float64).tiny
    k = opa.shape[1]
    rtol = 1e-12 if ours.dtype == np.float64 else 1e-6 * np.sqrt(max(k, 1))
    assert ours.shape == ref.shape
    assert ours.dtype == a.dtype
    err = np.max(np.abs(ours - ref) / scale, initial=0.0)
    assert err <= rtol, f"max error {err:.3g} relative to |a||b| exceeds {rtol:.3g}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", TRANSPOSES)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_random(m, n, k, ta, tb, dtype, rng):
    a, b = operands(rng, m, n, k, dtype, ta, tb)
    assert_matches(linalg.matmul(a, b, transpose_a=ta, transpose_b=tb), a, b, ta, tb)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hand_checked(dtype):
    a = np.array([[1, 2, 3], [4, 5, 6]], dtype)
    b = np.array([[7, 8], [9, 10], [11, 12]], dtype)
    expected = np.array([[58, 64], [139, 154]], dtype)
    np.testing.assert_array_equal(linalg.matmul(a, b), expected)
    np.testing.assert_array_equal(linalg.matmul(a.T.copy(), b.T.copy(), True, True), expected)


def test_conv_and_linear_shapes(rng):
    """Full-size shapes of the detector: a 3x3 convolution at stride 8 and the box head's fc6 (x @ W.T)."""
    a, b = operands(rng, 128, 100 * 152, 128 * 9, np.float32, False, False)
    assert_matches(linalg.matmul(a, b), a, b, False, False)
    x, w = operands(rng, 200, 1024, 256 * 49, np.float32, False, True)
    assert_matches(linalg.matmul(x, w, transpose_b=True), x, w, False, True)


def test_thread_count_does_not_change_results(rng):
    a, b = operands(rng, 300, 500, 700, np.float32, False, True)
    saved = swiftrcnn.get_num_threads()
    try:
        swiftrcnn.set_num_threads(1)
        one = linalg.matmul(a, b, transpose_b=True)
        swiftrcnn.set_num_threads(2)
        two = linalg.matmul(a, b, transpose_b=True)
    finally:
        swiftrcnn.set_num_threads(saved)
    np.testing.assert_array_equal(one, two)
    assert_matches(two, a, b, False, True)


def test_empty():
    assert linalg.matmul(np.zeros((0, 5)), np.zeros((5, 3))).shape == (0, 3)
    assert linalg.matmul(np.zeros((4, 5), np.float32), np.zeros((5, 0), np.float32)).shape == (4, 0)
    # k = 0: the empty sum.
    out = linalg.matmul(np.zeros((4, 0)), np.zeros((0, 3)))
    np.testing.assert_array_equal(out, np.zeros((4, 3)))


def test_conversions(rng):
    a, b = rng.standard_normal((6, 9)), rng.standard_normal((9, 4))
    # Views, Fortran order and lists are converted; float32 with float64 gives float64; integers give float32.
    assert_matches(linalg.matmul(np.asfortranarray(a), b[:, ::1]), a, b, False, False)
    mixed = linalg.matmul(a.astype(np.float32), b)
    assert mixed.dtype == np.float64
    ints = linalg.matmul([[1, 2], [3, 4]], [[5], [6]])
    assert ints.dtype == np.float32
    np.testing.assert_array_equal(ints, [[17], [39]])
    sliced = rng.standard_normal((20, 30))[::2, 1::3]
    assert_matches(linalg.matmul(sliced, sliced, transpose_b=True), sliced, sliced, False, True)


def test_out_argument(rng):
    a, b = rng.standard_normal((5, 7)), rng.standard_normal((7, 3))
    out = np.full((5, 3), np.nan)
    result = linalg.matmul(a, b, out=out)
    assert result is out
    assert_matches(out, a, b, False, False)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 40), n=st.integers(1, 80), k=st.integers(0, 300), ta=st.booleans(), tb=st.booleans(),
       double=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_property(m, n, k, ta, tb, double, seed):
    a, b = operands(np.random.default_rng(seed), m, n, k, np.float64 if double else np.float32, ta, tb)
    assert_matches(linalg.matmul(a, b, ta, tb), a, b, ta, tb)


class TestBadInput:
    def test_shapes(self, isolated):
        isolated.expect_error("swiftrcnn.linalg.matmul(np.zeros((2, 3)), np.zeros((4, 5)))", ValueError,
                              "inner dimensions", "(2, 3)", "(4, 5)")
        isolated.expect_error("swiftrcnn.linalg.matmul(np.zeros((2, 3)), np.zeros((2, 5)), transpose_a=True, "
                              "transpose_b=True)", ValueError, "inner dimensions")
        isolated.expect_error("swiftrcnn.linalg.matmul(np.zeros(3), np.zeros((3, 2)))", ValueError, "a: expected shape",
                              "(3,)")
        isolated.expect_error("swiftrcnn.linalg.matmul(np.zeros((3, 2)), np.zeros((2, 2, 2)))", ValueError,
                              "b: expected shape", "(2, 2, 2)")
        isolated.expect_error("swiftrcnn.linalg.matmul(np.float64(2), np.zeros((1, 1)))", ValueError, "a:")

    def test_types(self, isolated):
        isolated.expect_error("swiftrcnn.linalg.matmul(np.array([['x']]), np.zeros((1, 1)))", TypeError, "a")
        isolated.expect_error("swiftrcnn.linalg.matmul(np.zeros((1, 1)), np.zeros((1, 1), complex))", TypeError, "b")
        isolated.expect_error("swiftrcnn._C.matmul(np.zeros((1, 1), np.float32), np.zeros((1, 1)), 0, 0, "
                              "np.zeros((1, 1), np.float32))", TypeError, "b: expected dtype float32")
        isolated.expect_error("swiftrcnn._C.matmul(np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64), 0, 0, "
                              "np.zeros((1, 1), np.int64))", TypeError, "a: expected dtype float32 or float64")

    def test_flags(self, isolated):
        isolated.expect_error("swiftrcnn._C.matmul(np.zeros((1, 1)), np.zeros((1, 1)), 2, 0, np.zeros((1, 1)))",
                              ValueError, "transpose_a: expected 0 or 1, got 2")
        isolated.expect_error("swiftrcnn._C.matmul(np.zeros((1, 1)), np.zeros((1, 1)), 0, -1, np.zeros((1, 1)))",
                              ValueError, "transpose_b")

    def test_out(self, isolated):
        isolated.expect_error("swiftrcnn.linalg.matmul(np.zeros((2, 3)), np.zeros((3, 4)), out=np.zeros((4, 2)))",
                              ValueError, "out: expected shape (2, 4)")
        isolated.expect_error("swiftrcnn.linalg.matmul(np.zeros((2, 3)), np.zeros((3, 4)), "
                              "out=np.zeros((2, 4), np.float32))", TypeError, "out: expected dtype float64")
        isolated.expect_error("swiftrcnn.linalg.matmul(np.zeros((2, 3)), np.zeros((3, 4)), "
                              "out=np.zeros((4, 2)).T)", TypeError, "out: expected a C-contiguous")
        isolated.expect_error("a = np.ones((3, 3)); swiftrcnn.linalg.matmul(a, np.ones((3, 3)), out=a)", ValueError,
                              "out: must not overlap a")
        isolated.expect_error("b = np.ones((3, 3)); swiftrcnn.linalg.matmul(np.ones((3, 3)), b, out=b)", ValueError,
                              "out: must not overlap b")
        isolated.expect_error("swiftrcnn.linalg.matmul(np.ones((3, 3)), np.ones((3, 3)), "
                              "out=np.frombuffer(bytes(72)).reshape(3, 3))", TypeError, "out: expected a C-contiguous "
                              "writable")
