"""The KRR outer loss against a float64 reference written directly from eq. 3."""

from __future__ import annotations

import pytest
import torch

from ssdd_cli.distill.krr import (
    cheaper_form,
    krr_outer_loss,
    krr_predict,
    krr_predict_primal,
    support_moments,
    with_bias_column,
)
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


@pytest.mark.parametrize(("M", "d"), [(24, 40), (60, 17)])  # fewer and more support rows than features
def test_primal_and_dual_agree_with_float64_reference(M: int, d: int) -> None:
    g = torch.Generator().manual_seed(4)
    phi_s, phi_t = torch.randn(M, d, generator=g), torch.randn(50, d, generator=g)
    y_s, y_t = torch.randn(M, 6, generator=g), torch.randn(50, 6, generator=g)
    want = reference_loss(phi_t, y_t, phi_s, y_s, 1e-4)
    for form in ("dual", "primal", "auto"):
        got = krr_outer_loss(phi_t, y_t, phi_s, y_s, 1e-4, form=form)
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)
    dual, primal = (krr_predict(phi_t, phi_s, y_s, 1e-4, form=f) for f in ("dual", "primal"))
    torch.testing.assert_close(primal, dual, rtol=1e-4, atol=1e-4)


def test_primal_gradient_matches_dual_and_reference() -> None:
    g = torch.Generator().manual_seed(5)
    phi_s = torch.randn(30, 12, generator=g, dtype=torch.float64, requires_grad=True)  # M > d: primal's side
    y_s = torch.randn(30, 4, generator=g, dtype=torch.float64, requires_grad=True)
    phi_t, y_t = torch.randn(20, 12, generator=g, dtype=torch.float64), torch.randn(20, 4, generator=g,
                                                                                   dtype=torch.float64)
    want = torch.autograd.grad(reference_loss(phi_t, y_t, phi_s, y_s, 1e-3), (phi_s, y_s))
    for form in ("primal", "dual"):
        got = torch.autograd.grad(krr_outer_loss(phi_t, y_t, phi_s, y_s, 1e-3, form=form), (phi_s, y_s))
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b)


def test_cheaper_form_is_the_smaller_system() -> None:
    assert cheaper_form(100, 8193) == "dual" and cheaper_form(8193, 8193) == "dual"
    assert cheaper_form(8194, 8193) == "primal" and cheaper_form(48_508, 8193) == "primal"


def test_primal_support_moments_are_sums_over_chunks() -> None:
    g = torch.Generator().manual_seed(6)
    phi_s, y_s = torch.randn(10, 5, generator=g), torch.randn(10, 3, generator=g)
    whole = support_moments(phi_s, y_s)
    parts = [support_moments(p, y) for p, y in zip(phi_s.split(4), y_s.split(4), strict=True)]
    for i in range(2):
        torch.testing.assert_close(sum(p[i] for p in parts), whole[i])
    assert whole[0].dtype == torch.float64


def test_singular_kernel_raises_in_primal_form_too() -> None:
    gram = torch.full((4, 4), float("nan"), dtype=torch.float64)
    with pytest.raises(DivergedError, match="kernel stayed singular"):
        krr_predict_primal(torch.randn(3, 4), gram, torch.zeros(4, 2, dtype=torch.float64))


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
