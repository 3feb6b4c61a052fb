"""`knn`: k-nearest neighbours on frozen features (cosine similarity, weighted vote)."""

from __future__ import annotations

from dataclasses import dataclass

from ssdd_cli.train.knn import knn_predict
from ssdd_cli.train.linear import accuracy
from ssdd_cli.train.protocols.base import EvalContext, ProtocolResult, register_protocol


@dataclass(frozen=True)
class KNNConfig:
    """k-NN on cosine similarity: k = 20 neighbours voting with weight exp(s / 0.07)
    (Wu et al., 2018; DINO's evaluation); `temperature=None` is a plain majority vote."""

    k: int = 20
    temperature: float | None = 0.07


@register_protocol("knn", config=KNNConfig)
def knn_protocol(ctx: EvalContext, config: KNNConfig, seed: int) -> list[ProtocolResult]:
    """k-nearest neighbours on frozen features (cosine similarity, weighted vote)."""
    idx = ctx.train_indices(seed)
    pred = knn_predict(ctx.features("train")[idx.to(ctx.device)], ctx.labels("train")[idx],
                       ctx.features("test"), num_classes=ctx.num_classes, k=config.k,
                       temperature=config.temperature)
    return [ProtocolResult("knn", "accuracy", accuracy(pred, ctx.labels("test")))]
