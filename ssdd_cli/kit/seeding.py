"""Seeding without touching the caller's global RNG: every random draw is reproducible from a seed
or an explicit generator (no reseeding from the clock, as some research code does)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch

T = TypeVar("T")


@contextmanager
def seeded(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the block with torch's global RNG seeded to `seed`, then restore the previous state.

    Module constructors, BatchNorm and dropout draw from the global RNG and take no generator, so
    this is the only way to make them reproducible; `fork_rng` keeps the seeding local to the
    block (on a CUDA `device`, its generator is forked too).
    """
    device = torch.device(device)
    devices: list[int] = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def draw_seed(generator: torch.Generator) -> int:
    """A fresh seed in [0, 2**62) drawn from `generator`."""
    return int(torch.randint(0, 2**62, (1,), generator=generator))


def build_seeded(build: Callable[[], T], generator: torch.Generator) -> T:
    """`build()` with the CPU RNG seeded from `generator`, leaving the global RNG untouched, so
    every re-initialisation (a pool model, a Q_a) is reproducible from the run's own generator
    and therefore resumable."""
    with seeded(draw_seed(generator)):
        return build()


def cpu_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded to `seed` (shuffles and augmentations draw on the CPU)."""
    return torch.Generator().manual_seed(seed)
