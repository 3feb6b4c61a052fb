"""SSDD: parameterised images and representations, predefined augmentations, approximation nets."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ssdd_cli.budget import BudgetReport, ImageShape, ssdd_budget
from ssdd_cli.bundle.manifest import Approx, Augmentations
from ssdd_cli.bundle.manifest import Parameterization as ParamInfo
from ssdd_cli.distill.approx import ApproxConfig, fit_approx
from ssdd_cli.distill.augment import Augmentation, get_augmentation
from ssdd_cli.distill.methods.base import InitInputs, MethodOptions, register_method
from ssdd_cli.distill.param import (
    DistilledModule,
    Parameterization,
    UncenteredPCA,
    downsample,
    reconstruct_images,
)


def init_parameterization(inputs: InitInputs, m: int, U: int, V: int, scale: int,
                          augmentation: Augmentation) -> Parameterization:
    """SSDD §3.2–3.3 initialisation: principal directions and projections of m random images."""
    images, feats = inputs.images, inputs.features
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
    return Parameterization(image_bases, image_coeffs, repr_pca.components_, repr_coeffs, aug_coeffs, scale)


@register_method
class SSDD:
    name = "ssdd"
    optimized = True

    def plan(self, options: MethodOptions, shape: ImageShape, d_y: int) -> BudgetReport:
        return ssdd_budget(options.N, options.U, options.V, shape, scale=options.scale, feature_dim=d_y,
                           hidden=options.hidden, A=self.augmentation(options).A)

    def augmentation(self, options: MethodOptions) -> Augmentation:
        return get_augmentation(options.aug)

    def init(self, options: MethodOptions, report: BudgetReport, inputs: InitInputs) -> DistilledModule:
        return init_parameterization(inputs, report.m, options.U, options.V, options.scale,
                                     self.augmentation(options))

    def finish(self, distilled: nn.Module, options: MethodOptions, generator: torch.Generator
               ) -> tuple[dict[str, Tensor], dict[str, Any]]:
        assert isinstance(distilled, Parameterization)
        aug = self.augmentation(options)
        tensors = {"image.bases": distilled.image_bases.detach(),
                   "image.coeffs": distilled.image_coeffs.detach(),
                   "repr.bases": distilled.repr_bases.detach(),
                   "repr.coeffs": distilled.repr_coeffs.detach()}
        fields: dict[str, Any] = {
            "parameterization": ParamInfo(m=distilled.m, U=options.U, V=options.V, scale=options.scale,
                                          feature_dim=distilled.repr_bases.shape[1]),
            "augmentations": Augmentations(name=aug.name, views=list(aug.views)),
        }
        if aug.A:
            fit = fit_approx(distilled.repr_coeffs, distilled.aug_coeffs,
                             ApproxConfig(hidden=options.hidden, steps=options.approx_steps), generator)
            for a, net in enumerate(fit.nets):
                tensors.update(net.export(a))
            fields["approx"] = Approx(hidden=options.hidden)
            fields["approx_mse"] = (fit.mse_before, fit.mse_after)
        return tensors, fields
