"""The real side of the outer loss: batches X̄_t of the source and their teacher targets g(X̄_t).

`none` and `flip` draw targets from a cache computed once per view (the fast path: no teacher
forward inside the loop); `crop-flip` recomputes the teacher on every augmented batch (faithful to
KRR-ST's code, which pays a teacher forward pass each outer step).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ssdd_cli.data.augment import random_crop_flip
from ssdd_cli.errors import UsageError

REAL_AUGS = ("none", "flip", "crop-flip")
# The deterministic real-side views whose teacher targets are cached (teacher.cache.VIEWS).
CACHED_VIEWS = {"none": ("identity",), "flip": ("identity", "flip"), "crop-flip": ()}


def check_real_aug(name: str) -> str:
    if name not in REAL_AUGS:
        raise UsageError(f"unknown real-side augmentation {name!r}; choose one of: {', '.join(REAL_AUGS)}.",
                         option="real_aug")
    return name


class RealSampler:
    """Samples (X̄_t, g(X̄_t)) batches from the whole normalised source tensor on the device."""

    def __init__(self, images: Tensor, real_aug: str, batch_size: int,
                 cached: dict[str, Tensor] | None = None,
                 teacher: Callable[[Tensor], Tensor] | None = None) -> None:
        self.images = images
        self.real_aug = check_real_aug(real_aug)
        self.batch_size = min(batch_size, images.shape[0])
        self.cached = cached or {}
        self.teacher = teacher
        missing = [v for v in CACHED_VIEWS[real_aug] if v not in self.cached]
        if missing or (real_aug == "crop-flip" and teacher is None):
            raise ValueError(f"real-aug {real_aug} needs cached views {missing} or a teacher")

    def sample(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """-> x_t (B, c, h, w), y_t (B, d_y)."""
        n, b = self.images.shape[0], self.batch_size
        idx = torch.randperm(n, generator=generator)[:b].to(self.images.device)
        x = self.images[idx]
        if self.real_aug == "none":
            return x, self.cached["identity"][idx]
        if self.real_aug == "flip":
            flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            y = torch.where(flip[:, None], self.cached["flip"][idx], self.cached["identity"][idx])
            return x, y
        assert self.teacher is not None
        x = random_crop_flip(x, padding=4, flip=True, generator=generator, padding_mode="reflect")
        with torch.no_grad():
            return x, self.teacher(x)
