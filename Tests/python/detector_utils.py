"""torchvision detectors with seeded random weights, sharpened so that their outputs are confident and distinct,
and their intermediate results (features, proposals) as the inputs of swiftrcnn's detection stages."""
import numpy as np
import torch
from torchvision.models.detection import fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn


def images(sizes, seed=1):
    """A list of (3, H, W) float32 images in [0, 1] of the given (H, W) sizes."""
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, h, w, generator=g) for h, w in sizes]


def build(kind="faster", seed=0, **kwargs):
    """fasterrcnn_resnet50_fpn / maskrcnn_resnet50_fpn in eval mode with seeded random weights."""
    torch.manual_seed(seed)
    factory = maskrcnn_resnet50_fpn if kind == "mask" else fasterrcnn_resnet50_fpn
    return factory(weights=None, weights_backbone=None, **kwargs).eval()


@torch.no_grad()
def features(model, imgs):
    """(ImageList, FPN features) of torchvision's transform and backbone."""
    image_list, _ = model.transform(imgs)
    return image_list, model.backbone(image_list.tensors)


@torch.no_grad()
def sharpen_rpn(model, delta_scale=0.1):
    """Shrinks the RPN's box deltas: random weights give deltas of several units, whose exp amplifies float32
    rounding far beyond what a trained model sees. The objectness logits of the random model already spread over
    several units; spreading them further would only saturate the float32 sigmoid near 1 into more exact ties."""
    model.rpn.head.bbox_pred.weight.mul_(delta_scale)


@torch.no_grad()
def sharpen_classifier(model, feats, image_list, proposals, scale=6.0, background=14.0, delta_scale=0.05):
    """Makes the box classifier confident and selective on these inputs: the random backbone gives nearly the same
    box features for every proposal, so the logits are centred on the mean box feature and scaled (distinct classes
    per proposal), the background is raised so only some (proposal, class) pairs pass the score threshold, and the
    box deltas are shrunk."""
    heads = model.roi_heads
    box_features = heads.box_head(heads.box_roi_pool(feats, proposals, image_list.image_sizes))
    cls = heads.box_predictor.cls_score
    cls.weight.mul_(scale)
    cls.bias.copy_(-(cls.weight @ box_features.mean(0)))
    cls.bias[0] += background
    heads.box_predictor.bbox_pred.weight.mul_(delta_scale)


def numpy_state(model):
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def assert_same_ranking(our_boxes, our_scores, their_boxes, their_scores, box_atol, score_atol, tie=1e-6,
                        truncated=False, extra=()):
    """Rows (boxes, scores and any `extra` (ours, theirs) per-row arrays) agree one to one in decreasing score order,
    except that rows whose scores are within `tie` of each other may come in either order: torchvision sorts its
    final results with an unstable sort, and float32 probabilities of distinct logits can be exactly equal (its
    sigmoid and softmax round differently from ours by an ulp at times). When the list was `truncated` (more results
    than the limit), the last group of tied rows may hold different members."""
    assert our_scores.shape == their_scores.shape, f"{our_scores.shape} != {their_scores.shape}"
    np.testing.assert_allclose(our_scores, their_scores, rtol=0, atol=score_atol)
    n = len(their_scores)
    start = 0
    while start < n:
        end = start + 1
        while end < n and their_scores[end - 1] - their_scores[end] <= tie:
            end += 1
        if truncated and end == n and end - start > 1:
            break
        theirs = list(range(start, end))
        for i in range(start, end):
            match = [j for j in theirs
                     if np.abs(our_boxes[i] - their_boxes[j]).max() <= box_atol
                     and all(np.array_equal(o[i], t[j]) if o.dtype.kind in "iub" else
                             np.abs(o[i] - t[j]).max() <= a for o, t, a in extra)]
            assert match, (f"row {i}: box {our_boxes[i]} score {our_scores[i]} matches none of rows {start}..{end - 1}"
                           f" of torchvision: {their_boxes[start:end]}")
            theirs.remove(match[0])
        start = end
