"""Batched random crop and horizontal flip (torchvision's `RandomCrop(padding)` + flip, on tensors).

Used by fine-tuning (zero padding in pixel space, as KRR-ST) and by the distillation's
`--real-aug crop-flip` (reflect padding in normalised space).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def random_crop_flip(
    images: Tensor, *, padding: int, flip: bool, generator: torch.Generator,
    padding_mode: str = "constant",
) -> Tensor:
    """Pad by `padding` pixels (`padding_mode`: "constant" zeros or "reflect"), crop back to the
    input size at a random offset, and mirror left-right with probability 1/2, per image.

    images: (B, c, h, w). Zero padding is black only in pixel space ([0, 1], before
    normalisation, as torchvision/kornia pad); in normalised space use "reflect". Random draws come
    from `generator` (CPU). Returns (B, c, h, w) on the images' device.
    """
    b, _, h, w = images.shape
    out = images
    if padding > 0:
        padded = F.pad(images, [padding] * 4, mode=padding_mode)
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
