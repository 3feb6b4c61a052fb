"""KRR-ST: raw distilled images X_s and targets Y_s, no bases, no augmentations (Lee et al. 2024)."""

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
    """X_s (m, c, h, w) and Y_s (m, d_y), both learnable, initialised from m random real images."""

    def __init__(self, images: Tensor, targets: Tensor) -> None:
        super().__init__()
        self.x = nn.Parameter(images.clone())
        self.y = nn.Parameter(targets.clone())

    def images(self) -> Tensor:
        return self.x

    def targets(self) -> Tensor:
        return self.y


@register_method
class KRRST:
    name = "krr-st"

    def plan(self, options: MethodOptions, shape: ImageShape, d_y: int) -> BudgetReport:
        return raw_budget(options.N, shape, count_targets=options.count_targets, target_floats=d_y)

    def augmentation(self, options: MethodOptions) -> Augmentation:
        return get_augmentation("none")

    def init(self, options: MethodOptions, report: BudgetReport, inputs: InitInputs) -> DistilledModule:
        idx = torch.randperm(inputs.images.shape[0], generator=inputs.generator)[: report.m]
        idx = idx.to(inputs.images.device)
        return RawDistilled(inputs.images[idx], inputs.features[idx])

    def finish(self, distilled: nn.Module, options: MethodOptions, generator: torch.Generator
               ) -> tuple[dict[str, Tensor], dict[str, Any]]:
        assert isinstance(distilled, RawDistilled)
        tensors = {"images": distilled.x.detach(), "targets": distilled.y.detach()}
        return tensors, {"raw": RawImages(m=distilled.x.shape[0], target_dim=distilled.y.shape[1])}
