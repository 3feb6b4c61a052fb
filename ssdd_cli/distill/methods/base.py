"""The `Method` contract and its registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ssdd_cli.budget import BudgetReport, ImageShape
from ssdd_cli.distill.augment import Augmentation
from ssdd_cli.distill.param import DistilledModule
from ssdd_cli.errors import UsageError


@dataclass(frozen=True)
class MethodOptions:
    """The method-level choices of a distillation (from the CLI or a preset)."""

    N: int
    U: int
    V: int
    scale: int
    aug: str
    hidden: int
    count_targets: bool = False
    approx_steps: int = 3000
    cap_bases: bool = False  # preset bases: cap V at d_y (the paper's "unless this exceeds the dims")


@dataclass(frozen=True)
class InitInputs:
    """What initialisation may look at: the normalised source and its teacher features."""

    images: Tensor  # (n, c, h, w) normalised source images (on the device)
    features: Tensor  # (n, d_y) teacher features g(X_t)
    teacher: Callable[[Tensor], Tensor]  # normalised images -> (B, d_y), no grad
    generator: torch.Generator


class Method(Protocol):
    name: str
    optimized: bool  # False for selection baselines: no pool, no outer loop

    def plan(self, options: MethodOptions, shape: ImageShape, d_y: int) -> BudgetReport:
        """The budget and the number of distilled images m."""
        ...

    def augmentation(self, options: MethodOptions) -> Augmentation: ...

    def init(self, options: MethodOptions, report: BudgetReport, inputs: InitInputs) -> DistilledModule:
        """The learnable distilled set (with `images()` and `targets()`)."""
        ...

    def finish(self, distilled: nn.Module, options: MethodOptions, generator: torch.Generator
               ) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The artifact tensors and the manifest fields this method sets."""
        ...


_METHODS: dict[str, Method] = {}


def register_method(cls: type[Any]) -> type[Any]:
    instance = cls()
    _METHODS[instance.name] = instance
    return cls


def get_method(name: str) -> Method:
    if name not in _METHODS:
        raise UsageError(f"unknown --method {name!r}; choose one of {', '.join(_METHODS)}.")
    return _METHODS[name]


def list_methods() -> list[str]:
    return list(_METHODS)
