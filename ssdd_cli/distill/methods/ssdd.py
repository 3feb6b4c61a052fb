"""SSDD: parameterised images and representations, predefined augmentations, approximation nets.

The paper's ablations are options of the same method: `init` (Table 4: bases and coefficients
from principal components and projections, from real images and Gaussian coefficients, or all
Gaussian), `aug="none"` (Table 3's "+ parameterisation" row: bases and coefficients, no views, no
Q_a) and `targets` (Table 11: how the augmented views' targets are stored).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ssdd_cli.budget import AUG_TARGETS, BudgetReport, ImageShape, ssdd_budget
from ssdd_cli.bundle.manifest import Approx, Augmentations, Parameterization
from ssdd_cli.distill.approx import ApproxConfig, fit_approx
from ssdd_cli.distill.augment import Augmentation, get_augmentation
from ssdd_cli.distill.engine import OuterConfig
from ssdd_cli.distill.inputs import DistillInputs
from ssdd_cli.distill.methods.base import Export, Method, Optimization, register_method
from ssdd_cli.distill.methods.krr_st import KRR_OPTIONS, krr_defaults
from ssdd_cli.distill.objectives.krr import KRRConfig, KRRObjective
from ssdd_cli.distill.param import (
    DistilledModule,
    ParameterizedSet,
    UncenteredPCA,
    downsample,
    reconstruct_images,
)
from ssdd_cli.errors import UsageError
from ssdd_cli.presets import Preset
from ssdd_cli.progress import Callback

INITS = ("pca", "real", "random")


@dataclass(frozen=True)
class SSDDConfig:
    """N: budget in images; U, V: image and representation bases; scale: bases at (h/s, w/s);
    aug: the predefined augmentation (A views); approx: the networks Q_a and their fit.
    init: "pca" (the method), "real" or "random" (Table 4; `init_parameterization`).
    targets: how the augmented views' targets are stored, "approx" (the method: Q_a), "same",
    "bias" or "ideal" (Table 11; `SSDD.finalize`); each is charged to the budget."""

    N: int
    U: int
    V: int
    scale: int = 2
    aug: str = "rotate"
    approx: ApproxConfig = field(default_factory=ApproxConfig)
    krr: KRRConfig = field(default_factory=KRRConfig)
    outer: OuterConfig = field(default_factory=lambda: OuterConfig(steps=30_000))
    init: str = "pca"
    targets: str = "approx"

    def __post_init__(self) -> None:
        get_augmentation(self.aug)  # an unknown name is refused here, naming the valid ones
        if self.init not in INITS:
            raise UsageError(f"unknown initialisation {self.init!r}; choose one of: {', '.join(INITS)}.",
                             option="init")
        if self.targets not in AUG_TARGETS:
            raise UsageError(f"unknown targets of the augmented views {self.targets!r}; choose one of: "
                             f"{', '.join(AUG_TARGETS)}.", option="targets")
        if self.targets != "approx" and not self.augmentation.A:
            raise UsageError(f"targets {self.targets!r} model augmented views, but augmentation "
                             f"{self.aug!r} has none; choose an augmentation or drop the targets.",
                             option="targets")

    @property
    def augmentation(self) -> Augmentation:
        return get_augmentation(self.aug)


def init_parameterization(inputs: DistillInputs, m: int, U: int, V: int, scale: int,
                          augmentation: Augmentation, init: str = "pca") -> ParameterizedSet:
    """The initial bases and coefficients: the method's (§3.2–3.3) or an ablation of Table 4.

    pca (III, the method): B^x (U, c, h/s, w/s) and B^y (V, d_y) are the top principal
        directions (uncentred, `UncenteredPCA`) of the downsampled source images and of their
        teacher features; C^x (m, U), C^y (m, V) the projections of m random source images and
        of their features; C^y_a (A, m, V) the projections of g(τ_a(X_s)), X_s = D(C^x B^x, s).
    real (II): B^x = U random source images, downsampled; B^y = the teacher features of V random
        source images ("bases initialised by random images drawn from the source"); C^x, C^y and
        C^y_a are drawn from N(0, 1).
    random (I): B^x, B^y, C^x, C^y and C^y_a all drawn from N(0, 1).
    Every draw comes from `inputs.generator` (on the CPU, then moved to the source's device).
    """
    if init != "pca":
        return _init_ablation(inputs, m, U, V, scale, augmentation, init)
    teacher = inputs.require_teacher()
    images, feats = inputs.images, teacher.features()
    low = downsample(images, scale)  # (n, c, h/s, w/s)
    image_pca = UncenteredPCA(U).fit(low.flatten(1))
    repr_pca = UncenteredPCA(V).fit(feats)
    idx = torch.randperm(images.shape[0], generator=inputs.generator)[:m].to(images.device)
    image_coeffs = image_pca.transform(low[idx])
    repr_coeffs = repr_pca.transform(feats[idx])
    image_bases = image_pca.components_.reshape(U, *low.shape[1:])
    x_s = reconstruct_images(image_coeffs, image_bases, scale)
    aug_coeffs = torch.stack([repr_pca.transform(teacher(augmentation.view(x_s, a)))
                              for a in range(augmentation.A)]) if augmentation.A else \
        repr_coeffs.new_zeros(0, m, V)
    return ParameterizedSet(image_bases, image_coeffs, repr_pca.components_, repr_coeffs, aug_coeffs,
                            scale, augmentation)


def _init_ablation(inputs: DistillInputs, m: int, U: int, V: int, scale: int,
                   augmentation: Augmentation, init: str) -> ParameterizedSet:
    """Table 4's rows I (`random`) and II (`real`); see `init_parameterization`."""
    images, g, device = inputs.images, inputs.generator, inputs.images.device
    c, h, w = images.shape[1], images.shape[2] // scale, images.shape[3] // scale
    d_y = inputs.require_teacher().d_y
    if init == "real":
        n = images.shape[0]
        if max(U, V) > n:
            raise UsageError(f"real-image bases need {max(U, V)} source images but the source has {n}; "
                             "use fewer bases.", option="init")
        image_bases = downsample(images[torch.randperm(n, generator=g)[:U].to(device)], scale)
        repr_bases = inputs.require_teacher().features()[torch.randperm(n, generator=g)[:V].to(device)]
    else:
        image_bases = torch.randn(U, c, h, w, generator=g).to(device)
        repr_bases = torch.randn(V, d_y, generator=g).to(device)
    image_coeffs = torch.randn(m, U, generator=g).to(device)
    repr_coeffs = torch.randn(m, V, generator=g).to(device)
    aug_coeffs = torch.randn(augmentation.A, m, V, generator=g).to(device)
    return ParameterizedSet(image_bases.contiguous(), image_coeffs, repr_bases.contiguous(), repr_coeffs,
                            aug_coeffs, scale, augmentation)


@register_method
class SSDD(Method[SSDDConfig]):
    name = "ssdd"
    summary = "bases and coefficients, predefined augmentations, approximation networks (SSDD)"
    options = {"U": "U", "V": "V", "scale": "scale", "aug": "aug", "hidden": "approx.hidden",
               "approx_steps": "approx.steps", "init": "init", "targets": "targets", **KRR_OPTIONS}

    def defaults(self, preset: Preset, N: int, d_y: int) -> SSDDConfig:
        row = preset.budgets.row(N, preset.base_dim, d_y)
        krr, outer = krr_defaults(preset, self.name)
        return SSDDConfig(N, row.U, row.V, preset.distill.scale,
                          approx=ApproxConfig(hidden=preset.distill.hidden), krr=krr, outer=outer)

    def plan(self, config: SSDDConfig, shape: ImageShape, d_y: int) -> BudgetReport:
        return ssdd_budget(config.N, config.U, config.V, shape, scale=config.scale, feature_dim=d_y,
                           hidden=config.approx.hidden, A=config.augmentation.A, targets=config.targets)

    def init(self, config: SSDDConfig, plan: BudgetReport, inputs: DistillInputs) -> DistilledModule:
        return init_parameterization(inputs, plan.m, config.U, config.V, config.scale, config.augmentation,
                                     config.init)

    def optimization(self, config: SSDDConfig, inputs: DistillInputs) -> Optimization:
        return Optimization(KRRObjective(config.krr, inputs), config.outer)

    def finalize(self, distilled: DistilledModule, config: SSDDConfig, generator: torch.Generator,
                 callback: Callback) -> Export:
        """The bases and coefficients, and the augmented views' targets as `config.targets` says
        (SSDD Table 11). The loop always learns C^y_a (A, m, V); the artifact then stores

            approx: Q_a fitted to C^y_a − C^y, C^y_a dropped (§3.3, the method);
            same:   nothing: every view's target is Y_s = C^y B^y;
            bias:   b_a = mean_i (C^y_a − C^y)_i (A, V), the least-squares constant shift, so a
                    view's target is (C^y + b_a) B^y;
            ideal:  C^y_a itself, a view's target being C^y_a B^y.

        The paper's MSE row of Table 11 compares these predictors of the same shift C^y_a − C^y.
        """
        assert isinstance(distilled, ParameterizedSet)
        aug = config.augmentation
        tensors = {"image.bases": distilled.image_bases.detach(),
                   "image.coeffs": distilled.image_coeffs.detach(),
                   "repr.bases": distilled.repr_bases.detach(),
                   "repr.coeffs": distilled.repr_coeffs.detach()}
        layout = Parameterization(m=distilled.m, U=config.U, V=config.V, scale=config.scale,
                                  feature_dim=distilled.repr_bases.shape[1])
        if not aug.A:
            return Export(tensors, parameterization=layout, augmentations=Augmentations(
                name=aug.name, views=list(aug.views)))
        views = Augmentations(name=aug.name, views=list(aug.views), targets=config.targets)  # type: ignore[arg-type]
        c_y, c_y_aug = distilled.repr_coeffs.detach(), distilled.aug_coeffs.detach()
        if config.targets == "bias":
            tensors["repr.aug_shift"] = (c_y_aug - c_y.unsqueeze(0)).mean(dim=1)
        elif config.targets == "ideal":
            tensors["repr.aug_coeffs"] = c_y_aug
        if config.targets != "approx":
            return Export(tensors, parameterization=layout, augmentations=views)
        fit = fit_approx(distilled.repr_coeffs, distilled.aug_coeffs, config.approx, generator, callback)
        for a, net in enumerate(fit.nets):
            tensors.update(net.export(a))
        return Export(tensors, parameterization=layout, augmentations=views,
                      approx=Approx(hidden=config.approx.hidden), approx_fit=fit)
