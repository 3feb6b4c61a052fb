"""The Barlow Twins loss (Zbontar et al. 2021, eq. 1), as a pure tensor function."""

from __future__ import annotations

import torch
from torch import Tensor


def batch_standardize(z: Tensor, eps: float = 1e-5) -> Tensor:
    """Standardise each column of `z` (B, D) over the batch: mean 0, biased variance 1.

    This is `nn.BatchNorm1d(D, affine=False)` in training mode, which the paper's reference code
    applies to both projector outputs; `eps` is BatchNorm's. (solo-learn divides by the unbiased
    std without eps instead; the two differ by a factor (B-1)/B on C.)
    """
    mean = z.mean(dim=0, keepdim=True)
    var = z.var(dim=0, unbiased=False, keepdim=True)
    return (z - mean) / torch.sqrt(var + eps)


def cross_correlation(z1: Tensor, z2: Tensor, eps: float = 1e-5) -> Tensor:
    """C (D, D) = z1nᵀ z2n / B for views z1, z2 (B, D), each batch-standardised first."""
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be (B, D); got {tuple(z1.shape)}, {tuple(z2.shape)}")
    if z1.shape[0] < 2:
        raise ValueError("the Barlow Twins loss needs a batch of at least 2 samples")
    return batch_standardize(z1, eps).T @ batch_standardize(z2, eps) / z1.shape[0]


def barlow_twins_loss(z1: Tensor, z2: Tensor, lambd: float = 0.0051, eps: float = 1e-5) -> Tensor:
    """Barlow Twins: L = Σ_i (1 − C_ii)² + λ Σ_i Σ_{j≠i} C_ij², a scalar.

    z1, z2: (B, D) projector outputs of two augmented views of the same B images.
    C: (D, D) cross-correlation of the batch-standardised views (`cross_correlation`).
    lambd: λ, the off-diagonal weight; 0.0051 is the paper's value for D = 8192 and works for
    smaller D too (solo-learn keeps it at 2048).
    """
    c = cross_correlation(z1, z2, eps)
    diag = torch.diagonal(c)
    on_diag = (1.0 - diag).pow(2).sum()
    # Σ_{i≠j} C_ij² = Σ_ij C_ij² − Σ_i C_ii², without materialising a mask.
    off_diag = c.pow(2).sum() - diag.pow(2).sum()
    return on_diag + lambd * off_diag
