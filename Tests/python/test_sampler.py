"""swiftrcnn.ops.BalancedPositiveNegativeSampler against torchvision's: torch's generator cannot be reproduced, so
the tests check what the draws must satisfy (counts, classes, masks' type), seeding, and uniformity."""
import numpy as np
import pytest
import torch
from scipy import stats
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler as TVSampler

from swiftrcnn import ops
from utils import t


def random_matched(rng, n, p_pos, p_neg):
    """int64 (n,): positives (gt index + 1), negatives (0) and ignored (-1 / -2) with the given probabilities."""
    kind = rng.uniform(size=n)
    out = np.where(kind < p_pos, rng.integers(1, 20, n), np.where(kind < p_pos + p_neg, 0, -rng.integers(1, 3, n)))
    return out.astype(np.int64)


def check_masks(matched, pos, neg, batch, fraction):
    assert pos.dtype == neg.dtype == np.uint8 and pos.shape == neg.shape == matched.shape
    assert set(np.unique(pos)) <= {0, 1} and set(np.unique(neg)) <= {0, 1}
    n_pos, n_neg = int((matched >= 1).sum()), int((matched == 0).sum())
    want_pos = min(n_pos, int(batch * fraction))
    want_neg = min(n_neg, batch - want_pos)
    assert pos.sum() == want_pos and neg.sum() == want_neg
    assert np.all(matched[pos == 1] >= 1) and np.all(matched[neg == 1] == 0)


@pytest.mark.parametrize("batch,fraction", [(512, 0.25), (256, 0.5), (10, 0.0), (10, 1.0), (0, 0.5), (7, 0.3),
                                            (100000, 0.25)])
@pytest.mark.parametrize("p_pos,p_neg", [(0.05, 0.8), (0.5, 0.3), (0.0, 1.0), (1.0, 0.0), (0.0, 0.0), (0.2, 0.2)])
def test_counts_match_torchvision(batch, fraction, p_pos, p_neg, rng):
    matched = [random_matched(rng, n, p_pos, p_neg) for n in (0, 1, 37, 2000)]
    pos, neg = ops.BalancedPositiveNegativeSampler(batch, fraction, seed=3)(matched)
    tpos, tneg = TVSampler(batch, fraction)([t(m) for m in matched])
    assert len(pos) == len(neg) == len(matched)
    for m, p, q, tp, tq in zip(matched, pos, neg, tpos, tneg):
        check_masks(m, p, q, batch, fraction)
        assert tp.dtype == torch.uint8 and tp.shape == p.shape
        assert (p.sum(), q.sum()) == (tp.sum().item(), tq.sum().item())


def test_accepts_lists_and_other_integer_types(rng):
    m = random_matched(rng, 300, 0.3, 0.5)
    pos, neg = ops.BalancedPositiveNegativeSampler(64, 0.25, seed=0)([m.astype(np.int32), m.tolist()])
    for p, q in zip(pos, neg):
        check_masks(m, p, q, 64, 0.25)
    assert ops.BalancedPositiveNegativeSampler(8, 0.5)([]) == ([], [])


def test_seed_reproduces_and_differs(rng):
    matched = [random_matched(rng, 1000, 0.2, 0.6) for _ in range(3)]
    a = ops.BalancedPositiveNegativeSampler(128, 0.25, seed=42)
    b = ops.BalancedPositiveNegativeSampler(128, 0.25, seed=42)
    first_a, first_b = a(matched), b(matched)
    for x, y in zip(first_a[0] + first_a[1], first_b[0] + first_b[1]):
        np.testing.assert_array_equal(x, y)
    # Successive calls of one sampler draw anew, and so do the images of one call and other seeds.
    second_a = a(matched)
    assert any(not np.array_equal(x, y) for x, y in zip(first_a[0], second_a[0]))
    assert not np.array_equal(first_a[0][0], ops.BalancedPositiveNegativeSampler(128, 0.25, seed=43)(matched)[0][0])
    same = [matched[0]] * 2
    twice = a(same)[0]
    assert not np.array_equal(twice[0], twice[1])


def test_seed_reproduces_across_processes(isolated):
    m = np.arange(-5, 200) % 7 - 1
    code = ("m = np.arange(-5, 200) % 7 - 1\n"
            "p, n = ops.BalancedPositiveNegativeSampler(40, 0.25, seed=2024)([m, m])\n"
            "result = [x.tolist() for x in p + n]")
    kind, out = isolated.run(code)
    assert kind == "ok", out
    p, n = ops.BalancedPositiveNegativeSampler(40, 0.25, seed=2024)([m, m])
    assert eval(out) == [x.tolist() for x in p + n]


def test_unseeded_samplers_differ(rng):
    m = random_matched(rng, 2000, 0.3, 0.6)
    masks = [ops.BalancedPositiveNegativeSampler(256, 0.25)([m])[1][0] for _ in range(3)]
    assert not (np.array_equal(masks[0], masks[1]) and np.array_equal(masks[1], masks[2]))


@pytest.mark.parametrize("k", [1, 5, 17])
def test_uniform_selection(k):
    # 20 positives and 20 negatives, k of each drawn per image over 6000 images: each element's selection count is
    # Binomial(6000, k / 20); a chi-square test of the counts must not reject uniformity.
    m = np.array([1, 0] * 20, np.int64)
    draws = 6000
    pos, neg = ops.BalancedPositiveNegativeSampler(2 * k, 0.5, seed=k)([m] * draws)
    for masks in (pos, neg):
        counts = np.sum(masks, axis=0)[m == (1 if masks is pos else 0)]
        assert counts.sum() == draws * k
        assert stats.chisquare(counts).pvalue > 1e-4
    # Pairs are uniform too (a biased shuffle shows in which positions are picked together): the number of images
    # where positives 0 and 1 are both picked is Hypergeometric-like with mean draws * k(k-1) / (20 * 19).
    both = sum(int(p[0] and p[2]) for p in pos)
    mean = draws * k * (k - 1) / (20 * 19)
    assert abs(both - mean) <= 5 * np.sqrt(mean) + 1


class TestBadInput:
    def test_fraction_and_batch(self, isolated):
        isolated.expect_error("ops.BalancedPositiveNegativeSampler(10, 1.5)([np.zeros(4, np.int64)])", ValueError,
                              "positive_fraction")
        isolated.expect_error("ops.BalancedPositiveNegativeSampler(10, -0.1)([np.zeros(4, np.int64)])", ValueError,
                              "positive_fraction")
        isolated.expect_error("ops.BalancedPositiveNegativeSampler(10, float('nan'))([np.zeros(4, np.int64)])",
                              ValueError, "positive_fraction")
        isolated.expect_error("ops.BalancedPositiveNegativeSampler(-1, 0.5)([np.zeros(4, np.int64)])", ValueError,
                              "batch_size_per_image")
        isolated.expect_error("ops.BalancedPositiveNegativeSampler(2.5, 0.5)", TypeError, "batch_size_per_image")
        isolated.expect_error("ops.BalancedPositiveNegativeSampler(8, None)", TypeError, "positive_fraction")

    def test_matched_idxs(self, isolated):
        isolated.expect_error("ops.BalancedPositiveNegativeSampler(8, 0.5)([np.zeros((2, 3), np.int64)])",
                              ValueError, "matched_idxs", "(N,)")
        isolated.expect_error("ops.BalancedPositiveNegativeSampler(8, 0.5)([np.zeros(3)])", TypeError, "matched_idxs")
        isolated.expect_error("ops.BalancedPositiveNegativeSampler(8, 0.5)([np.int64(3)])", ValueError,
                              "matched_idxs")
