"""Resizing whole splits to a source's preset resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def resize_images(x: Tensor, resolution: int, chunk: int = 4096) -> Tensor:
    """Bilinearly resize images x: (n, c, h, w) in [0, 1] to (n, c, resolution, resolution).

    Downsampling is antialiased (otherwise bilinear aliases badly at 2x and beyond); the result is
    clamped to [0, 1] because antialiasing filters can overshoot slightly. Returns `x` itself
    when it already has the size. Non-square inputs are stretched to a square.
    """
    if x.shape[-2:] == (resolution, resolution):
        return x
    down = x.shape[-1] > resolution or x.shape[-2] > resolution
    parts = [
        F.interpolate(
            x[i : i + chunk].float(),
            size=(resolution, resolution),
            mode="bilinear",
            align_corners=False,
            antialias=down,
        ).clamp_(0.0, 1.0)
        for i in range(0, len(x), chunk)
    ]
    if not parts:
        return torch.zeros(0, x.shape[1], resolution, resolution)
    return torch.cat(parts)
