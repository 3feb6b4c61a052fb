"""LARS: SGD with a layer-wise trust ratio (You et al., 2017), as solo-learn trains Barlow Twins.

solo-learn's CIFAR recipe (the SSDD paper's teacher) runs LARS at lr 0.3 for a batch of 256,
eta 0.02, `clip_lr`, with biases and normalisation parameters excluded from both the adaptation
and the weight decay. Per parameter tensor p with gradient g, weight decay λ, momentum μ:

    adapted (p.ndim > 1, or `exclude_bias_n_norm` off), ‖p‖ ≠ 0 and ‖g‖ ≠ 0:
        ρ = η·‖p‖ / (‖g‖ + λ·‖p‖ + ε)          (eq. 6 of the LARS paper)
        ρ ← min(ρ / lr, 1)                      with `clip_lr` (LARC's clipping)
        d = ρ·(g + λ·p)
    otherwise:
        d = g                                   (no weight decay either)
    v ← μ·v + d      (v = d at the first step)
    p ← p − lr·v

This is exactly solo-learn's `solo/utils/lars.py` (itself Lightning Bolts'), without Nesterov and
dampening, which its recipes never use. A tensor whose norm or gradient norm is zero (e.g. a
BatchNorm weight initialised to zero) takes a plain SGD step without weight decay, as there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor


class LARS(torch.optim.Optimizer):
    """LARS over `params` (see the module docstring for the update).

    lr: the (scheduled) learning rate; eta: the trust coefficient η; clip_lr: clip ρ/lr at 1;
    exclude_bias_n_norm: 1-D tensors (biases, BatchNorm/LayerNorm scales and shifts) skip the
    adaptation and the weight decay.
    """

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, eta: float = 1e-3, eps: float = 1e-8,
                 clip_lr: bool = False, exclude_bias_n_norm: bool = False) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ValueError(f"invalid LARS settings: lr {lr}, momentum {momentum}, "
                             f"weight_decay {weight_decay}, eta {eta}")
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta,
                    "eps": eps, "clip_lr": clip_lr, "exclude_bias_n_norm": exclude_bias_n_norm}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad, group)
        return loss

    def _update(self, p: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        lr, wd = group["lr"], group["weight_decay"]
        d = grad
        if p.ndim > 1 or not group["exclude_bias_n_norm"]:
            p_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(grad)
            if p_norm != 0 and g_norm != 0:
                ratio = group["eta"] * p_norm / (g_norm + wd * p_norm + group["eps"])
                if group["clip_lr"]:
                    ratio = torch.clamp(ratio / lr, max=1.0) if lr > 0 else torch.ones_like(ratio)
                d = (grad + wd * p) * ratio
        if group["momentum"] != 0:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = d.detach().clone()
            else:
                state["momentum_buffer"].mul_(group["momentum"]).add_(d)
            d = state["momentum_buffer"]
        p.add_(d, alpha=-lr)
