"""Per-channel normalisation: distillation and training work on (x - mean) / std.

torch is imported inside the functions, so that `ssdd_cli.data` loads without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import Tensor


def _per_channel(values: Sequence[float], like: Tensor) -> Tensor:
    """values (c,) as a (c, 1, 1) tensor on `like`'s device and dtype, broadcasting over (h, w)."""
    import torch

    t = torch.as_tensor(tuple(values), dtype=like.dtype, device=like.device)
    if t.dim() != 1 or t.numel() != like.shape[-3]:
        raise ValueError(f"need {like.shape[-3]} per-channel values, got {t.numel()}")
    return t.view(-1, 1, 1)


def normalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """(x - mean) / std per channel, for images x: (B, c, h, w) in [0, 1]; returns (B, c, h, w)."""
    return (x - _per_channel(mean, x)) / _per_channel(std, x)


def denormalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """x · std + mean per channel, the inverse of `normalize`: (B, c, h, w) -> (B, c, h, w).

    Not clamped: distilled images may leave [0, 1]; writers clamp when they quantise to PNG.
    """
    return x * _per_channel(std, x) + _per_channel(mean, x)


def device_tensor(
    images: Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device | str = "cpu",
) -> Tensor:
    """A whole split (n, c, h, w) in [0, 1], normalised, float32, contiguous, on `device`.

    Made once per run: distillation samples real batches from it thousands of times
    (`real[torch.randint(n, (b,), generator=g)]`), so it never goes back through the CPU.
    The copy is moved first, then normalised in place on the device.
    """
    import torch

    x = images.to(device=device, dtype=torch.float32, copy=True)
    x.sub_(_per_channel(mean, x)).div_(_per_channel(std, x))
    return x.contiguous()
