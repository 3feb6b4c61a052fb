"""A labelled distilled set: IPC images per class (the DM family), optionally multi-formation.

    S = (x, y)       x: (C·IPC, c, h, w), class-major (rows c·IPC … (c+1)·IPC − 1 are class c)

Multi-formation (IDC; IDM's "partitioning and expansion"; DSDM's factor l): a stored image holds
l×l tiles of side h/l, each decoded by bilinear upsampling to a full h×w image, so the IPC stored
images of a class stand for l²·IPC training images at no extra storage (`decode_tiles`).

Pixel space (DSDM, built on IDC's code): the images are optimised in [0, 1] pixel space, clamped
to it before every outer step, and normalised only when decoded; every other method optimises
normalised images directly. Optimising in pixel space is not a reparameterisation for free: SGD's
step on normalised pixels is 1/std² times larger, so keeping DSDM's space keeps its lr meaningful.
The artifact always stores normalised images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssdd_cli.data.normalize import denormalize, normalize
from ssdd_cli.distill.param import DistilledModule


def decode_tiles(x: Tensor, factor: int) -> Tensor:
    """Multi-formation decoding: x (n, c, h, w) -> (factor²·n, c, h, w), tile-major.

    Tile (i, j) of every image is x[:, :, i·h/l : (i+1)·h/l, j·w/l : (j+1)·w/l], upsampled
    bilinearly (align_corners=False) back to (h, w); rows t·n … (t+1)·n − 1 hold tile
    t = i·l + j of the n images. factor 1 returns x itself.
    """
    if factor == 1:
        return x
    n, _, h, w = x.shape
    if h % factor or w % factor:
        raise ValueError(f"a {h}×{w} image does not split into {factor}×{factor} tiles")
    th, tw = h // factor, w // factor
    tiles = [x[:, :, i * th:(i + 1) * th, j * tw:(j + 1) * tw] for i in range(factor) for j in range(factor)]
    return F.interpolate(torch.cat(tiles), size=(h, w), mode="bilinear", align_corners=False)


def tile_names(factor: int) -> tuple[str, ...]:
    """The names of the decoded tiles in `decode_tiles` order: "tile-0-0", "tile-0-1", …"""
    return tuple(f"tile-{i}-{j}" for i in range(factor) for j in range(factor))


class LabelledSet(DistilledModule):
    """IPC learnable images per class with fixed labels.

    images: (C·IPC, c, h, w) initial images, class-major, in the set's own space (normalised,
        or [0, 1] pixels when `pixel` gives the source's (mean, std)).
    factor: multi-formation factor l (1: plain images).
    """

    labels: Tensor
    image_side: ClassVar[tuple[str, ...]] = ("x",)

    def __init__(self, images: Tensor, classes: int, factor: int = 1,
                 pixel: tuple[Sequence[float], Sequence[float]] | None = None) -> None:
        super().__init__()
        if images.shape[0] % classes:
            raise ValueError(f"{images.shape[0]} images do not split into {classes} equal classes")
        self.x = nn.Parameter(images.clone())
        self.classes = classes
        self.ipc = images.shape[0] // classes
        self.factor = factor
        self.pixel = (tuple(pixel[0]), tuple(pixel[1])) if pixel is not None else None
        labels = torch.arange(classes, device=images.device).repeat_interleave(self.ipc)
        self.register_buffer("labels", labels)

    def normalised(self, x: Tensor) -> Tensor:
        return normalize(x, *self.pixel) if self.pixel is not None else x

    def class_images(self, c: int) -> Tensor:
        """The decoded, normalised training images of class c: (l²·IPC, c, h, w)."""
        x = self.x[c * self.ipc:(c + 1) * self.ipc]
        return self.normalised(decode_tiles(x, self.factor))

    def support(self) -> tuple[Tensor, Tensor]:
        """Every decoded, normalised image (l²·m, c, h, w) and its label (l²·m,)."""
        x = self.normalised(decode_tiles(self.x, self.factor))
        return x, self.labels.repeat(self.factor ** 2)

    @torch.no_grad()
    def project_(self) -> None:
        """Clamp pixel-space images to [0, 1] (IDC/DSDM, before every outer step); else nothing."""
        if self.pixel is not None:
            self.x.clamp_(0.0, 1.0)

    @torch.no_grad()
    def stored(self) -> Tensor:
        """What the artifact stores: the (projected) images, normalised, (m, c, h, w)."""
        x = self.x.clamp(0.0, 1.0) if self.pixel is not None else self.x
        return self.normalised(x).detach().clone()


def to_pixels(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Normalised images -> [0, 1] pixels (clamped), for a pixel-space set's initialisation."""
    return denormalize(images, mean, std).clamp(0.0, 1.0)
