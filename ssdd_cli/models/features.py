"""Frozen features of a backbone over a whole image tensor, in batches, without gradients."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ssdd_cli.models.base import Backbone


def extract_features(
    backbone: Backbone,
    images_normalised: Tensor,
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    transform: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Features (n, d_h), float32 on `device`, of images (n, c, h, w) already normalised.

    Only the backbone's `features(x) -> (B, d_h)` and `feature_dim` are used. It runs in eval
    mode (BatchNorm uses its running statistics) without gradients, in batches moved to `device`
    one at a time so the images may stay on the CPU; its previous mode is restored afterwards.
    `transform`, if given, is applied to each batch on the device first (e.g. a flip view).
    """
    was_training = backbone.training
    backbone.eval()
    out: list[Tensor] = []
    try:
        with torch.no_grad():
            for i in range(0, images_normalised.shape[0], batch_size):
                batch = images_normalised[i:i + batch_size].to(device, torch.float32)
                if transform is not None:
                    batch = transform(batch)
                out.append(backbone.features(batch).float())
    finally:
        backbone.train(was_training)
    if not out:
        return torch.zeros(0, backbone.feature_dim, device=device)
    return torch.cat(out)
