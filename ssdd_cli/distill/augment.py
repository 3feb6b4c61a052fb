"""Predefined augmentations τ_1..τ_A (SSDD §3.3, Appendix A.8): deterministic and differentiable.

Each augmentation is a fixed list of views; `expand(x)` builds X̃_s = [X_s, τ_1(X_s), …, τ_A(X_s)]
in one tensor, view-major, so that rows a·m … (a+1)·m − 1 are τ_a of the m images (a = 0 is the
identity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ssdd_cli.registry import Registry

ViewFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Augmentation:
    name: str
    views: tuple[str, ...]
    fns: tuple[ViewFn, ...]

    @property
    def A(self) -> int:
        return len(self.views)

    def view(self, x: Tensor, a: int) -> Tensor:
        """τ_a(x) for a in 0..A-1; x: (B, c, h, w) -> (B, c, h, w)."""
        return self.fns[a](x)

    def expand(self, x: Tensor) -> Tensor:
        """X̃_s: (m, c, h, w) -> (m·(A+1), c, h, w), identity first, then each view."""
        return torch.cat([x, *(fn(x) for fn in self.fns)], dim=0)


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation", option="aug")


def register_augmentation(name: str, views: dict[str, ViewFn]) -> Augmentation:
    """Register the predefined augmentation `name` with its views {view name: τ_a}, in order."""
    return AUGMENTATIONS.add(name, Augmentation(name, tuple(views), tuple(views.values())))


def get_augmentation(name: str) -> Augmentation:
    return AUGMENTATIONS.get(name)


def list_augmentations() -> list[str]:
    return AUGMENTATIONS.names()


def _rotate(k: int) -> ViewFn:
    return lambda x: torch.rot90(x, k, dims=(2, 3))


def _swap(dh: bool, dw: bool) -> ViewFn:
    """Swap the halves of the image: left/right (dw), top/bottom (dh), or both (jigsaw)."""

    def fn(x: Tensor) -> Tensor:
        shifts = (x.shape[2] // 2 if dh else 0, x.shape[3] // 2 if dw else 0)
        return torch.roll(x, shifts=shifts, dims=(2, 3))

    return fn


CROP_FRACTION = 20 / 32  # the paper's 20×20 crops of a 32×32 image


def _crop(where: str) -> ViewFn:
    """A fixed crop of CROP_FRACTION of each side (a corner or the centre), resized back."""

    def fn(x: Tensor) -> Tensor:
        h, w = x.shape[2], x.shape[3]
        ch, cw = round(h * CROP_FRACTION), round(w * CROP_FRACTION)
        top = {"tl": 0, "tr": 0, "bl": h - ch, "br": h - ch, "c": (h - ch) // 2}[where]
        left = {"tl": 0, "tr": w - cw, "bl": 0, "br": w - cw, "c": (w - cw) // 2}[where]
        patch = x[:, :, top : top + ch, left : left + cw]
        return F.interpolate(patch, size=(h, w), mode="bilinear", align_corners=False)

    return fn


register_augmentation("rotate", {"rot90": _rotate(1), "rot180": _rotate(2), "rot270": _rotate(3)})
register_augmentation(
    "jigsaw",
    {"swap-lr": _swap(False, True), "swap-tb": _swap(True, False), "swap-both": _swap(True, True)},
)
register_augmentation("crop", {f"crop-{w}": _crop(w) for w in ("tl", "tr", "bl", "br", "c")})
register_augmentation("none", {})
