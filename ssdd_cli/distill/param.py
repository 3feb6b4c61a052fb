"""Image and representation parameterisation (SSDD §3.2–3.3).

    X_s = D(C^x B^x, s)          B^x: (U, c, h/s, w/s), C^x: (m, U), D = bilinear upsampling by s
    Y_s = C^y B^y                B^y: (V, d_y),          C^y: (m, V)
    Ỹ_s = [C^y B^y, C^y_1 B^y, …, C^y_A B^y]             C^y_a: (A, m, V)

Initialisation: B^x holds the top-U principal directions of the downsampled, normalised source
images, B^y the top-V principal directions of the teacher's features; C^x and C^y are the
projections of m random source images (and of their features), C^y_a the projections of the
teacher's features of τ_a(X_s) at init.

The mean: the principal directions come from an *uncentred* SVD (the eigenvectors of XᵀX, not of
the covariance). C^x B^x is then the orthogonal projection of the images themselves onto the
bases, so the reconstruction carries the images' mean without a stored mean vector, and the
budget counts every stored float. (A public re-implementation centres the data, then drops the
mean at reconstruction, which shifts every distilled image; we do not.)
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssdd_cli.distill.augment import Augmentation


class UncenteredPCA:
    """Top-k principal directions of XᵀX (scikit-learn contract: `fit` returns self)."""

    def __init__(self, n_components: int) -> None:
        self.n_components = n_components

    def fit(self, x: Tensor) -> UncenteredPCA:
        """x: (n, D). Sets `components_` (k, D), orthonormal rows, by decreasing XᵀX eigenvalue.

        Uses the D×D Gram matrix in float64, so n can be large (50,000 CIFAR images) cheaply.
        """
        if self.n_components > x.shape[1]:
            raise ValueError(f"cannot take {self.n_components} components of {x.shape[1]} dims")
        x64 = x.reshape(x.shape[0], -1).double()
        evals, evecs = torch.linalg.eigh(x64.T @ x64)
        order = torch.argsort(evals, descending=True)[: self.n_components]
        comps = evecs[:, order].T
        # Fix the sign (eigh's is arbitrary) so the bases are reproducible across platforms.
        signs = torch.sign(comps.sum(dim=1, keepdim=True))
        signs[signs == 0] = 1
        self.components_ = (comps * signs).to(x.dtype)
        self.explained_ = evals[order].to(x.dtype)
        return self

    def transform(self, x: Tensor) -> Tensor:
        """(n, D) -> (n, k) coefficients of the projection."""
        return x.reshape(x.shape[0], -1) @ self.components_.T


def downsample(images: Tensor, scale: int) -> Tensor:
    """(n, c, h, w) -> (n, c, h/s, w/s) by area averaging (the natural inverse of D)."""
    return images if scale == 1 else F.avg_pool2d(images, scale)


def upsample(images: Tensor, scale: int) -> Tensor:
    """D(·, s): bilinear upsampling (n, c, h/s, w/s) -> (n, c, h, w)."""
    if scale == 1:
        return images
    return F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False)


class DistilledModule(nn.Module):
    """A learnable distilled set. `support()` is what the inner model trains on: X̃_s (M, c, h, w)
    and Ỹ_s (M, d_y), M = m·(A+1) rows in view-major order (the m images first).
    `image_side`: the names of the parameters that make the images (the rest make the targets),
    for an outer optimiser with one learning rate per kind."""

    image_side: ClassVar[tuple[str, ...]] = ()

    def support(self) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class RawSet(DistilledModule):
    """Images X_s (m, c, h, w) and targets Y_s (m, d_y) stored as they are (KRR-ST, selection),
    and, for a selection from a labelled source, the real images' class labels (m,) int64
    (a buffer: kept, never optimised)."""

    labels: Tensor | None
    image_side: ClassVar[tuple[str, ...]] = ("x",)

    def __init__(self, images: Tensor, targets: Tensor, labels: Tensor | None = None) -> None:
        super().__init__()
        self.x = nn.Parameter(images.clone())
        self.y = nn.Parameter(targets.clone())
        self.register_buffer("labels", None if labels is None else labels.clone())

    def support(self) -> tuple[Tensor, Tensor]:
        return self.x, self.y


class ParameterizedSet(DistilledModule):
    """Bases and coefficients for images and representations, and the views τ_1..τ_A."""

    image_side: ClassVar[tuple[str, ...]] = ("image_bases", "image_coeffs")

    def __init__(self, image_bases: Tensor, image_coeffs: Tensor, repr_bases: Tensor,
                 repr_coeffs: Tensor, aug_coeffs: Tensor, scale: int, augmentation: Augmentation) -> None:
        super().__init__()
        self.image_bases = nn.Parameter(image_bases.clone())  # B^x (U, c, h/s, w/s)
        self.image_coeffs = nn.Parameter(image_coeffs.clone())  # C^x (m, U)
        self.repr_bases = nn.Parameter(repr_bases.clone())  # B^y (V, d_y)
        self.repr_coeffs = nn.Parameter(repr_coeffs.clone())  # C^y (m, V)
        self.aug_coeffs = nn.Parameter(aug_coeffs.clone())  # C^y_a (A, m, V)
        self.scale = scale
        self.augmentation = augmentation

    @property
    def m(self) -> int:
        return self.image_coeffs.shape[0]

    def images(self) -> Tensor:
        """X_s = D(C^x B^x, s): (m, c, h, w)."""
        return reconstruct_images(self.image_coeffs, self.image_bases, self.scale)

    def targets(self) -> Tensor:
        """Ỹ_s = [C^y B^y; C^y_1 B^y; …; C^y_A B^y]: (m·(A+1), d_y), view-major."""
        coeffs = torch.cat([self.repr_coeffs.unsqueeze(0), self.aug_coeffs], dim=0)
        return (coeffs @ self.repr_bases).reshape(-1, self.repr_bases.shape[1])

    def support(self) -> tuple[Tensor, Tensor]:
        """X̃_s = [X_s, τ_1(X_s), …, τ_A(X_s)] (m·(A+1), c, h, w) and Ỹ_s."""
        return self.augmentation.expand(self.images()), self.targets()


def reconstruct_images(coeffs: Tensor, bases: Tensor, scale: int) -> Tensor:
    """D(C^x B^x, s): coeffs (m, U), bases (U, c, h/s, w/s) -> (m, c, h, w)."""
    low = (coeffs @ bases.flatten(1)).reshape(coeffs.shape[0], *bases.shape[1:])
    return upsample(low, scale)
