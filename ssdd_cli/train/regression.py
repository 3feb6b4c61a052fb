"""A least-squares linear map between two feature spaces (the `align` protocol's MSE)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

DEFAULT_RIDGES = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


class LinearMap:
    """Affine least squares y ≈ x W + b with a small ridge, fitted in float64.

        W(λ) = (XcᵀXc + λ I)⁻¹ Xcᵀ Yc,  b = ȳ − x̄ W,  λ = ρ · tr(XcᵀXc) / min(n, d)

    Xc, Yc are the column-centred train features (so the bias is not penalised). ρ is taken
    from `ridges`, relative to the mean eigenvalue so it does not depend on the feature scale:
    the one with the lowest MSE on the validation pair given to `fit`, else the smallest (plain
    least squares up to numerical stability). With d > n the same solution is computed in the
    dual (n × n) form. One eigendecomposition serves every ρ.

    scikit-learn contract: `fit()` returns self; `weight_` (d, d_y), `bias_` (d_y,), `ridge_`.
    """

    def __init__(self, ridges: Sequence[float] = DEFAULT_RIDGES) -> None:
        if not ridges:
            raise ValueError("LinearMap needs at least one ridge value")
        self.ridges = tuple(ridges)

    def fit(
        self,
        x: Tensor,
        y: Tensor,
        x_val: Tensor | None = None,
        y_val: Tensor | None = None,
    ) -> LinearMap:
        """Fit on x: (n, d) → y: (n, d_y); choose the ridge on (x_val, y_val) if given."""
        x = x.double()
        y = y.double().to(x.device)
        n, d = x.shape
        self.x_mean_ = x.mean(dim=0)
        self.y_mean_ = y.mean(dim=0)
        xc = x - self.x_mean_
        yc = y - self.y_mean_
        if n >= d:  # primal: eigenvectors V of XcᵀXc
            eig, vecs = torch.linalg.eigh(xc.T @ xc)
            basis = vecs  # (d, d)
            proj = vecs.T @ (xc.T @ yc)  # (d, d_y)
        else:  # dual: eigenvectors U of XcXcᵀ; W = Xcᵀ U diag(1/(Λ+λ)) Uᵀ Yc
            eig, vecs = torch.linalg.eigh(xc @ xc.T)
            basis = xc.T @ vecs  # (d, n)
            proj = vecs.T @ yc  # (n, d_y)
        eig = eig.clamp_min(0.0)
        scale = float(eig.sum()) / max(min(n, d), 1) or 1.0
        best = self.ridges[0] if x_val is None or y_val is None else None
        if best is None:
            assert x_val is not None and y_val is not None
            z = (x_val.double().to(x.device) - self.x_mean_) @ basis
            target = y_val.double().to(x.device) - self.y_mean_
            errors = [float(((z / (eig + r * scale)) @ proj - target).pow(2).mean())
                      for r in self.ridges]
            best = self.ridges[min(range(len(errors)), key=errors.__getitem__)]
        self.ridge_ = best
        self.weight_ = (basis / (eig + best * scale)) @ proj
        self.bias_ = self.y_mean_ - self.x_mean_ @ self.weight_
        return self

    def predict(self, x: Tensor) -> Tensor:
        """Mapped features (q, d_y), float64, for x: (q, d)."""
        return x.double().to(self.weight_.device) @ self.weight_ + self.bias_


def mean_squared_error(prediction: Tensor, target: Tensor) -> float:
    """Mean over rows and columns of (prediction − target)², both (q, d_y)."""
    return float((prediction.double() - target.double().to(prediction.device)).pow(2).mean())
