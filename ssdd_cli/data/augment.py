"""Batched random crop and horizontal flip (torchvision's `RandomCrop(padding)` + flip, on tensors).

Used by fine-tuning and by the distillation's crop-flip real side; both pad with black, as
KRR-ST's code does (zero fill in [0, 1] pixel space, before normalisation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def random_crop_flip(
    images: Tensor, *, padding: int, flip: bool, generator: torch.Generator,
    fill: Sequence[float] | None = None,
) -> Tensor:
    """Pad by `padding` pixels of the constant `fill`, crop back to the input size at a random
    offset, and mirror left-right with probability 1/2, per image.

    images: (B, c, h, w). fill: (c,) per-channel padding value, default 0 (black in [0, 1] pixel
    space); for normalised images pass black's normalised value, −mean/std. Random draws come from
    `generator` (CPU). Returns (B, c, h, w) on the images' device.
    """
    oy, ox, mirror = draw_crop_flip(images.shape[0], padding=padding, flip=flip, generator=generator)
    return crop_flip(images, oy, ox, mirror, padding=padding, fill=fill)


def draw_crop_flip(b: int, *, padding: int, flip: bool,
                   generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """The random draws of `random_crop_flip` for b images, in its order: the crop's offsets
    (oy, ox) in [0, 2·padding] and whether to mirror (CPU tensors)."""
    oy = ox = torch.zeros(b, dtype=torch.long)
    if padding > 0:
        oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
        ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    mirror = torch.rand(b, generator=generator) < 0.5 if flip else torch.zeros(b, dtype=torch.bool)
    return oy, ox, mirror


def crop_flip(images: Tensor, oy: Tensor, ox: Tensor, mirror: Tensor, *, padding: int,
              fill: Sequence[float] | None = None) -> Tensor:
    """The view of each image given its draws (`draw_crop_flip`): padded by `padding` pixels of
    `fill`, cropped at (oy, ox) back to (h, w), mirrored where `mirror`."""
    b, _, h, w = images.shape
    out = images
    if padding > 0:
        shift = torch.as_tensor(tuple(fill), dtype=images.dtype, device=images.device).view(1, -1, 1, 1) \
            if fill is not None else None
        # Constant padding of `fill`: pad (x − fill) with zeros, then add fill back.
        padded = F.pad(images if shift is None else images - shift, [padding] * 4)
        if shift is not None:
            padded = padded + shift
        rows = oy.to(images.device)[:, None] + torch.arange(h, device=images.device)  # (B, h)
        cols = ox.to(images.device)[:, None] + torch.arange(w, device=images.device)  # (B, w)
        batch = torch.arange(b, device=images.device)[:, None, None]
        # advanced indexing around the channel slice puts channels last: (B, h, w, c)
        out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
        out = out.permute(0, 3, 1, 2).contiguous()
    if bool(mirror.any()):
        out = torch.where(mirror.to(images.device)[:, None, None, None], out.flip(3), out)
    return out
