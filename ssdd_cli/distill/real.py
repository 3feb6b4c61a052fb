"""The real side of the outer loss: batches X̄_t of the source and their teacher targets g(X̄_t).

`crop-flip` is KRR-ST's code: every outer step takes a random 32-px crop of the image padded by 4
black pixels (zero fill in [0, 1] pixel space, i.e. −mean/std after normalisation) and a random
horizontal flip, and recomputes the teacher's targets of that batch. `none` and `flip` are
departures offered for speed: their targets come from a cache computed once per view, so no
teacher forward pass runs inside the loop.

Under torchrun every rank draws the same whole batch (indices, crops, flips: the same generator
stream as one process) and keeps its share (`kit.distributed.shard`) before any network pass, so
the ranks' shares together are exactly the batch one process would use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ssdd_cli.data.augment import random_crop_flip
from ssdd_cli.errors import UsageError
from ssdd_cli.kit.distributed import shard

REAL_AUGS = ("none", "flip", "crop-flip")
PADDING = 4  # pixels of black around the image before the random crop (KRR-ST's RandomCrop(32, 4))
# The deterministic real-side views whose teacher targets are cached (teacher.cache.VIEWS).
CACHED_VIEWS = {"none": ("identity",), "flip": ("identity", "flip"), "crop-flip": ()}


def check_real_aug(name: str) -> str:
    if name not in REAL_AUGS:
        raise UsageError(f"unknown real-side augmentation {name!r}; choose one of: {', '.join(REAL_AUGS)}.",
                         option="real_aug")
    return name


class RealSampler:
    """Samples (X̄_t, g(X̄_t)) batches from the whole normalised source tensor on the device.

    black: the normalised value of a black pixel per channel, the padding of `crop-flip`.
    """

    def __init__(self, images: Tensor, real_aug: str, batch_size: int,
                 cached: dict[str, Tensor] | None = None,
                 teacher: Callable[[Tensor], Tensor] | None = None,
                 black: Sequence[float] | None = None) -> None:
        self.images = images
        self.black = black
        self.real_aug = check_real_aug(real_aug)
        self.batch_size = min(batch_size, images.shape[0])
        self.cached = cached or {}
        self.teacher = teacher
        missing = [v for v in CACHED_VIEWS[real_aug] if v not in self.cached]
        if missing or (real_aug == "crop-flip" and teacher is None):
            raise ValueError(f"real-aug {real_aug} needs cached views {missing} or a teacher")

    def sample(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """-> x_t (B, c, h, w), y_t (B, d_y): this rank's share of the batch (all of it in a
        single process)."""
        n, b = self.images.shape[0], self.batch_size
        idx = torch.randperm(n, generator=generator)[:b].to(self.images.device)
        x = self.images[idx]
        if self.real_aug == "none":
            return shard(x), shard(self.cached["identity"][idx])
        if self.real_aug == "flip":
            flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            y = torch.where(flip[:, None], self.cached["flip"][idx], self.cached["identity"][idx])
            return shard(x), shard(y)
        assert self.teacher is not None
        x = shard(random_crop_flip(x, padding=PADDING, flip=True, generator=generator, fill=self.black))
        with torch.no_grad():
            return x, self.teacher(x)
