"""The Barlow Twins loss against a float64 reference written from the paper's equation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssdd_cli.teacher.loss import barlow_twins_loss, cross_correlation


def reference_loss(z1: np.ndarray, z2: np.ndarray, lambd: float, eps: float = 1e-5) -> float:
    """Σ(1 − C_ii)² + λ Σ_{i≠j} C_ij², C = z1nᵀ z2n / B, BatchNorm-style standardisation."""
    b, d = z1.shape
    z1n = (z1 - z1.mean(0)) / np.sqrt(z1.var(0) + eps)  # numpy's var is the biased one
    z2n = (z2 - z2.mean(0)) / np.sqrt(z2.var(0) + eps)
    c = z1n.T @ z2n / b
    off = ~np.eye(d, dtype=bool)
    return float(((1 - np.diag(c)) ** 2).sum() + lambd * (c[off] ** 2).sum())


@pytest.mark.parametrize(("b", "d", "lambd"), [(8, 5, 0.0051), (32, 64, 0.0051), (16, 3, 0.5)])
def test_matches_float64_reference(b: int, d: int, lambd: float) -> None:
    g = torch.Generator().manual_seed(b * d)
    z1 = torch.randn(b, d, generator=g, dtype=torch.float64) * 3 + 1
    z2 = 0.5 * z1 + torch.randn(b, d, generator=g, dtype=torch.float64)
    expected = reference_loss(z1.numpy(), z2.numpy(), lambd)
    assert barlow_twins_loss(z1, z2, lambd).item() == pytest.approx(expected, rel=1e-12)
    got32 = barlow_twins_loss(z1.float(), z2.float(), lambd).item()
    assert got32 == pytest.approx(expected, rel=1e-4)


def test_identical_decorrelated_views_give_zero_loss() -> None:
    # Orthonormal columns spanning centred vectors, scaled to unit (biased) variance: C = I.
    b, d = 16, 4
    a = torch.randn(b, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    q, _ = torch.linalg.qr(a - a.mean(0))
    z = q * b**0.5
    assert torch.allclose(cross_correlation(z, z, eps=0.0), torch.eye(d, dtype=torch.float64))
    assert barlow_twins_loss(z, z, eps=0.0).item() == pytest.approx(0.0, abs=1e-20)


def test_gradients_reach_both_views() -> None:
    z1 = torch.randn(8, 6, requires_grad=True)
    z2 = torch.randn(8, 6, requires_grad=True)
    barlow_twins_loss(z1, z2).backward()
    assert z1.grad is not None and z2.grad is not None
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError):
        barlow_twins_loss(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError):
        barlow_twins_loss(torch.randn(1, 3), torch.randn(1, 3))
