"""Local seeding: reproducible initialisation without touching the caller's global RNG state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block with torch's global RNG seeded to `seed`, then restore the previous state.

    Module constructors and dropout draw from the global RNG and take no generator, so this is
    the only way to make them reproducible; `fork_rng` keeps the seeding local to the block.
    """
    devices: list[int] = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def cpu_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded to `seed` (shuffles and augmentations draw on the CPU)."""
    return torch.Generator().manual_seed(seed)
