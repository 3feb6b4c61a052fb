"""Algorithm 2 on a stored artifact: rebuild X̃_s and the regression targets Ỹ^Q (or labels).

Multi-formation raw artifacts (DSDM, IDM: `raw.factor` = l > 1) store m images of l×l tiles;
the training set is every tile upsampled to a full image (l²·m images, tile-major, each with
its image's label), and `packed` keeps the stored images."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ssdd_cli.bundle import Bundle
from ssdd_cli.distill.approx import ApproxNet, approx_targets
from ssdd_cli.distill.augment import get_augmentation
from ssdd_cli.distill.labelled import decode_tiles, tile_names
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
    views: tuple[str, ...]  # ("identity", τ_1, …), or the tiles ("tile-0-0", …) of `packed`
    packed: Tensor | None = None  # (m, c, h, w) stored multi-formation images, if any


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
    raw = man.raw
    assert raw is not None
    if raw.factor > 1:
        tiles = raw.factor**2
        labels, raw_targets = t.get("labels"), t.get("targets")
        return DistilledSet(decode_tiles(t["images"], raw.factor),
                            raw_targets.repeat(tiles, 1) if raw_targets is not None else None,
                            labels.repeat(tiles) if labels is not None else None, mean, std,
                            src.name, tile_names(raw.factor), packed=t["images"])
    return DistilledSet(t["images"], t.get("targets"), t.get("labels"), mean, std, src.name, ("identity",))
