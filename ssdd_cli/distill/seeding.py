"""Deterministic module construction from an explicit generator (no global reseeding)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def build_seeded(build: Callable[[], T], generator: torch.Generator) -> T:
    """Call `build()` with the CPU RNG seeded from `generator`, leaving the global RNG untouched.

    PyTorch's layer initialisers draw from the global CPU RNG; forking it makes every pool
    re-initialisation reproducible from the engine's own generator (and so resumable).
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()
