"""`linear`: a linear classifier on frozen features (SSDD paper, Appendix A.1)."""

from __future__ import annotations

from ssdd_cli.kit.seeding import cpu_generator
from ssdd_cli.train.linear import LinearProbe, LinearProbeConfig, accuracy
from ssdd_cli.train.protocols.base import EvalContext, ProtocolResult, register_protocol


@register_protocol("linear", config=LinearProbeConfig)
def linear_protocol(ctx: EvalContext, config: LinearProbeConfig, seed: int) -> list[ProtocolResult]:
    """Linear evaluation: frozen features, a linear classifier (SSDD paper, Appendix A.1)."""
    idx = ctx.train_indices(seed)
    train = ctx.features("train")[idx.to(ctx.device)]
    probe = LinearProbe(config).fit(
        train, ctx.labels("train")[idx], ctx.num_classes, generator=cpu_generator(seed),
        callback=ctx.callback, stage=f"linear (seed {seed})",
    )
    acc = accuracy(probe.predict(ctx.features("test")), ctx.labels("test"))
    return [ProtocolResult("linear", "accuracy", acc)]
