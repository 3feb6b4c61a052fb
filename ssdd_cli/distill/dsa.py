"""Differentiable Siamese augmentation (DSA, Zhao & Bilen 2021) as drawn parameters and pure ops.

An augmentation is drawn once, as a tuple of `AugOp`s (an op name and its parameters), and then
applied to any number of batches: applied to a class's real batch and to its synthetic images,
the same draw makes the augmentation *Siamese* (both sides see the same transform), and every op
is differentiable in the images, so the matching loss reaches the synthetic pixels through it.

Two ways of composing ops (`mode`):
- "dsa": DC/DSA's `aug_mode='S'`: one op group drawn uniformly from the strategy per draw
  (DM, DataDAM, IID, IDM, and the DM family's evaluation).
- "idc": IDC's `DiffAug` (DSDM): flip and colour always (when listed), then one of the other
  groups, then cutout.

`shared=True` draws one parameter set for every image (distillation: DC's `theta[:] = theta[0]`,
IDC's `batch=True`); `shared=False` draws one per image (evaluation, pool training).

Parameters come from an explicit `torch.Generator`; the reference code reseeds torch's global RNG
from the clock (`int(time.time() * 1000) % 100000`) to make both sides agree, which we do not.
Magnitudes are DC's `ParamDiffAug`: brightness ±0.5, saturation ×U(0, 2), contrast ×U(0.5, 1.5),
translation ±⌊size/8 + ½⌋ px with zero fill, cutout of half the side, flip with p = ½, scale
U(1/1.2, 1.2) per axis, rotation ±15°. They act on whatever space the images are in (normalised
images for every method here, as in the reference code).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ssdd_cli.errors import UsageError

GROUPS: dict[str, tuple[str, ...]] = {
    "color": ("brightness", "saturation", "contrast"),
    "crop": ("crop",),
    "cutout": ("cutout",),
    "flip": ("flip",),
    "scale": ("scale",),
    "rotate": ("rotate",),
}
MODES = ("dsa", "idc")
DSA_STRATEGY = "color_crop_cutout_flip_scale_rotate"  # DM, DataDAM, IID, IDM and their evaluation
IDC_STRATEGY = "color_crop_cutout"  # DSDM's matching augmentation (IDC's default)

CROP_RATIO = 0.125
CUTOUT_RATIO = 0.5
SCALE_RATIO = 1.2
ROTATE_DEGREES = 15.0


@dataclass(frozen=True)
class AugOp:
    """One drawn op: `params` (k, P) with k = 1 (one draw for every image) or k = batch size."""

    name: str
    params: Tensor


Augmentation = tuple[AugOp, ...]


def parse_strategy(strategy: str) -> tuple[str, ...]:
    """"color_crop_cutout" -> ("color", "crop", "cutout"); an unknown group is a `UsageError`."""
    groups = tuple(g for g in strategy.split("_") if g)
    unknown = [g for g in groups if g not in GROUPS]
    if not groups or unknown:
        raise UsageError(f"unknown augmentation strategy {strategy!r}; join groups from: "
                         f"{', '.join(GROUPS)} with '_'.", option="dsa")
    return groups


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UsageError(f"unknown augmentation mode {mode!r}; choose one of: {', '.join(MODES)}.",
                         option="dsa")
    return mode


def sample(strategy: str, mode: str, size: tuple[int, int], generator: torch.Generator, *,
           n: int = 1, shared: bool = True) -> Augmentation:
    """Draw an augmentation for images of `size` (h, w): one parameter row when `shared`, else
    one per image of a batch of `n`. Draws only on the CPU `generator`."""
    groups = parse_strategy(strategy)
    k = 1 if shared else n
    if check_mode(mode) == "dsa":
        chosen = [groups[int(torch.randint(len(groups), (1,), generator=generator))]]
    else:
        rest = [g for g in groups if g not in ("flip", "color", "cutout")]
        chosen = [g for g in ("flip", "color") if g in groups]
        if rest:
            chosen.append(rest[int(torch.randint(len(rest), (1,), generator=generator))])
        chosen += ["cutout"] if "cutout" in groups else []
    return tuple(AugOp(op, _DRAW[op](k, size, generator)) for g in chosen for op in GROUPS[g])


def apply(augmentation: Augmentation, x: Tensor) -> Tensor:
    """x (B, c, h, w) -> the augmented batch (B, c, h, w), differentiable in x."""
    for op in augmentation:
        params = op.params.to(x.device)
        if params.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"{op.name} drawn for {params.shape[0]} images, applied to {x.shape[0]}")
        x = _APPLY[op.name](x, params)
    return x.contiguous()


# Draws: (k rows, image size, generator) -> params (k, P), on the CPU.
def _uniform(k: int, size: tuple[int, int], g: torch.Generator) -> Tensor:
    return torch.rand(k, 1, generator=g)


def _translation(k: int, size: tuple[int, int], g: torch.Generator) -> Tensor:
    sh, sw = (int(s * CROP_RATIO + 0.5) for s in size)
    return torch.stack([torch.randint(-sh, sh + 1, (k,), generator=g),
                        torch.randint(-sw, sw + 1, (k,), generator=g)], dim=1)


def _cutout_centre(k: int, size: tuple[int, int], g: torch.Generator) -> Tensor:
    # DC draws the centre in [0, side + (1 − cut % 2)): the cut may hang over any edge.
    cuts = [int(s * CUTOUT_RATIO + 0.5) for s in size]
    return torch.stack([torch.randint(0, s + 1 - c % 2, (k,), generator=g)
                        for s, c in zip(size, cuts, strict=True)], dim=1)


def _scales(k: int, size: tuple[int, int], g: torch.Generator) -> Tensor:
    return torch.rand(k, 2, generator=g) * (SCALE_RATIO - 1 / SCALE_RATIO) + 1 / SCALE_RATIO


def _angle(k: int, size: tuple[int, int], g: torch.Generator) -> Tensor:
    return (torch.rand(k, 1, generator=g) - 0.5) * 2 * ROTATE_DEGREES / 180 * math.pi


_DRAW: dict[str, Callable[[int, tuple[int, int], torch.Generator], Tensor]] = {
    "brightness": _uniform, "saturation": _uniform, "contrast": _uniform, "flip": _uniform,
    "crop": _translation, "cutout": _cutout_centre, "scale": _scales, "rotate": _angle,
}


# Ops: (x (B, c, h, w), params (1 | B, P)) -> (B, c, h, w).
def brightness(x: Tensor, u: Tensor) -> Tensor:
    """x + (u − ½)·1."""
    return x + (u.view(-1, 1, 1, 1).to(x.dtype) - 0.5)


def saturation(x: Tensor, u: Tensor) -> Tensor:
    """Scale each pixel's deviation from its channel mean by 2u."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (u.view(-1, 1, 1, 1).to(x.dtype) * 2.0) + mean


def contrast(x: Tensor, u: Tensor) -> Tensor:
    """Scale each image's deviation from its mean by u + ½."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (u.view(-1, 1, 1, 1).to(x.dtype) + 0.5) + mean


def flip(x: Tensor, u: Tensor) -> Tensor:
    """Mirror left-right where u < ½."""
    return torch.where(u.view(-1, 1, 1, 1) < 0.5, x.flip(3), x)


def crop(x: Tensor, t: Tensor) -> Tensor:
    """Translate by t = (rows, columns) pixels, filling with zeros (DC's pad-and-crop)."""
    b, _, h, w = x.shape
    t = t.long().expand(b, 2)
    rows = torch.arange(h, device=x.device) + t[:, :1]  # (B, h): source row of each output row
    cols = torch.arange(w, device=x.device) + t[:, 1:]
    # Index into a one-pixel zero border: every out-of-range source lands on it (DC's clamp).
    rows = (rows + 1).clamp(0, h + 1)
    cols = (cols + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # (B, h+2, w+2, c)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def cutout(x: Tensor, centre: Tensor) -> Tensor:
    """Zero a (h/2)×(w/2) square centred at `centre` (clipped to the image)."""
    b, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    centre = centre.long().expand(b, 2)
    top, left = centre[:, :1] - ch // 2, centre[:, 1:] - cw // 2
    r = torch.arange(h, device=x.device)
    c = torch.arange(w, device=x.device)
    inside_r = (r >= top) & (r < top + ch)  # (B, h)
    inside_c = (c >= left) & (c < left + cw)
    keep = ~(inside_r[:, :, None] & inside_c[:, None, :])
    return x * keep[:, None].to(x.dtype)


def _affine(x: Tensor, theta: Tensor) -> Tensor:
    theta = theta.to(x.dtype).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


def scale(x: Tensor, s: Tensor) -> Tensor:
    """Resample on a grid scaled by (sx, sy) about the centre (bilinear, zero outside)."""
    zero = torch.zeros_like(s[:, 0])
    theta = torch.stack([torch.stack([s[:, 0], zero, zero], 1), torch.stack([zero, s[:, 1], zero], 1)], 1)
    return _affine(x, theta)


def rotate(x: Tensor, angle: Tensor) -> Tensor:
    """Resample on a grid rotated by `angle` radians (bilinear, zero outside)."""
    a = angle[:, 0]
    cos, sin, zero = torch.cos(a), torch.sin(a), torch.zeros_like(a)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    return _affine(x, theta)


_APPLY: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "brightness": brightness, "saturation": saturation, "contrast": contrast, "flip": flip,
    "crop": crop, "cutout": cutout, "scale": scale, "rotate": rotate,
}
