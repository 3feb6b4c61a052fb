"""`align`: label-free agreement of a backbone with the teacher (linear CKA and mapped MSE)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ssdd_cli.kit.seeding import cpu_generator
from ssdd_cli.train.cka import linear_cka
from ssdd_cli.train.protocols.base import EvalContext, ProtocolResult, register_protocol
from ssdd_cli.train.regression import DEFAULT_RIDGES, LinearMap, mean_squared_error


@dataclass(frozen=True)
class AlignConfig:
    """The ridge grid of the feature map (chosen on val) and at most `max_fit` train images to
    fit it (a fixed random subset beyond that, to bound the d×d solve)."""

    ridges: tuple[float, ...] = DEFAULT_RIDGES
    max_fit: int = 10_000


@register_protocol("align", config=AlignConfig, needs_labels=False, needs_teacher=True, uses_shots=False)
def align_protocol(ctx: EvalContext, config: AlignConfig, seed: int) -> list[ProtocolResult]:
    """Label-free agreement with the teacher on the target's test images: linear CKA and MSE.

    CKA compares the two feature spaces directly (any widths). MSE needs one space: an affine
    least-squares map from backbone to teacher features is fitted on the train split (ridge
    picked on val, see `LinearMap`), and the MSE of mapped test features against the teacher's
    is reported, in the teacher's feature units. Deterministic: the seed changes nothing.
    """
    cka = linear_cka(ctx.features("test"), ctx.features("test", teacher=True))
    n = ctx.images("train").shape[0]
    fit = torch.arange(n)
    if n > config.max_fit:  # a fixed subset, the same for every seed
        fit = torch.randperm(n, generator=cpu_generator(0))[:config.max_fit].sort().values
    fit = fit.to(ctx.device)
    has_val = ctx.images("val").shape[0] > 0
    mapping = LinearMap(config.ridges).fit(
        ctx.features("train")[fit], ctx.features("train", teacher=True)[fit],
        ctx.features("val") if has_val else None,
        ctx.features("val", teacher=True) if has_val else None,
    )
    mse = mean_squared_error(mapping.predict(ctx.features("test")), ctx.features("test", teacher=True))
    return [ProtocolResult("align", "cka", cka), ProtocolResult("align", "mse", mse)]
