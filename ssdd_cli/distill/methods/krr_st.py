"""Raw-image methods: X_s (m, c, h, w) and Y_s (m, d_y) stored as they are, no bases.

`RawImageMethod` holds what they share (the raw-image budget, the initial selection of real
images with their teacher targets, the artifact's tensors); KRR-ST (Lee et al. 2024) optimises
X_s and Y_s with the KRR outer loss, the selection baselines in `select.py` keep them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from ssdd_cli.budget import BudgetReport, ImageShape, raw_budget
from ssdd_cli.bundle.manifest import RawImages
from ssdd_cli.distill.engine import OuterConfig
from ssdd_cli.distill.inputs import DistillInputs
from ssdd_cli.distill.methods.base import Export, Method, Optimization, register_method
from ssdd_cli.distill.objectives.krr import KRRConfig, KRRObjective
from ssdd_cli.distill.param import DistilledModule, RawSet
from ssdd_cli.distill.pool import PoolConfig
from ssdd_cli.presets import Preset
from ssdd_cli.progress import Callback

# The options of the KRR outer loss and its optimiser, shared by `ssdd` and `krr-st`.
KRR_OPTIONS = {"steps": "outer.steps", "lr": "outer.lr", "weight_decay": "outer.weight_decay",
               "lr_images": "outer.lr_images", "lr_targets": "outer.lr_targets",
               "checkpoint_every": "outer.checkpoint_every", "probe_every": "outer.probe_every",
               "probe_steps": "outer.probe_steps",
               "batch_size": "krr.batch_size", "real_aug": "krr.real_aug", "real_bank": "krr.real_bank",
               "ridge": "krr.ridge",
               "pool_size": "krr.pool.size", "pool_steps": "krr.pool.max_steps",
               "pool_reset": "krr.pool.reset", "chunk": "krr.chunk", "pool_full_batch": "krr.pool.full_batch"}


def krr_defaults(preset: Preset, method: str = "ssdd") -> tuple[KRRConfig, OuterConfig]:
    """The preset's KRR outer loss (real batch, pool) and outer optimiser (steps, lr), the
    latter from `method`'s own record in the preset where it has one (`Preset.methods`)."""
    d = preset.distill
    own = preset.method(method)
    pool = PoolConfig(size=d.pool_size, max_steps=d.pool_max_steps, arch=d.inner_arch,
                      arch_kwargs=dict(d.inner_kwargs))
    outer = OuterConfig(steps=d.steps if own.steps is None else own.steps,
                        lr=d.lr if own.lr is None else own.lr)
    return KRRConfig(real_aug=d.real_aug, batch_size=d.real_batch, pool=pool), outer


@dataclass(frozen=True)
class RawConfig:
    """N: the budget in images. count_targets: charge the targets to the budget (the papers do not)."""

    N: int
    count_targets: bool = False


class RawImageMethod(Method[Any]):
    """A method whose artifact is m real-shaped images with their targets; `select` picks them."""

    options: ClassVar[dict[str, str]] = {"count_targets": "count_targets"}

    def defaults(self, preset: Preset, N: int, d_y: int) -> Any:
        return RawConfig(N)

    def plan(self, config: Any, shape: ImageShape, d_y: int) -> BudgetReport:
        return raw_budget(config.N, shape, count_targets=config.count_targets, target_floats=d_y)

    def select(self, config: Any, inputs: DistillInputs, m: int) -> Tensor:
        """Indices of the m source images to start from (default: uniformly at random)."""
        return torch.randperm(inputs.images.shape[0], generator=inputs.generator)[:m]

    def init(self, config: Any, plan: BudgetReport, inputs: DistillInputs) -> DistilledModule:
        idx = self.select(config, inputs, plan.m).to(inputs.images.device)
        targets = inputs.require_teacher().features()[idx]
        return RawSet(inputs.images[idx], targets, self.labels_of(inputs, idx))

    def labels_of(self, inputs: DistillInputs, idx: Tensor) -> Tensor | None:
        """The class labels of the kept source images, for a selection (`keeps_labels`: it keeps
        real images, where KRR-ST changes them) from a labelled source."""
        return inputs.labels[idx] if self.keeps_labels and inputs.labels is not None else None

    def finalize(self, distilled: DistilledModule, config: Any, generator: torch.Generator,
                 callback: Callback) -> Export:
        assert isinstance(distilled, RawSet)
        tensors = {"images": distilled.x.detach(), "targets": distilled.y.detach()}
        if distilled.labels is not None:
            tensors["labels"] = distilled.labels
        return Export(tensors, raw=RawImages(m=distilled.x.shape[0], target_dim=distilled.y.shape[1],
                                             labels=distilled.labels is not None))


@dataclass(frozen=True)
class KRRSTConfig(RawConfig):
    krr: KRRConfig = field(default_factory=KRRConfig)
    outer: OuterConfig = field(default_factory=lambda: OuterConfig(steps=30_000))


@register_method
class KRRST(RawImageMethod):
    """KRR-ST: m random real images and their teacher targets, optimised by the KRR outer loss."""

    name = "krr-st"
    summary = "raw images and targets optimised by the KRR outer loss (Lee et al. 2024)"
    options = {**RawImageMethod.options, **KRR_OPTIONS}

    def defaults(self, preset: Preset, N: int, d_y: int) -> KRRSTConfig:
        """KRR-ST's own schedule (its paper: 160,000 steps, lr 1e-3 on CIFAR-100, 1e-5 on
        TinyImageNet and ImageNet) where the preset records one; the embedded presets run it
        with SSDD's schedule, so the two compare at equal steps."""
        krr, outer = krr_defaults(preset, self.name)
        return KRRSTConfig(N, krr=krr, outer=outer)

    def optimization(self, config: KRRSTConfig, inputs: DistillInputs) -> Optimization:
        return Optimization(KRRObjective(config.krr, inputs), config.outer)
