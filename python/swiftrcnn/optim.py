"""torch.optim for swiftrcnn models: SGD and the learning-rate schedule of torchvision's detection reference script.

    >>> model.train()
    >>> optimizer = swiftrcnn.optim.SGD(model.parameters(), lr=0.005, momentum=0.9, weight_decay=5e-4)
    >>> schedule = swiftrcnn.optim.WarmupMultiStepLR(optimizer, warmup_iters=100, milestones=[8, 11])
    >>> losses = model.train_step(images, targets, optimizer); schedule.step()

The update itself runs in Swift, on the parameters the model keeps there.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import _C
from .ops._array import as_int, as_real

__all__ = ["SGD", "WarmupMultiStepLR"]


class SGD:
    """torch.optim.SGD (no dampening, no Nesterov) over all trainable parameters of one model.

    d = grad + weight_decay * p; with momentum, buf = d on the first step and momentum * buf + d after, d = buf;
    p -= lr * d. `param_groups[0]["lr"]` may be changed between steps (as schedulers do)."""

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 dampening: float = 0.0, nesterov: bool = False) -> None:
        items = list(params)
        if not items:
            raise ValueError("params: optimizer got an empty parameter list")
        models = {id(getattr(p, "model", None)) for p in items}
        model = getattr(items[0], "model", None)
        if model is None or len(models) != 1:
            raise TypeError("params: expected the parameters of one swiftrcnn model (model.parameters())")
        names = {p.name for p in items}
        trainable = {p.name for p in model.parameters()}
        if names != trainable:
            raise ValueError(f"params: expected all {len(trainable)} trainable parameters of the model, got "
                             f"{len(names)}; freeze layers with trainable_backbone_layers instead")
        lr, momentum, weight_decay = (as_real(lr, "lr"), as_real(momentum, "momentum"),
                                      as_real(weight_decay, "weight_decay"))
        for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            if not value >= 0:
                raise ValueError(f"{name}: expected a number >= 0, got {value}")
        if dampening != 0 or nesterov:
            raise ValueError("dampening, nesterov: only SGD without dampening or Nesterov momentum is implemented")
        self.model = model
        self.param_groups: list[dict[str, Any]] = [{"params": items, "lr": lr, "initial_lr": lr, "momentum": momentum,
                              "weight_decay": weight_decay}]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Sets the gradients to zero (they are kept allocated whatever `set_to_none` says)."""
        del set_to_none
        self.model.zero_grad()

    def step(self) -> None:
        """One update of every parameter from its gradient."""
        g = self.param_groups[0]
        _C.trainer_sgd_step(self.model._get_trainer(), float(g["lr"]), float(g["momentum"]),
                            float(g["weight_decay"]))

    def state_dict(self) -> dict[str, Any]:
        """The hyperparameters, as JSON-ready values: {"lr", "initial_lr", "momentum", "weight_decay"}. The momentum
        buffers live with the parameters in the model: `model.training_state()` holds them."""
        g = self.param_groups[0]
        return {k: float(g[k]) for k in ("lr", "initial_lr", "momentum", "weight_decay")}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores `state_dict()`'s hyperparameters (ValueError naming a missing or negative one)."""
        values = {}
        for key in ("lr", "initial_lr", "momentum", "weight_decay"):
            if key not in state:
                raise ValueError(f"state: missing '{key}'")
            values[key] = as_real(state[key], f"state['{key}']")
            if not values[key] >= 0:
                raise ValueError(f"state['{key}']: expected a number >= 0, got {values[key]}")
        self.param_groups[0].update(values)


class WarmupMultiStepLR:
    """The schedule of torchvision's detection reference script: a linear warm-up from `warmup_factor` to 1 over
    the first `warmup_iters` iterations (torch's LinearLR, stepped per iteration), and the rate times `gamma` at
    each epoch in `milestones` (MultiStepLR, stepped per epoch). Call `step()` after every iteration and
    `step_epoch()` after every epoch; it sets `optimizer.param_groups[0]["lr"]`."""

    def __init__(self, optimizer: SGD, milestones: Sequence[int] = (16, 22), gamma: float = 0.1,
                 warmup_factor: float = 0.001, warmup_iters: int = 1000) -> None:
        self.optimizer = optimizer
        self.milestones = [as_int(m, "milestones") for m in milestones]
        self.gamma = as_real(gamma, "gamma")
        self.warmup_factor = as_real(warmup_factor, "warmup_factor")
        self.warmup_iters = as_int(warmup_iters, "warmup_iters")
        self.base_lr = float(optimizer.param_groups[0]["initial_lr"])
        self.iteration = 0
        self.epoch = 0
        self._apply()

    def get_lr(self) -> float:
        lr = self.base_lr * self.gamma ** sum(1 for m in self.milestones if self.epoch >= m)
        if self.iteration < self.warmup_iters:
            t = self.iteration / self.warmup_iters
            lr *= self.warmup_factor + (1 - self.warmup_factor) * t
        return lr

    def _apply(self) -> None:
        self.optimizer.param_groups[0]["lr"] = self.get_lr()

    def step(self) -> None:
        self.iteration += 1
        self._apply()

    def step_epoch(self) -> None:
        self.epoch += 1
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        """Where the schedule is and what it is, as JSON-ready values: {"base_lr", "milestones", "gamma",
        "warmup_factor", "warmup_iters", "iteration", "epoch"}."""
        return {"base_lr": self.base_lr, "milestones": list(self.milestones), "gamma": self.gamma,
                "warmup_factor": self.warmup_factor, "warmup_iters": self.warmup_iters,
                "iteration": self.iteration, "epoch": self.epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores `state_dict()` (every key required; ValueError naming a missing one) and sets the optimizer's
        rate from it, so the schedule continues where the saved one stopped."""
        missing = [k for k in ("base_lr", "milestones", "gamma", "warmup_factor", "warmup_iters", "iteration",
                               "epoch") if k not in state]
        if missing:
            raise ValueError(f"state: missing {', '.join(repr(k) for k in missing)}")
        self.base_lr = as_real(state["base_lr"], "state['base_lr']")
        self.milestones = [as_int(m, "state['milestones']") for m in state["milestones"]]
        self.gamma = as_real(state["gamma"], "state['gamma']")
        self.warmup_factor = as_real(state["warmup_factor"], "state['warmup_factor']")
        self.warmup_iters = as_int(state["warmup_iters"], "state['warmup_iters']")
        self.iteration = as_int(state["iteration"], "state['iteration']")
        self.epoch = as_int(state["epoch"], "state['epoch']")
        self._apply()
