"""The closed-form kernel ridge regression outer loss (SSDD eq. 3, KRR-ST eq. 4).

With the feature extractor f fixed and only the linear head trained to convergence, the inner
problem has the closed form W* = Φ_sᵀ (K + λI)⁻¹ Ỹ_s, so the outer loss is

    L = ½ ‖Y_t − Φ_t Φ_sᵀ (K + λI)⁻¹ Ỹ_s‖²_F,   K = Φ_s Φ_sᵀ,   λ = ridge · tr(K)

(λ relative to tr(K) as in KRR-ST's code, which detaches tr(K): λ is a constant of the solve,
not a path for the gradient). Features carry a constant-1 column (the bias of the linear head,
as in KRR-ST's code): see `with_bias_column`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssdd_cli.errors import DivergedError

RETRIES = 8  # factorisations tried, λ ×10 each time


def with_bias_column(phi: Tensor) -> Tensor:
    """(n, d_h) -> (n, d_h + 1): append a constant-1 feature (the linear head's bias)."""
    return torch.cat([phi, phi.new_ones(phi.shape[0], 1)], dim=1)


def krr_solve(phi_s: Tensor, y_s: Tensor, ridge: float = 1e-6) -> Tensor:
    """α = (Φ_s Φ_sᵀ + λI)⁻¹ Ỹ_s with λ = ridge · tr(K), by Cholesky.

    phi_s: (M, d) support features; y_s: (M, d_y) support targets -> α: (M, d_y).

    The M×M factorisation and solve run in float64 (O(M³) with M at most a few thousand, cheap
    next to the network's forward pass), so the loss is stable when features are float32. If the
    factorisation fails (K numerically indefinite), λ grows tenfold, up to `RETRIES` times; if it
    still fails the features are degenerate and `DivergedError` says so (never a solve with an
    invalid factor).
    """
    k = phi_s.double() @ phi_s.double().T
    lam = ridge * torch.trace(k).detach()
    eye = torch.eye(k.shape[0], dtype=k.dtype, device=k.device)
    for _ in range(RETRIES):
        chol, info = torch.linalg.cholesky_ex(k + lam * eye)
        if int(info) == 0:
            return torch.cholesky_solve(y_s.double(), chol).to(y_s.dtype)
        lam = lam * 10 if lam > 0 else k.diagonal().abs().mean().detach() * 1e-6 + 1e-12
    raise DivergedError(f"the support set's kernel stayed singular with the ridge raised "
                        f"{10 ** (RETRIES - 1):.0e}-fold (its features are degenerate)")


def krr_predict(phi_t: Tensor, phi_s: Tensor, y_s: Tensor, ridge: float = 1e-6) -> Tensor:
    """Ŷ_t = Φ_t Φ_sᵀ (K + λI)⁻¹ Ỹ_s.

    phi_t: (B, d) target features; phi_s: (M, d); y_s: (M, d_y) -> (B, d_y).
    Computed as (Φ_t Φ_sᵀ) α, which costs B·M·(d + d_y) rather than d·M·d_y + B·d·d_y.
    """
    return (phi_t @ phi_s.T) @ krr_solve(phi_s, y_s, ridge)


def krr_outer_loss(phi_t: Tensor, y_t: Tensor, phi_s: Tensor, y_s: Tensor, ridge: float = 1e-6) -> Tensor:
    """L = ½ ‖Y_t − Φ_t Φ_sᵀ (K + λI)⁻¹ Ỹ_s‖²_F  (eq. 3).

    phi_t: (B, d) features of the real batch; y_t: (B, d_y) teacher targets g(X̄_t);
    phi_s: (M, d) features of the augmented distilled images X̃_s, M = m·(A+1);
    y_s: (M, d_y) distilled targets Ỹ_s. Returns a scalar.
    """
    residual = y_t - krr_predict(phi_t, phi_s, y_s, ridge)
    return 0.5 * residual.pow(2).sum()
