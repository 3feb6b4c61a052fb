"""Raw-image methods: X_s (m, c, h, w) and Y_s (m, d_y) stored as they are, no bases.

`RawImageMethod` holds what they share (the raw-image budget, no augmentation, the artifact's
tensors); KRR-ST (Lee et al. 2024) optimises X_s and Y_s with the outer loop, the selection
baselines in `select.py` only choose real images.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ssdd_cli.budget import BudgetReport, ImageShape, raw_budget
from ssdd_cli.bundle.manifest import RawImages
from ssdd_cli.distill.augment import Augmentation, get_augmentation
from ssdd_cli.distill.methods.base import InitInputs, MethodOptions, register_method
from ssdd_cli.distill.param import DistilledModule


class RawDistilled(DistilledModule):
    """X_s (m, c, h, w) and Y_s (m, d_y), both learnable."""

    def __init__(self, images: Tensor, targets: Tensor) -> None:
        super().__init__()
        self.x = nn.Parameter(images.clone())
        self.y = nn.Parameter(targets.clone())

    def images(self) -> Tensor:
        return self.x

    def targets(self) -> Tensor:
        return self.y


class RawImageMethod:
    """A method whose artifact is m real-shaped images with their targets; `select` picks them."""

    name = ""
    optimized = False

    def plan(self, options: MethodOptions, shape: ImageShape, d_y: int) -> BudgetReport:
        return raw_budget(options.N, shape, count_targets=options.count_targets, target_floats=d_y)

    def augmentation(self, options: MethodOptions) -> Augmentation:
        return get_augmentation("none")

    def select(self, inputs: InitInputs, m: int) -> Tensor:
        """Indices of the m source images to start from (default: uniformly at random)."""
        return torch.randperm(inputs.images.shape[0], generator=inputs.generator)[:m]

    def init(self, options: MethodOptions, report: BudgetReport, inputs: InitInputs) -> DistilledModule:
        idx = self.select(inputs, report.m).to(inputs.images.device)
        return RawDistilled(inputs.images[idx], inputs.features[idx])

    def finish(self, distilled: DistilledModule, options: MethodOptions, generator: torch.Generator
               ) -> tuple[dict[str, Tensor], dict[str, Any]]:
        assert isinstance(distilled, RawDistilled)
        tensors = {"images": distilled.x.detach(), "targets": distilled.y.detach()}
        return tensors, {"raw": RawImages(m=distilled.x.shape[0], target_dim=distilled.y.shape[1])}


@register_method
class KRRST(RawImageMethod):
    """KRR-ST: m random real images and their teacher targets, then optimised by the outer loop."""

    name = "krr-st"
    optimized = True
