"""Learning-rate schedules as pure functions of (step, total) -> factor of the base rate.

Every loop sets `lr = base · factor(step, total)` before its optimiser step, so a resumed run
needs no scheduler state: the step count is the whole state (nanoGPT's `get_lr`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ssdd_cli.registry import Registry

Schedule = Callable[[int, int], float]

SCHEDULES: Registry[Schedule] = Registry("learning-rate schedule", option="schedule")


@SCHEDULES.register("constant")
def constant(step: int, total: int) -> float:
    """1 throughout (the SSDD paper's pretraining: lr "maintained at 0.1")."""
    return 1.0


@SCHEDULES.register("cosine")
def cosine(step: int, total: int) -> float:
    """½(1 + cos(π·step/total)): from 1 at step 0 to 0 at `total` (and after)."""
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / max(1, total))))


@SCHEDULES.register("linear")
def linear(step: int, total: int) -> float:
    """1 − step/total: linear decay from 1 to 0 (the distillation's outer AdamW)."""
    return 1.0 - step / max(1, total)


@SCHEDULES.register("step")
def step_half(step: int, total: int) -> float:
    """1 for the first half of `total`, then 0.1: the DM family's evaluation (DC's
    `evaluate_synset`: lr ×0.1 once, at half of the epochs)."""
    return 1.0 if 2 * step < total else 0.1


def warmup_cosine(warmup: int, start: float | None = None) -> Schedule:
    """Linear warm-up over `warmup` steps, then cosine from 1 to 0 over the rest.

    start None: the warm-up factor is (step+1)/warmup. start s: it rises linearly from s at step 0
    to 1 at step warmup−1 (solo-learn's `LinearWarmupCosineAnnealingLR` stepped per batch, whose
    `warmup_start_lr` is s·lr).
    """

    def schedule(step: int, total: int) -> float:
        if step < warmup:
            if start is None:
                return (step + 1) / warmup
            return start + (1.0 - start) * step / max(1, warmup - 1)
        return cosine(step - warmup, total - warmup)

    return schedule


def set_lr(optimizer: torch.optim.Optimizer, base: float, factor: float) -> None:
    """Set every parameter group's learning rate to its own base (`group["base_lr"]`, else
    `base`)·factor."""
    for group in optimizer.param_groups:
        group["lr"] = group.get("base_lr", base) * factor
