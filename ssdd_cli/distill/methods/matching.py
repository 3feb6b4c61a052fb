"""What the DM family (dm, datadam, iid, dsdm, idm) shares as methods: labelled images per class.

Each of them distills IPC images for every class of a labelled source, needs no teacher, spends
the budget as IPC = ⌊N·c·h·w / (classes·c·h·w)⌋ images per class (`budget.class_budget`; with
labels counted, one float more per image), optimises with SGD and momentum 0.5 at a constant lr,
and writes a raw-image artifact with `images` (normalised) and `labels`. DSDM and IDM store
multi-formation images (factor l): the artifact holds exactly the IPC images per class that are
counted, and readers decode each into l² training images (`distill.labelled.decode_tiles`).

Settings that the papers tie to IPC (an lr, a loss weight) are filled in by `resolve` once the
budget's IPC is known, unless the user gave them.

The scale features of the KRR methods (issue 14) and this family: the matching networks run in
float32 whatever `--precision` asks (`uses_precision` False; the manifest records fp32), and the
KRR options `--chunk` and `--pool-full-batch` are not theirs (refused, naming the option, as any
option a method does not take). Under torchrun every rank computes the whole loss (the objective
is not `sharded`) and the engine averages the gradients: correct, with no speed-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ssdd_cli.budget import BudgetReport, ImageShape, class_budget
from ssdd_cli.bundle.manifest import RawImages
from ssdd_cli.distill.engine import OuterConfig
from ssdd_cli.distill.inputs import DistillInputs
from ssdd_cli.distill.labelled import LabelledSet, to_pixels
from ssdd_cli.distill.methods.base import Export, Method
from ssdd_cli.distill.objectives.classes import ClassSampler
from ssdd_cli.distill.objectives.matching import HeldOut, MatchingConfig, MatchingObjective, MatchTerm
from ssdd_cli.distill.param import DistilledModule
from ssdd_cli.errors import BudgetError, UsageError
from ssdd_cli.presets import Preset
from ssdd_cli.progress import Callback

INITS = ("real", "first-tiles", "real-tiles")


def sgd(steps: int, lr: float) -> OuterConfig:
    """SGD with momentum 0.5, no weight decay, constant lr: every DM-family paper's image optimiser."""
    return OuterConfig(steps=steps, lr=lr, weight_decay=0.0, optimizer="sgd", momentum=0.5,
                       schedule="constant")


def classes_of(preset: Preset, method: str) -> int:
    """The source's classes (the preset carries the loaded source's); an error without them."""
    if preset.classes is None:
        raise UsageError(f"{method} distills class by class, and the source's classes are unknown; "
                         "use a labelled source.", option="source")
    return preset.classes


def matching_defaults(preset: Preset, method: str, steps: int) -> tuple[int, MatchingConfig]:
    """The preset's iteration count for `method` (else the paper's `steps`) and the shared loop's
    settings with the preset's real batch (else the papers' 256)."""
    p = preset.matching
    return p.steps.get(method, steps), MatchingConfig(real_batch=p.real_batch or 256)


@dataclass(frozen=True)
class LabelledConfig:
    """The distilled set of a DM-family method.

    N: budget in images; classes: the source's classes; count_targets: charge one float per
    label (the papers do not). factor: multi-formation l (1: plain images). init: "real" (random
    real images of the class, DM), "first-tiles" (the class's first l²·IPC images, resized by
    nearest neighbour into l×l tiles: IDC/DSDM), "real-tiles" (random real images bilinearly
    downscaled into the tiles: IDM). pixel_space: optimise [0, 1] pixels, clamped (IDC/DSDM).
    width: the matching DC ConvNet's width at every block (DC: 128). match: the shared loop.
    """

    N: int
    classes: int
    count_targets: bool = False
    factor: int = 1
    init: str = "real"
    pixel_space: bool = False
    width: int = 128
    match: MatchingConfig = field(default_factory=MatchingConfig)

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise UsageError(f"unknown initialisation {self.init!r}; choose one of: {', '.join(INITS)}.",
                             option="init")
        if self.factor < 1:
            raise UsageError(f"the multi-formation factor must be at least 1, got {self.factor}.",
                             option="factor")


L = TypeVar("L", bound=LabelledConfig)


class MatchingMethod(Method[L]):
    """Base of the DM family: budget, initialisation and export of a `LabelledSet`."""

    needs_teacher = False
    needs_labels = True
    keeps_labels = True
    uses_precision = False  # the matching networks run in float32 (module docstring)
    min_samples: ClassVar[int] = 1  # decoded synthetic images per class the loss needs
    options: ClassVar[dict[str, str]] = {"count_targets": "count_targets", "steps": "outer.steps",
                                         "lr": "outer.lr", "checkpoint_every": "outer.checkpoint_every",
                                         "batch_size": "match.real_batch", "dsa": "match.dsa"}

    def configure(self, preset: Preset, N: int, d_y: int, **options: Any) -> L:
        """`Method.configure`, then the settings the papers tie to IPC (`resolve`)."""
        config = super().configure(preset, N, d_y, **options)
        shape = ImageShape(preset.channels, preset.resolution, preset.resolution)
        ipc = self.plan(config, shape, d_y).per_class
        assert ipc is not None
        given = {name for name, value in options.items() if value is not None}
        return self.resolve(config, preset, ipc, given)

    def resolve(self, config: L, preset: Preset, ipc: int, given: set[str]) -> L:
        """The config with the defaults that depend on IPC or on other settings; `given`: the
        options the user set (left alone)."""
        return config

    def plan(self, config: L, shape: ImageShape, d_y: int) -> BudgetReport:
        report = class_budget(config.N, shape, config.classes, count_targets=config.count_targets)
        assert report.per_class is not None
        decoded = report.per_class * config.factor**2
        if decoded < self.min_samples:
            ipc = math.ceil(self.min_samples / config.factor**2)
            need = math.ceil(config.classes * ipc * (shape.floats + config.count_targets) / shape.floats)
            raise BudgetError(f"{self.name} matches a covariance, which needs at least {self.min_samples} "
                              f"synthetic images per class, but N = {config.N} buys {decoded}; "
                              f"use N ≥ {need}.", option="budget")
        if shape.height % config.factor or shape.width % config.factor:
            raise UsageError(f"{shape.height}×{shape.width} images do not split into {config.factor}×"
                             f"{config.factor} tiles; use a factor that divides the resolution.",
                             option="factor")
        return report

    def objective(self, config: L, term: MatchTerm, sampler: ClassSampler,
                  inputs: DistillInputs) -> MatchingObjective:
        """The shared loop around `term`, with the held-out signal when validation labels exist."""
        held_out = None
        if inputs.held_out is not None and inputs.held_out_labels is not None and len(inputs.held_out):
            held_out = HeldOut(inputs.held_out, inputs.held_out_labels, config.classes, config.width)
        return MatchingObjective(config.match, term, sampler, inputs.generator, held_out)

    def sampler(self, config: L, inputs: DistillInputs) -> ClassSampler:
        if inputs.labels is None:
            raise UsageError(f"{self.name} distills class by class and needs a labelled source.",
                             option="source")
        return ClassSampler(inputs.images, inputs.labels, config.classes)

    def init(self, config: L, plan: BudgetReport, inputs: DistillInputs) -> DistilledModule:
        ipc, f = plan.m // config.classes, config.factor
        sampler = self.sampler(config, inputs)
        images = torch.cat([self._init_class(config, sampler, c, ipc, inputs.generator)
                            for c in range(config.classes)])
        pixel = None
        if config.pixel_space:
            if inputs.mean is None or inputs.std is None:
                raise ValueError("pixel-space distillation needs the source's mean and std")
            pixel = (inputs.mean, inputs.std)
            images = to_pixels(images, inputs.mean, inputs.std)
        return LabelledSet(images, config.classes, f, pixel).to(inputs.device)

    def _init_class(self, config: L, sampler: ClassSampler, c: int, ipc: int,
                    generator: torch.Generator) -> Tensor:
        f = config.factor
        first = config.init == "first-tiles"  # IDC: the class's first images in source order
        if f == 1:
            return _short(sampler.first(c, ipc) if first else sampler.sample(c, ipc, generator), ipc, c)
        if config.init == "real":
            return _short(sampler.sample(c, ipc, generator), ipc, c)
        if first:  # IDC: tile t of the IPC images from the first images t·IPC … (t+1)·IPC − 1
            parts = _short(sampler.first(c, f * f * ipc), f * f * ipc, c).split(ipc)
        else:  # IDM: each tile from its own random draw of IPC real images
            parts = tuple(_short(sampler.sample(c, ipc, generator), ipc, c) for _ in range(f * f))
        h, w = sampler.images.shape[2:]
        th, tw = h // f, w // f
        out = parts[0].new_empty(ipc, parts[0].shape[1], h, w)
        for t, part in enumerate(parts):
            i, j = divmod(t, f)
            if first:  # IDC resizes with F.interpolate's default, nearest neighbour
                small = F.interpolate(part, size=(th, tw), mode="nearest")
            else:  # IDM downscales bilinearly
                small = F.interpolate(part, size=(th, tw), mode="bilinear", align_corners=False)
            out[:, :, i * th:(i + 1) * th, j * tw:(j + 1) * tw] = small
        return out

    def finalize(self, distilled: DistilledModule, config: L, generator: torch.Generator,
                 callback: Callback) -> Export:
        assert isinstance(distilled, LabelledSet)
        images = distilled.stored()
        return Export({"images": images, "labels": distilled.labels.detach().clone()},
                      raw=RawImages(m=images.shape[0], labels=True, factor=config.factor))


def _short(images: Tensor, n: int, c: int) -> Tensor:
    if images.shape[0] < n:
        raise BudgetError(f"class {c} of the source has {images.shape[0]} training images but the "
                          f"initialisation needs {n}; lower the budget.", option="budget")
    return images
