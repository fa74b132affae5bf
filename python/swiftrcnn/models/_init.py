"""torchvision's parameter initialisation of its detectors, from a seed (private; the builders use it).

`initial_state` gives the state dict torchvision's `fasterrcnn_resnet50_fpn` / `maskrcnn_resnet50_fpn` constructor
gives a model built for pretrained weights (FrozenBatchNorm2d), every tensor drawn from torchvision's distribution for
it with values from our seeded generator (torch's draws cannot be reproduced; their distributions are):

- ResNet convolutions: kaiming_normal_(mode="fan_out", nonlinearity="relu"); frozen norms: weight 1, bias 0,
  running_mean 0, running_var 1.
- FPN convolutions: kaiming_uniform_(a=1), bias 0. RPN head convolutions: normal_(std=0.01), bias 0.
- Box head (fc6, fc7) and predictor (cls_score, bbox_pred): nn.Linear's defaults, U(±1/sqrt(fan_in)).
- Mask head convolutions: kaiming_normal_(mode="fan_out", nonlinearity="relu"), bias 0. Mask predictor (conv5_mask,
  mask_fcn_logits): the same for the weights, the layers' default U(±1/sqrt(fan_in)) for the biases.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from .. import _C
from ..ops._array import as_int

# srcnn_model_kind of each model name.
_KINDS = {"faster": 0, "mask": 1}


def initial_state(kind: Literal["faster", "mask"], num_classes: int, seed: int = 0,
                  predictors_only: bool = False, architecture: str | None = None) -> dict[str, npt.NDArray[np.float32]]:
    """A state dict initialised as torchvision initialises the model, from `seed`: {torchvision key: float32 array}.

    `kind`: "faster" (fasterrcnn_resnet50_fpn) or "mask" (maskrcnn_resnet50_fpn); `num_classes` (1 ... 2**20)
    including the background; `seed` in [0, 2**64). A tensor's values depend on the seed and its name alone, and
    not on the thread count: the same seed gives the same values. With `predictors_only`, only the tensors shaped by
    `num_classes`, which loading a checkpoint for another number of classes re-initialises:
    roi_heads.box_predictor.cls_score.{weight,bias}, roi_heads.box_predictor.bbox_pred.{weight,bias} and, for
    Mask R-CNN, roi_heads.mask_predictor.mask_fcn_logits.{weight,bias}. Keys come in sorted order; there is no
    num_batches_tracked (the norms are FrozenBatchNorm2d). `architecture`: the general builder's model as JSON
    (`FasterRCNN._architecture_json`), None for ResNet-50-FPN.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind: expected 'faster' or 'mask', got {kind!r}")
    num_classes = as_int(num_classes, "num_classes")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    if not 0 <= int(seed) < 1 << 64:
        raise ValueError(f"seed: {seed} is outside [0, 2**64)")
    result = _C.initial_state(_KINDS[kind], num_classes, int(seed), bool(predictors_only), architecture)
    state = {}
    for index, (name, code, shape) in enumerate(_C.arrays_info(result)):
        if code != _C.FLOAT32:
            raise RuntimeError(f"initial_state: {name} is not float32 (dtype code {code})")
        array = np.empty(shape, np.float32)
        _C.arrays_read(result, index, array)
        state[name] = array
    return state
