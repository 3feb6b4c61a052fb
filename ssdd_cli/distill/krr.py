"""The closed-form kernel ridge regression outer loss (SSDD eq. 3, KRR-ST eq. 4).

With the feature extractor f fixed and only the linear head trained to convergence, the inner
problem has the closed form W* = Φ_sᵀ (K + λI)⁻¹ Ỹ_s, so the outer loss is

    L = ½ ‖Y_t − Φ_t Φ_sᵀ (K + λI)⁻¹ Ỹ_s‖²_F,   K = Φ_s Φ_sᵀ,   λ = ridge · tr(K)

(λ relative to tr(K) as in KRR-ST's code, which detaches tr(K): λ is a constant of the solve,
not a path for the gradient). Features carry a constant-1 column (the bias of the linear head,
as in KRR-ST's code): see `with_bias_column`.

Two forms give the same prediction. The *dual* solves the M×M system above. The *primal*,
by the push-through identity Φ_sᵀ (Φ_sΦ_sᵀ + λI)⁻¹ = (Φ_sᵀΦ_s + λI)⁻¹ Φ_sᵀ, solves a d×d one:

    Ŷ_t = Φ_t (G + λI)⁻¹ H,   G = Φ_sᵀ Φ_s,   H = Φ_sᵀ Ỹ_s,   λ = ridge · tr(G)

with the same λ, since tr(Φ_sᵀΦ_s) = tr(Φ_sΦ_sᵀ). The dual costs O(M²·d) time and O(M²)
memory, the primal O(M·d²) and O(d²), and the primal needs only the moments (G, H), which can be
accumulated over chunks of the support set (`distill.support`). `cheaper_form` picks one.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssdd_cli.errors import DivergedError

RETRIES = 8  # factorisations tried, λ ×10 each time
FORMS = ("auto", "dual", "primal")


def with_bias_column(phi: Tensor) -> Tensor:
    """(n, d_h) -> (n, d_h + 1): append a constant-1 feature (the linear head's bias)."""
    return torch.cat([phi, phi.new_ones(phi.shape[0], 1)], dim=1)


def cheaper_form(M: int, d: int) -> str:
    """"primal" when the support set has more rows M than features d (bias column included),
    else "dual": the side of the kernel with the smaller system."""
    return "primal" if M > d else "dual"


def ridge_cholesky(a: Tensor, ridge: float) -> Tensor:
    """The lower Cholesky factor of A + λI, λ = ridge · tr(A) (tr(A) detached), in float64.

    a: (n, n) symmetric positive semi-definite (K in the dual, G in the primal).
    If the factorisation fails (A numerically indefinite), λ grows tenfold, up to `RETRIES`
    times; if it still fails the features are degenerate and `DivergedError` says so (never a
    solve with an invalid factor). Checking the factorisation reads one status to the host.
    """
    a = a.double()
    lam = ridge * torch.trace(a).detach()
    eye = torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
    for _ in range(RETRIES):
        chol, info = torch.linalg.cholesky_ex(a + lam * eye)
        if int(info) == 0:
            return chol
        lam = lam * 10 if lam > 0 else a.diagonal().abs().mean().detach() * 1e-6 + 1e-12
    raise DivergedError(f"the support set's kernel stayed singular with the ridge raised "
                        f"{10 ** (RETRIES - 1):.0e}-fold (its features are degenerate)")


def krr_solve(phi_s: Tensor, y_s: Tensor, ridge: float = 1e-6) -> Tensor:
    """Dual coefficients α = (Φ_s Φ_sᵀ + λI)⁻¹ Ỹ_s with λ = ridge · tr(K), by Cholesky.

    phi_s: (M, d) support features; y_s: (M, d_y) support targets -> α: (M, d_y), y_s's dtype.
    The M×M factorisation and solve run in float64, so the loss is stable for float32 features.
    """
    k = phi_s.double() @ phi_s.double().T
    return torch.cholesky_solve(y_s.double(), ridge_cholesky(k, ridge)).to(y_s.dtype)


def support_moments(phi_s: Tensor, y_s: Tensor) -> tuple[Tensor, Tensor]:
    """G = Φ_sᵀ Φ_s (d, d) and H = Φ_sᵀ Ỹ_s (d, d_y), in float64.

    phi_s: (M, d); y_s: (M, d_y). Both are sums over the rows of the support set, so the
    moments of a set are the sums of the moments of its chunks.
    """
    phi = phi_s.double()
    return phi.T @ phi, phi.T @ y_s.double()


def primal_weights(gram: Tensor, cross: Tensor, ridge: float = 1e-6) -> Tensor:
    """W = (G + λI)⁻¹ H with λ = ridge · tr(G), by Cholesky in float64.

    gram: G (d, d); cross: H (d, d_y) -> W (d, d_y) float64: the linear head of the closed form.
    """
    return torch.cholesky_solve(cross.double(), ridge_cholesky(gram, ridge))


def krr_predict_primal(phi_t: Tensor, gram: Tensor, cross: Tensor, ridge: float = 1e-6) -> Tensor:
    """Ŷ_t = Φ_t (G + λI)⁻¹ H, the primal form of `krr_predict`.

    phi_t: (B, d); gram: G (d, d); cross: H (d, d_y) -> (B, d_y) in phi_t's dtype. The product
    with W runs in float64 too: W of a nearly singular G has large entries that cancel.
    """
    return (phi_t.double() @ primal_weights(gram, cross, ridge)).to(phi_t.dtype)


def krr_predict(phi_t: Tensor, phi_s: Tensor, y_s: Tensor, ridge: float = 1e-6, form: str = "auto") -> Tensor:
    """Ŷ_t = Φ_t Φ_sᵀ (K + λI)⁻¹ Ỹ_s.

    phi_t: (B, d) target features; phi_s: (M, d); y_s: (M, d_y) -> (B, d_y).
    form: "dual", "primal" or "auto" (`cheaper_form`). The dual is computed as (Φ_t Φ_sᵀ) α,
    which costs B·M·(d + d_y) rather than d·M·d_y + B·d·d_y.
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    if form == "primal" or (form == "auto" and cheaper_form(*phi_s.shape) == "primal"):
        return krr_predict_primal(phi_t, *support_moments(phi_s, y_s), ridge)
    return (phi_t @ phi_s.T) @ krr_solve(phi_s, y_s, ridge)


def squared_error(y_t: Tensor, y_hat: Tensor) -> Tensor:
    """½ ‖Y_t − Ŷ_t‖²_F: y_t, y_hat (B, d_y) -> a scalar."""
    return 0.5 * (y_t - y_hat).pow(2).sum()


def krr_outer_loss(phi_t: Tensor, y_t: Tensor, phi_s: Tensor, y_s: Tensor, ridge: float = 1e-6,
                   form: str = "auto") -> Tensor:
    """L = ½ ‖Y_t − Φ_t Φ_sᵀ (K + λI)⁻¹ Ỹ_s‖²_F  (eq. 3).

    phi_t: (B, d) features of the real batch; y_t: (B, d_y) teacher targets g(X̄_t);
    phi_s: (M, d) features of the augmented distilled images X̃_s, M = m·(A+1);
    y_s: (M, d_y) distilled targets Ỹ_s. form: see `krr_predict`. Returns a scalar.
    """
    return squared_error(y_t, krr_predict(phi_t, phi_s, y_s, ridge, form))
