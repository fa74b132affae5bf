"""torchvision detectors in train mode as the oracle of swiftrcnn's training: the same seeded weights, made to draw
the same random samples as swiftrcnn (its choices are injected into torchvision's samplers), and their losses and
gradients."""
import numpy as np
import torch
from safetensors.torch import load_file
from torchvision.models import resnet50
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.ops.misc import FrozenBatchNorm2d


def build_train(kind="faster", seed=0, trainable_layers=3, num_classes=91, **kwargs):
    """fasterrcnn_resnet50_fpn / maskrcnn_resnet50_fpn as torchvision builds them from a pretrained checkpoint
    (FrozenBatchNorm2d, `trainable_layers` of the body trained), with seeded random weights and frozen norms whose
    statistics are random too (so that folding them is tested)."""
    torch.manual_seed(seed)
    body = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    backbone = _resnet_fpn_extractor(body, trainable_layers)
    model = (MaskRCNN if kind == "mask" else FasterRCNN)(backbone, num_classes=num_classes, **kwargs)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, FrozenBatchNorm2d):
                n = m.weight.numel()
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
    return model


def numpy_state(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def images_and_targets(sizes, boxes_per_image, seed=3, masks=False, num_classes=91):
    """Random images in [0, 1] with random boxes (positive size, inside the image), labels and box-shaped masks.
    An entry of 0 in `boxes_per_image` gives an image with no objects."""
    rng = np.random.default_rng(seed)
    images, targets = [], []
    for (h, w), n in zip(sizes, boxes_per_image):
        images.append(rng.random((3, h, w), dtype=np.float32))
        x1 = rng.uniform(0, w * 0.7, n)
        y1 = rng.uniform(0, h * 0.7, n)
        x2 = np.minimum(w, x1 + rng.uniform(w * 0.1, w * 0.6, n))
        y2 = np.minimum(h, y1 + rng.uniform(h * 0.1, h * 0.6, n))
        boxes = np.stack([x1, y1, x2, y2], 1).astype(np.float32).reshape(n, 4)
        target = {"boxes": boxes, "labels": rng.integers(1, num_classes, n).astype(np.int64)}
        if masks:
            m = np.zeros((n, h, w), np.uint8)
            for i, (a, b, c, d) in enumerate(boxes):
                # An ellipse inside the box.
                yy, xx = np.mgrid[0:h, 0:w]
                cx, cy, rx, ry = (a + c) / 2, (b + d) / 2, (c - a) / 2, (d - b) / 2
                m[i] = ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1
            target["masks"] = m
        targets.append(target)
    return images, targets


def torch_losses(model, images, targets, choices, use_our_proposals=True):
    """torchvision's train-mode losses and parameter gradients on the same inputs, with its short side and its
    samplers' draws replaced by swiftrcnn's `choices` (the dict of a swiftrcnn training step: "min_size",
    "rpn_positive.i", "rpn_negative.i", "roi_positive.i", "roi_negative.i", "proposals.i"). With
    `use_our_proposals` the RoI heads get swiftrcnn's proposals (equal to torchvision's up to float32 rounding,
    which can flip an NMS decision or the order of near-equal scores); the proposals torchvision's RPN produced are
    returned, per image, for a separate comparison."""
    n = len(images)
    model.train()
    model.transform.min_size = (float(choices["min_size"]),)
    seen = {}

    def mask(length, indices):
        m = torch.zeros(length, dtype=torch.uint8)
        m[torch.from_numpy(np.asarray(indices, np.int64))] = 1
        return m

    def rpn_sampler(labels):
        return ([mask(len(labels[i]), choices[f"rpn_positive.{i}"]) for i in range(n)],
                [mask(len(labels[i]), choices[f"rpn_negative.{i}"]) for i in range(n)])

    def roi_sampler(labels):
        seen["roi_lengths"] = [len(label) for label in labels]
        return ([mask(len(labels[i]), choices[f"roi_positive.{i}"]) for i in range(n)],
                [mask(len(labels[i]), choices[f"roi_negative.{i}"]) for i in range(n)])

    # The class's method, not an instance attribute a previous call installed.
    select = type(model.roi_heads).select_training_samples.__get__(model.roi_heads)

    def recording_select(proposals, targets):
        seen["proposals"] = [p.detach().numpy().copy() for p in proposals]
        if use_our_proposals:
            proposals = [torch.from_numpy(np.asarray(choices[f"proposals.{i}"])) for i in range(n)]
        return select(proposals, targets)

    model.rpn.fg_bg_sampler = rpn_sampler
    model.roi_heads.fg_bg_sampler = roi_sampler
    model.roi_heads.select_training_samples = recording_select
    model.zero_grad(set_to_none=True)
    t_images = [torch.from_numpy(i) for i in images]
    t_targets = [{k: torch.from_numpy(v) for k, v in t.items()} for t in targets]
    losses = model(t_images, t_targets)
    sum(losses.values()).backward()
    losses = {k: v.detach() for k, v in losses.items()}
    grads = {k: p.grad.numpy().copy() for k, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    return {k: float(v) for k, v in losses.items()}, grads, trainable, seen["proposals"]


def assert_gradients_close(ours, theirs32, exact, names):
    """Every gradient within 2e-4 (relative to its largest entry) of the float64 gradient or no farther from it than
    3 times torchvision's float32 gradient is; and our worst tensor no worse than 1.5 times torchvision's worst.
    (A wrong gradient is off by ~100%; float32 rounding moves both libraries by up to ~1e-2 here.)

    One exception to the per-tensor bound: a few entries off by up to 1e-2 while the tensor's mean error stays within
    3 times torchvision's. That is a ReLU or max-pool decision on a value within float32 rounding of its threshold,
    taken the other way than in float64: whether torchvision's float32 run takes it the same way depends on the
    CPU's kernels (on an AVX-512 Zen 4 torchvision matched float64 where swiftrcnn, on every path, did not)."""
    assert set(ours) == names
    worst_ours = worst_torch = 0.0
    for name in sorted(names):
        scale = np.abs(exact[name]).max()
        if scale == 0:
            assert np.abs(ours[name]).max() <= 1e-6, name
            continue
        ours_diff = np.abs(ours[name] - exact[name]) / scale
        torch_diff = np.abs(theirs32[name] - exact[name]) / scale
        ours_error, torch_error = ours_diff.max(), torch_diff.max()
        isolated = ours_error <= 1e-2 and ours_diff.mean() <= max(2e-6, 3 * torch_diff.mean())
        assert ours_error <= max(2e-4, 3 * torch_error) or isolated, (
            f"{name}: {ours_error:.3g} from the float64 gradient (mean {ours_diff.mean():.3g}), torchvision float32 "
            f"{torch_error:.3g} (mean {torch_diff.mean():.3g})")
        worst_ours, worst_torch = max(worst_ours, ours_error), max(worst_torch, torch_error)
    assert worst_ours <= max(2e-4, 1.5 * worst_torch), (worst_ours, worst_torch)


def assert_trained_weights_match(model, torch_model, images, tmp_path):
    """After the same SGD steps: every tensor of the state dicts within 1e-3 of its largest entry (1e-2 for tensors
    that start at zero: biases hold only a few small updates), and the file `model.save` writes loads into
    torchvision strictly and detects the same (scores within 1e-3)."""
    ours = model.state_dict()
    for name, value in torch_model.state_dict().items():
        t = value.detach().numpy()
        scale = max(np.abs(t).max(), 1e-2)
        assert np.abs(ours[name] - t).max() / scale <= 1e-3, name
    path = tmp_path / "trained.safetensors"
    model.save(path)
    torch_model.load_state_dict(load_file(str(path)), strict=True)
    torch_model.eval()
    model.eval()
    with torch.no_grad():
        theirs = torch_model([torch.from_numpy(i) for i in images])
    for d, t in zip(model(images), theirs):
        assert len(d["scores"]) == len(t["scores"])
        np.testing.assert_allclose(d["scores"], t["scores"].numpy(), atol=1e-3)
