"""The KRR outer loss against a float64 reference written directly from eq. 3."""

from __future__ import annotations

import pytest
import torch

from ssdd_cli.distill.krr import krr_outer_loss, krr_predict, with_bias_column
from ssdd_cli.errors import DivergedError


def reference_loss(phi_t, y_t, phi_s, y_s, ridge):  # type: ignore[no-untyped-def]
    """Eq. 3 with λ = ridge·tr(K), tr(K) a constant (KRR-ST's code detaches it)."""
    phi_t, y_t, phi_s, y_s = (t.double() for t in (phi_t, y_t, phi_s, y_s))
    k = phi_s @ phi_s.T
    lam = ridge * torch.trace(k).detach()
    w = torch.linalg.solve(k + lam * torch.eye(k.shape[0], dtype=k.dtype), y_s)
    return 0.5 * ((y_t - phi_t @ phi_s.T @ w) ** 2).sum()


def test_loss_matches_float64_reference() -> None:
    g = torch.Generator().manual_seed(0)
    phi_s = torch.randn(24, 40, generator=g)
    phi_t = torch.randn(64, 40, generator=g)
    y_s, y_t = torch.randn(24, 8, generator=g), torch.randn(64, 8, generator=g)
    for ridge in (1e-6, 1e-2):
        got = krr_outer_loss(phi_t, y_t, phi_s, y_s, ridge)
        want = reference_loss(phi_t, y_t, phi_s, y_s, ridge)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)


def test_stable_in_float32_with_nearly_singular_kernel() -> None:
    g = torch.Generator().manual_seed(1)
    base = torch.randn(8, 512, generator=g)
    phi_s = torch.cat([base, base + 1e-6 * torch.randn(8, 512, generator=g)])  # rank ≈ 8 of 16
    y_s = torch.randn(16, 4, generator=g)
    loss = krr_outer_loss(torch.randn(32, 512, generator=g), torch.randn(32, 4, generator=g), phi_s, y_s)
    assert torch.isfinite(loss)


def test_interpolates_support_set_with_tiny_ridge() -> None:
    g = torch.Generator().manual_seed(2)
    phi_s, y_s = torch.randn(10, 50, generator=g), torch.randn(10, 3, generator=g)
    pred = krr_predict(phi_s, phi_s, y_s, ridge=1e-9)
    torch.testing.assert_close(pred, y_s, rtol=1e-3, atol=1e-3)


def test_gradient_matches_reference() -> None:
    g = torch.Generator().manual_seed(3)
    phi_s = torch.randn(12, 20, generator=g, dtype=torch.float64, requires_grad=True)
    y_s = torch.randn(12, 5, generator=g, dtype=torch.float64, requires_grad=True)
    phi_t, y_t = torch.randn(30, 20, generator=g, dtype=torch.float64), torch.randn(30, 5, generator=g,
                                                                                   dtype=torch.float64)
    got = torch.autograd.grad(krr_outer_loss(phi_t, y_t, phi_s, y_s, 1e-3), (phi_s, y_s))
    want = torch.autograd.grad(reference_loss(phi_t, y_t, phi_s, y_s, 1e-3), (phi_s, y_s))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def test_bias_column() -> None:
    out = with_bias_column(torch.zeros(3, 2))
    assert out.shape == (3, 3) and torch.equal(out[:, 2], torch.ones(3))


def test_singular_kernel_raises_instead_of_solving_with_a_bad_factor() -> None:
    phi_s = torch.full((6, 4), float("nan"))
    with pytest.raises(DivergedError, match="kernel stayed singular"):
        krr_outer_loss(torch.randn(3, 4), torch.randn(3, 2), phi_s, torch.randn(6, 2))


def test_outer_gradient_through_a_network_matches_finite_differences() -> None:
    """The whole outer gradient dL/dX_s (network features, bias column, solve, loss) on a tiny
    float64 problem, against central differences along random directions. With ridge 0 the
    detached tr(K) plays no part, so the finite differences see the same function."""
    from ssdd_cli.models import create_backbone

    torch.manual_seed(4)
    net = create_backbone("convnet", 1, 8, widths=(6,)).double()  # 6·4·4 = 96 features
    g = torch.Generator().manual_seed(4)
    x_s = torch.randn(8, 1, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    x_t = torch.randn(20, 1, 8, 8, generator=g, dtype=torch.float64)
    y_s, y_t = (torch.randn(n, 3, generator=g, dtype=torch.float64) for n in (8, 20))

    def loss(x: torch.Tensor) -> torch.Tensor:
        phi_t = with_bias_column(net.features(x_t))
        return krr_outer_loss(phi_t, y_t, with_bias_column(net.features(x)), y_s, ridge=0.0)

    (grad,) = torch.autograd.grad(loss(x_s), x_s)
    eps = 1e-6
    with torch.no_grad():
        for _ in range(3):
            v = torch.randn(x_s.shape, generator=g, dtype=torch.float64)
            numeric = (loss(x_s + eps * v) - loss(x_s - eps * v)) / (2 * eps)
            torch.testing.assert_close((grad * v).sum(), numeric, rtol=1e-5, atol=1e-7)
