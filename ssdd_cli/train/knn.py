"""Weighted k-nearest-neighbour classification on cosine similarity (a label-only probe)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def knn_predict(
    train_features: Tensor,
    train_labels: Tensor,
    query_features: Tensor,
    *,
    num_classes: int,
    k: int = 20,
    temperature: float | None = 0.07,
    chunk: int = 1024,
) -> Tensor:
    """Predict a class for every query by a vote among its k most cosine-similar train points.

    train_features: (n, d); train_labels: (n,) int64 in [0, num_classes); query_features: (q, d).
    Returns (q,) int64 predictions.

    Features are L2-normalised, so similarity is cosine similarity s ∈ [-1, 1]. With a
    `temperature` T each neighbour votes with weight exp(s / T) (Wu et al., 2018, as used by
    DINO's k-NN evaluation, k = 20, T = 0.07); with `temperature=None` every neighbour gets one
    vote (plain majority). Ties go to the lowest class index. k is capped at n.
    """
    if train_features.shape[0] == 0:
        raise ValueError("knn_predict needs at least one train point")
    k = min(k, train_features.shape[0])
    train = F.normalize(train_features.float(), dim=1)
    labels = train_labels.to(train.device)
    preds = []
    for i in range(0, query_features.shape[0], chunk):
        query = F.normalize(query_features[i:i + chunk].float().to(train.device), dim=1)
        sims, idx = (query @ train.T).topk(k, dim=1)
        weights = torch.ones_like(sims) if temperature is None else (sims / temperature).exp()
        votes = torch.zeros(query.shape[0], num_classes, dtype=weights.dtype, device=train.device)
        votes.scatter_add_(1, labels[idx], weights)
        preds.append(votes.argmax(dim=1))
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)
