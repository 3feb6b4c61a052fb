"""SSDD: parameterised images and representations, predefined augmentations, approximation nets."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ssdd_cli.budget import BudgetReport, ImageShape, ssdd_budget
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
from ssdd_cli.presets import Preset
from ssdd_cli.progress import Callback


@dataclass(frozen=True)
class SSDDConfig:
    """N: budget in images; U, V: image and representation bases; scale: bases at (h/s, w/s);
    aug: the predefined augmentation (A views); approx: the networks Q_a and their fit."""

    N: int
    U: int
    V: int
    scale: int = 2
    aug: str = "rotate"
    approx: ApproxConfig = field(default_factory=ApproxConfig)
    krr: KRRConfig = field(default_factory=KRRConfig)
    outer: OuterConfig = field(default_factory=lambda: OuterConfig(steps=30_000))

    def __post_init__(self) -> None:
        get_augmentation(self.aug)  # an unknown name is refused here, naming the valid ones

    @property
    def augmentation(self) -> Augmentation:
        return get_augmentation(self.aug)


def init_parameterization(inputs: DistillInputs, m: int, U: int, V: int, scale: int,
                          augmentation: Augmentation) -> ParameterizedSet:
    """SSDD §3.2–3.3 initialisation: principal directions and projections of m random images."""
    images, feats = inputs.images, inputs.teacher.features()
    low = downsample(images, scale)  # (n, c, h/s, w/s)
    image_pca = UncenteredPCA(U).fit(low.flatten(1))
    repr_pca = UncenteredPCA(V).fit(feats)
    idx = torch.randperm(images.shape[0], generator=inputs.generator)[:m].to(images.device)
    image_coeffs = image_pca.transform(low[idx])
    repr_coeffs = repr_pca.transform(feats[idx])
    image_bases = image_pca.components_.reshape(U, *low.shape[1:])
    x_s = reconstruct_images(image_coeffs, image_bases, scale)
    aug_coeffs = torch.stack([repr_pca.transform(inputs.teacher(augmentation.view(x_s, a)))
                              for a in range(augmentation.A)]) if augmentation.A else \
        repr_coeffs.new_zeros(0, m, V)
    return ParameterizedSet(image_bases, image_coeffs, repr_pca.components_, repr_coeffs, aug_coeffs,
                            scale, augmentation)


@register_method
class SSDD(Method[SSDDConfig]):
    name = "ssdd"
    summary = "bases and coefficients, predefined augmentations, approximation networks (SSDD)"
    options = {"U": "U", "V": "V", "scale": "scale", "aug": "aug", "hidden": "approx.hidden",
               "approx_steps": "approx.steps", **KRR_OPTIONS}

    def defaults(self, preset: Preset, N: int, d_y: int) -> SSDDConfig:
        row = preset.budgets.row(N, preset.base_dim, d_y)
        krr, outer = krr_defaults(preset, self.name)
        return SSDDConfig(N, row.U, row.V, preset.distill.scale,
                          approx=ApproxConfig(hidden=preset.distill.hidden), krr=krr, outer=outer)

    def plan(self, config: SSDDConfig, shape: ImageShape, d_y: int) -> BudgetReport:
        return ssdd_budget(config.N, config.U, config.V, shape, scale=config.scale, feature_dim=d_y,
                           hidden=config.approx.hidden, A=config.augmentation.A)

    def init(self, config: SSDDConfig, plan: BudgetReport, inputs: DistillInputs) -> DistilledModule:
        return init_parameterization(inputs, plan.m, config.U, config.V, config.scale, config.augmentation)

    def optimization(self, config: SSDDConfig, inputs: DistillInputs) -> Optimization:
        return Optimization(KRRObjective(config.krr, inputs), config.outer)

    def finalize(self, distilled: DistilledModule, config: SSDDConfig, generator: torch.Generator,
                 callback: Callback) -> Export:
        """The bases and coefficients; C^y_a is replaced by the fitted Q_a (SSDD §3.3)."""
        assert isinstance(distilled, ParameterizedSet)
        aug = config.augmentation
        tensors = {"image.bases": distilled.image_bases.detach(),
                   "image.coeffs": distilled.image_coeffs.detach(),
                   "repr.bases": distilled.repr_bases.detach(),
                   "repr.coeffs": distilled.repr_coeffs.detach()}
        layout = Parameterization(m=distilled.m, U=config.U, V=config.V, scale=config.scale,
                                  feature_dim=distilled.repr_bases.shape[1])
        views = Augmentations(name=aug.name, views=list(aug.views))
        if not aug.A:
            return Export(tensors, parameterization=layout, augmentations=views)
        fit = fit_approx(distilled.repr_coeffs, distilled.aug_coeffs, config.approx, generator, callback)
        for a, net in enumerate(fit.nets):
            tensors.update(net.export(a))
        return Export(tensors, parameterization=layout, augmentations=views,
                      approx=Approx(hidden=config.approx.hidden), approx_fit=fit)
