"""Algorithm 2 on a stored artifact: rebuild X̃_s and the regression targets Ỹ^Q (or labels)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ssdd_cli.bundle import Bundle
from ssdd_cli.distill.approx import ApproxNet, approx_targets
from ssdd_cli.distill.augment import get_augmentation
from ssdd_cli.distill.param import reconstruct_images


@dataclass(frozen=True)
class DistilledSet:
    """An artifact made concrete: every (augmented) image with its target or label."""

    images: Tensor  # (M, c, h, w) normalised, M = m·(A+1), view-major
    targets: Tensor | None  # (M, d_y)
    labels: Tensor | None  # (M,) int64
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    views: tuple[str, ...]  # ("identity", τ_1, …)


@torch.no_grad()
def materialize(bundle: Bundle, device: torch.device | str = "cpu") -> DistilledSet:
    """X̃_s = [X_s, τ_1(X_s), …] with X_s = D(C^x B^x, s), and the targets of the views, as the
    artifact stores them (SSDD Table 11): Ỹ^Q = [Y_s, Y_s + Q_a(C^y) B^y, …] ("approx", the
    method), [Y_s, Y_s, …] ("same"), [Y_s, (C^y + b_a) B^y, …] ("bias") or
    [Y_s, C^y_a B^y, …] ("ideal")."""
    man, t = bundle.manifest, {k: v.to(device) for k, v in bundle.tensors.items()}
    src = man.source
    mean, std = tuple(src.mean), tuple(src.std)
    if man.parameterization is not None:
        p = man.parameterization
        x_s = reconstruct_images(t["image.coeffs"], t["image.bases"], p.scale)
        aug = get_augmentation(man.augmentations.name if man.augmentations else "none")
        c_y, b_y = t["repr.coeffs"], t["repr.bases"]
        kind = man.aug_targets
        if kind == "approx":
            nets = [ApproxNet.from_tensors(t, a).to(device) for a in range(aug.A)]
            targets = approx_targets(c_y, b_y, nets)
        elif kind == "bias":
            shifted = c_y.unsqueeze(0) + t["repr.aug_shift"].unsqueeze(1)  # (A, m, V)
            targets = torch.cat([c_y, shifted.reshape(-1, c_y.shape[1])]) @ b_y
        elif kind == "ideal":
            targets = torch.cat([c_y, t["repr.aug_coeffs"].reshape(-1, c_y.shape[1])]) @ b_y
        else:  # "same" (or no views): every view shares the unaugmented target
            targets = (c_y @ b_y).repeat(aug.A + 1, 1)
        return DistilledSet(aug.expand(x_s), targets, None, mean, std, src.name, ("identity", *aug.views))
    return DistilledSet(t["images"], t.get("targets"), t.get("labels"), mean, std, src.name, ("identity",))
