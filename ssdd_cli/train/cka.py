"""Linear centred kernel alignment (Kornblith et al., 2019) between two feature matrices."""

from __future__ import annotations

import torch
from torch import Tensor

_CHUNK = 1024


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear CKA between two representations of the same n inputs, in [0, 1].

    x: (n, d1) and y: (n, d2) features (rows are inputs). After centring each column,

        CKA(X, Y) = ‖YᵀX‖²_F / (‖XᵀX‖_F · ‖YᵀY‖_F)        (Kornblith et al., 2019, eq. 5)

    computed in float64. ‖AᵀB‖²_F equals ⟨AAᵀ, BBᵀ⟩_F, so the cheaper of the feature-space
    (d×d) and Gram (n×n) forms is used, in chunks, never materialising either full matrix;
    both give the same number. CKA is invariant to orthogonal transforms and isotropic scaling
    of either side. A side with zero variance has no defined alignment: the result is 0.
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"linear_cka needs (n, d1) and (n, d2) features, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    x = x.double()
    y = y.double()
    x = x - x.mean(dim=0, keepdim=True)
    y = y - y.mean(dim=0, keepdim=True)
    cross = _cross_frobenius_sq(x, y)
    denom = (_cross_frobenius_sq(x, x) * _cross_frobenius_sq(y, y)).sqrt()
    if denom <= 0:
        return 0.0
    return float((cross / denom).clamp(0.0, 1.0))


def _cross_frobenius_sq(a: Tensor, b: Tensor) -> Tensor:
    """‖aᵀb‖²_F for a: (n, da), b: (n, db), by whichever of aᵀb or ⟨aaᵀ, bbᵀ⟩ costs less."""
    n, da = a.shape
    db = b.shape[1]
    if da * db <= n * (da + db):
        # feature space: column blocks of aᵀb, (da, chunk) at a time
        total = torch.zeros((), dtype=a.dtype, device=a.device)
        for j in range(0, db, _CHUNK):
            total = total + ((a.T @ b[:, j:j + _CHUNK]) ** 2).sum()
        return total
    # Gram space: row blocks of aaᵀ and bbᵀ, (chunk, n) at a time
    total = torch.zeros((), dtype=a.dtype, device=a.device)
    for i in range(0, n, _CHUNK):
        total = total + ((a[i:i + _CHUNK] @ a.T) * (b[i:i + _CHUNK] @ b.T)).sum()
    return total
