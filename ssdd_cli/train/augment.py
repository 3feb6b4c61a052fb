"""Random crop and horizontal flip for fine-tuning (KRR-ST's `RandomCrop(padding=4)` + flip)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def random_crop_flip(
    images: Tensor, *, padding: int, flip: bool, generator: torch.Generator
) -> Tensor:
    """Zero-pad by `padding` pixels, crop back to the input size at a random offset, and
    mirror left-right with probability 1/2, independently per image.

    images: (B, c, h, w), in pixel space ([0, 1], before normalisation, so the padding is
    black as in torchvision/kornia). Random draws come from `generator` (CPU). Returns
    (B, c, h, w) on the images' device.
    """
    b, _, h, w = images.shape
    out = images
    if padding > 0:
        padded = F.pad(images, [padding] * 4)
        oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(images.device)
        ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(images.device)
        rows = oy[:, None] + torch.arange(h, device=images.device)  # (B, h)
        cols = ox[:, None] + torch.arange(w, device=images.device)  # (B, w)
        batch = torch.arange(b, device=images.device)[:, None, None]
        # advanced indexing around the channel slice puts channels last: (B, h, w, c)
        out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
        out = out.permute(0, 3, 1, 2).contiguous()
    if flip:
        mirror = (torch.rand(b, generator=generator) < 0.5).to(images.device)
        out = torch.where(mirror[:, None, None, None], out.flip(3), out)
    return out
