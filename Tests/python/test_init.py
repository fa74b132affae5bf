"""swiftrcnn.models._init.initial_state against torchvision's constructors.

Keys and shapes must be those of torchvision's fasterrcnn_resnet50_fpn / maskrcnn_resnet50_fpn state dict (without
num_batches_tracked: our norms are FrozenBatchNorm2d). Values must follow the distribution torchvision draws each
tensor from, written below from torchvision's and torch's code (`torchvision_scheme`); the same checks run on a model
torchvision initialises, which shows the table is torchvision's. Our values come from our generator, so only their
distribution can be compared.

Every statistical check is a bound that a correct sampler exceeds with probability at most DELTA (no normal
approximation): the sample mean of N(0, s^2) draws is exactly N(0, s^2 / n) and their sum of squares / s^2 exactly
chi-square with n degrees of freedom (two-sided quantiles); the means of uniform draws and of their squares are
bounded by Hoeffding's inequality; the largest magnitude of either by its exact distribution; the largest distance
between the empirical and the theoretical CDF by the Dvoretzky-Kiefer-Wolfowitz inequality with Massart's constant,
P(D_n > e) <= 2 exp(-2 n e^2). Fewer than two thousand checks at DELTA = 1e-10 fail by chance with probability below
1e-6.
"""
import math

import numpy as np
import pytest
import torch
from scipy import special, stats
from torchvision.models.detection import fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn

from swiftrcnn.models._init import initial_state

DELTA = 1e-10
# Float32 rounding moves the empirical CDF by far less than this (|x| 2^-24 times a density at most 1 / s).
CDF_SLACK = 1e-6
# The CDF is compared on a tensor's first KS_VALUES values (any fixed subset of independent draws is a valid sample),
# which keeps the test fast; the moments use every value.
KS_VALUES = 1 << 17
PREDICTORS = {
    "faster": ["roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias",
               "roi_heads.box_predictor.bbox_pred.weight", "roi_heads.box_predictor.bbox_pred.bias"],
}
PREDICTORS["mask"] = PREDICTORS["faster"] + ["roi_heads.mask_predictor.mask_fcn_logits.weight",
                                             "roi_heads.mask_predictor.mask_fcn_logits.bias"]
BUILDERS = {"faster": fasterrcnn_resnet50_fpn, "mask": maskrcnn_resnet50_fpn}


def torchvision_state(kind, num_classes, device):
    """torchvision's model without weights (BatchNorm2d norms), as {name: tensor} without num_batches_tracked."""
    with torch.device(device):
        model = BUILDERS[kind](weights=None, weights_backbone=None, num_classes=num_classes)
    return {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def fans(shape):
    """torch.nn.init._calculate_fan_in_and_fan_out of a weight of `shape`."""
    return torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape, device="meta"))


def torchvision_scheme(name, shapes):
    """How torchvision initialises `name`: ("constant", c), ("normal", std) or ("uniform", bound)."""
    leaf = name.rsplit(".", 1)[1]

    def weight_fans():
        return fans(shapes[name.rsplit(".", 1)[0] + ".weight"])

    def kaiming_normal_fan_out_relu():
        return ("normal", torch.nn.init.calculate_gain("relu") / math.sqrt(weight_fans()[1]))

    def layer_default():
        # nn.Linear / Conv2d / ConvTranspose2d reset_parameters: weight kaiming_uniform_(a=sqrt(5)), bias
        # U(+-1/sqrt(fan_in)).
        fan_in = weight_fans()[0]
        if leaf == "weight":
            return ("uniform", torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5)) * math.sqrt(3 / fan_in))
        return ("uniform", 1 / math.sqrt(fan_in))

    if name.startswith("backbone.body."):
        # ResNet.__init__: Conv2d kaiming_normal_(fan_out, relu); norms weight 1, bias 0 (and running 0 / 1).
        if len(shapes[name]) == 4:
            return kaiming_normal_fan_out_relu()
        return ("constant", 1.0 if leaf in ("weight", "running_var") else 0.0)
    if name.startswith("backbone.fpn."):
        # FeaturePyramidNetwork.__init__: kaiming_uniform_(a=1), bias 0.
        if leaf == "bias":
            return ("constant", 0.0)
        return ("uniform", torch.nn.init.calculate_gain("leaky_relu", 1) * math.sqrt(3 / weight_fans()[0]))
    if name.startswith("rpn.head."):
        # RPNHead.__init__: normal_(std=0.01), bias 0.
        return ("normal", 0.01) if leaf == "weight" else ("constant", 0.0)
    if name.startswith(("roi_heads.box_head.", "roi_heads.box_predictor.")):
        # TwoMLPHead, FastRCNNPredictor: nn.Linear's own initialisation.
        return layer_default()
    if name.startswith("roi_heads.mask_head."):
        # MaskRCNNHeads.__init__: kaiming_normal_(fan_out, relu), zeros_ bias.
        return kaiming_normal_fan_out_relu() if leaf == "weight" else ("constant", 0.0)
    if name.startswith("roi_heads.mask_predictor."):
        # MaskRCNNPredictor.__init__: weights kaiming_normal_(fan_out, relu); biases keep the layer's default.
        return kaiming_normal_fan_out_relu() if leaf == "weight" else layer_default()
    raise AssertionError(f"no scheme for {name}")


def ks_distance(x, cdf):
    """sup |F_n - F| of the float64 sample x against the CDF `cdf` (vectorised)."""
    x = np.sort(x)
    f = cdf(x)
    n = x.size
    upper = np.arange(1, n + 1) / n - f
    lower = f - np.arange(n) / n
    return max(upper.max(), lower.max())


def check(name, values, scheme):
    """The problems of `values` under `scheme` (empty when it passes)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    kind, p = scheme
    problems = []
    if not np.isfinite(x).all():
        return [f"{name}: non-finite values"]
    if kind == "constant":
        if not (x == p).all():
            problems.append(f"{name}: expected every value {p}, got values in [{x.min()}, {x.max()}]")
        return problems
    u = math.log(2 / DELTA)  # Hoeffding: each tail at DELTA / 2
    sample = x[:KS_VALUES]
    dkw = math.sqrt(math.log(2 / DELTA) / (2 * sample.size)) + CDF_SLACK
    mean = x.mean()
    if kind == "normal":
        if abs(mean) > stats.norm.isf(DELTA / 2) * p / math.sqrt(n):
            problems.append(f"{name}: mean {mean:.4g} for N(0, {p:.4g}^2), n={n}")
        s = float((x * x).sum()) / (p * p)
        if not stats.chi2.ppf(DELTA / 2, n) <= s <= stats.chi2.isf(DELTA / 2, n):
            problems.append(f"{name}: sum of squares / std^2 = {s:.6g} for chi-square({n}), std {p:.4g}")
        # P(max |x| < c std) = P(|Z| < c)^n = DELTA for P(|Z| >= c) = 1 - DELTA^(1/n).
        if np.abs(x).max() < p * stats.norm.isf(-math.expm1(math.log(DELTA) / n) / 2):
            problems.append(f"{name}: largest |value| {np.abs(x).max():.6g} too small for N(0, {p:.4g}^2), n={n}")
        d = ks_distance(sample, lambda t: special.ndtr(t / p))
    else:
        bound = p
        if np.abs(x).max() > np.float32(bound):
            problems.append(f"{name}: |value| {np.abs(x).max()} beyond the bound {bound}")
        if abs(mean) > bound * math.sqrt(2 * u / n):
            problems.append(f"{name}: mean {mean:.4g} for U(+-{bound:.4g}), n={n}")
        m2 = float((x * x).mean())
        if abs(m2 - bound * bound / 3) > bound * bound * math.sqrt(u / (2 * n)):
            problems.append(f"{name}: mean square {m2:.6g} for U(+-{bound:.4g}) (expected {bound * bound / 3:.6g})")
        # The largest |value| comes near the bound: P(max |x| < c bound) = c^n.
        if np.abs(x).max() < bound * DELTA ** (1 / n):
            problems.append(f"{name}: largest |value| {np.abs(x).max():.6g} far below the bound {bound:.6g}")
        d = ks_distance(sample, lambda t: np.clip((t + bound) / (2 * bound), 0, 1))
    if d > dkw:
        problems.append(f"{name}: Kolmogorov-Smirnov distance {d:.3g} > {dkw:.3g} (n={sample.size}, {kind} {p:.4g})")
    return problems


@pytest.fixture(scope="module")
def ours_mask3():
    return initial_state("mask", 3, seed=0)


@pytest.fixture(scope="module")
def ours_faster91():
    return initial_state("faster", 91, seed=1)


@pytest.mark.parametrize("kind", ["faster", "mask"])
def test_keys_and_shapes_are_torchvisions(kind, ours_faster91, ours_mask3):
    """The whole state of Faster R-CNN (91 classes) and Mask R-CNN (3 classes); for the other number of classes,
    the predictors (no other shape depends on num_classes)."""
    def assert_like(ours, theirs):
        assert sorted(ours) == sorted(theirs)
        assert list(ours) == sorted(ours)
        for name, value in ours.items():
            assert value.shape == tuple(theirs[name].shape), name
            assert value.dtype == np.float32 and value.flags.c_contiguous, name

    k, other = (91, 3) if kind == "faster" else (3, 91)
    assert_like(ours_faster91 if kind == "faster" else ours_mask3, torchvision_state(kind, k, "meta"))
    theirs = torchvision_state(kind, other, "meta")
    assert_like(initial_state(kind, other, seed=1, predictors_only=True),
                {name: theirs[name] for name in PREDICTORS[kind]})


def test_torchvision_follows_the_schemes():
    """The scheme table is torchvision's: a model torchvision initialises passes every check."""
    torch.manual_seed(0)
    theirs = {k: v.numpy() for k, v in torchvision_state("mask", 3, "cpu").items()}
    shapes = {k: tuple(v.shape) for k, v in theirs.items()}
    problems = [p for name, v in theirs.items() for p in check(name, v, torchvision_scheme(name, shapes))]
    assert not problems, "\n".join(problems)


def test_values_follow_torchvisions_schemes(ours_mask3):
    shapes = {k: v.shape for k, v in ours_mask3.items()}
    problems = [p for name, v in ours_mask3.items() for p in check(name, v, torchvision_scheme(name, shapes))]
    assert not problems, "\n".join(problems)
    # Schemes of the 91-class predictors (the 3-class mask_fcn_logits has std sqrt(2/3), the 91-class sqrt(2/91)).
    predictors = initial_state("mask", 91, seed=5, predictors_only=True)
    shapes = {k: v.shape for k, v in predictors.items()}
    problems = [p for name, v in predictors.items() for p in check(name, v, torchvision_scheme(name, shapes))]
    assert not problems, "\n".join(problems)


def test_tensors_and_blocks_are_distinct_streams(ours_mask3):
    """No two random tensors, and no two 64 Ki-value blocks of a tensor (each its own stream), start alike."""
    heads = {}
    for name, v in ours_mask3.items():
        flat = v.ravel()
        if flat.size >= 4 and flat[0] != flat[1]:  # drawn, not constant
            for start in range(0, flat.size - 3, 1 << 16):
                head = flat[start:start + 4].tobytes()
                assert head not in heads, f"{name}[{start}] starts as {heads.get(head)}"
                heads[head] = f"{name}[{start}]"
    assert len(heads) > 600


@pytest.mark.parametrize("kind", ["faster", "mask"])
def test_seeding(kind, ours_mask3):
    a = initial_state(kind, 3, seed=0, predictors_only=True)
    assert list(a) == sorted(PREDICTORS[kind])
    b = initial_state(kind, 3, seed=0, predictors_only=True)
    c = initial_state(kind, 3, seed=2**64 - 1, predictors_only=True)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        assert not np.array_equal(a[name], c[name]), name
        # A tensor's values depend on the seed and its name alone: re-initialised predictors are the whole model's.
        np.testing.assert_array_equal(a[name], ours_mask3[name], err_msg=name)


def test_arguments_checked():
    with pytest.raises(ValueError, match="kind"):
        initial_state("retina", 3)  # type: ignore[arg-type]
    for k in (0, -1, 2**20 + 1):
        with pytest.raises(ValueError, match="num_classes"):
            initial_state("faster", k, predictors_only=True)
    with pytest.raises(TypeError, match="num_classes"):
        initial_state("faster", 3.0, predictors_only=True)  # type: ignore[arg-type]
    for seed in (-1, 2**64):
        with pytest.raises(ValueError, match="seed"):
            initial_state("faster", 3, seed=seed, predictors_only=True)
    with pytest.raises(TypeError, match="seed"):
        initial_state("faster", 3, seed=1.5, predictors_only=True)  # type: ignore[arg-type]
    np.testing.assert_array_equal(
        initial_state("faster", 3, seed=np.uint64(7), predictors_only=True)["roi_heads.box_predictor.cls_score.bias"],
        initial_state("faster", 3, seed=7, predictors_only=True)["roi_heads.box_predictor.cls_score.bias"])

