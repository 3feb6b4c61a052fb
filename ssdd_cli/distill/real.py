"""The real side of the outer loss: batches X̄_t of the source and their teacher targets g(X̄_t).

`crop-flip` is KRR-ST's code: every outer step takes a random 32-px crop of the image padded by 4
black pixels (zero fill in [0, 1] pixel space, i.e. −mean/std after normalisation) and a random
horizontal flip, and recomputes the teacher's targets of that batch. `none` and `flip` are
departures offered for speed: their targets come from a cache computed once per view, so no
teacher forward pass runs inside the loop.

A bank (`bank` = K > 0, crop-flip only) is the departure between the two: K crop-flip views of
every source image are drawn once (from a generator of their own, seeded by the run's seed, so a
resumed run draws the same bank) and their teacher targets computed once; each outer step then
takes, for each image of its batch, one of that image's K views, uniformly. The teacher pass
leaves the loop; the views a run sees are K per image instead of the 162 (9 × 9 offsets × 2)
crop-flip can draw. It holds K·n·d_y float32 targets (Fashion-MNIST's 54,000 training images, K =
8, d_y = 128: 221 MB) and is built before the pool's initial training, or at the first step of a
resumed run.

Under torchrun every rank draws the same whole batch (indices, crops, flips: the same generator
stream as one process) and keeps its share (`kit.distributed.shard`) before any network pass, so
the ranks' shares together are exactly the batch one process would use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ssdd_cli.data.augment import crop_flip, draw_crop_flip, random_crop_flip
from ssdd_cli.errors import UsageError
from ssdd_cli.kit.distributed import shard
from ssdd_cli.progress import Callback, ProgressEvent, silent

REAL_AUGS = ("none", "flip", "crop-flip")
PADDING = 4  # pixels of black around the image before the random crop (KRR-ST's RandomCrop(32, 4))
# The deterministic real-side views whose teacher targets are cached (teacher.cache.VIEWS).
CACHED_VIEWS = {"none": ("identity",), "flip": ("identity", "flip"), "crop-flip": ()}


BANK_CHUNK = 2048  # images per teacher pass while the bank is built


def check_real_aug(name: str) -> str:
    if name not in REAL_AUGS:
        raise UsageError(f"unknown real-side augmentation {name!r}; choose one of: {', '.join(REAL_AUGS)}.",
                         option="real_aug")
    return name


class RealSampler:
    """Samples (X̄_t, g(X̄_t)) batches from the whole normalised source tensor on the device.

    black: the normalised value of a black pixel per channel, the padding of `crop-flip`.
    bank: K views per image whose targets are computed once (module docstring; 0: none), drawn
    from a generator seeded with `bank_seed`.
    """

    def __init__(self, images: Tensor, real_aug: str, batch_size: int,
                 cached: dict[str, Tensor] | None = None,
                 teacher: Callable[[Tensor], Tensor] | None = None,
                 black: Sequence[float] | None = None, bank: int = 0, bank_seed: int = 0) -> None:
        self.images = images
        self.black = black
        self.real_aug = check_real_aug(real_aug)
        self.batch_size = min(batch_size, images.shape[0])
        self.cached = cached or {}
        self.teacher = teacher
        missing = [v for v in CACHED_VIEWS[real_aug] if v not in self.cached]
        if missing or (real_aug == "crop-flip" and teacher is None):
            raise ValueError(f"real-aug {real_aug} needs cached views {missing} or a teacher")
        if bank and real_aug != "crop-flip":
            raise ValueError(f"a bank holds crop-flip views; real-aug {real_aug} has its own cache")
        self.bank_size, self.bank_seed = bank, bank_seed
        self._bank: tuple[Tensor, Tensor, Tensor, Tensor] | None = None

    def build_bank(self, callback: Callback = silent) -> None:
        """Draw the bank's views and compute their targets (once; `sample` calls it if needed)."""
        if self._bank is not None or not self.bank_size:
            return
        assert self.teacher is not None
        n, k = self.images.shape[0], self.bank_size
        oy, ox, mirror = draw_crop_flip(n * k, padding=PADDING, flip=True,
                                        generator=torch.Generator().manual_seed(self.bank_seed))
        oy, ox, mirror = (t.view(n, k) for t in (oy, ox, mirror))
        targets, chunks = [], range(0, n, BANK_CHUNK)
        with torch.no_grad():
            for view in range(k):
                for c, i in enumerate(chunks):
                    j = slice(i, i + BANK_CHUNK)
                    x = crop_flip(self.images[j], oy[j, view], ox[j, view], mirror[j, view],
                                  padding=PADDING, fill=self.black)
                    targets.append(self.teacher(x).float())
                    callback(ProgressEvent("bank", view * len(chunks) + c + 1, k * len(chunks)))
        y = torch.cat(targets).view(k, n, -1).transpose(0, 1).contiguous()  # (n, K, d_y)
        self._bank = (oy, ox, mirror, y)

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
        if self.bank_size:
            self.build_bank()
            assert self._bank is not None
            oy, ox, mirror, y = self._bank
            pick, view = idx.cpu(), torch.randint(0, self.bank_size, (b,), generator=generator)
            x = crop_flip(x, oy[pick, view], ox[pick, view], mirror[pick, view], padding=PADDING,
                          fill=self.black)
            return shard(x), shard(y[pick, view].to(x.device))
        assert self.teacher is not None
        x = shard(random_crop_flip(x, padding=PADDING, flip=True, generator=generator, fill=self.black))
        with torch.no_grad():
            return x, self.teacher(x)
