"""The labelled source seen class by class: per-class real batches for distribution matching.

DM's `get_images(c, n)` draws n images of class c without replacement (a fresh permutation per
call); a class with fewer than n images gives all of them, shuffled. IDC/DSDM iterate a per-class
loader instead; at the per-iteration level both are a random batch of the class.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssdd_cli.errors import DataError


class ClassSampler:
    """Real images (n, c, h, w, normalised, on the device) with labels (n,) in 0..classes−1."""

    def __init__(self, images: Tensor, labels: Tensor, classes: int) -> None:
        if labels.shape != (images.shape[0],):
            raise ValueError(f"need one label per image, got {tuple(labels.shape)} for {images.shape[0]}")
        self.images = images
        self.labels = labels.to(images.device, torch.long)
        self.classes = classes
        self.index = [torch.nonzero(self.labels == c).flatten() for c in range(classes)]
        empty = [c for c, idx in enumerate(self.index) if idx.numel() == 0]
        if empty:
            raise DataError(f"class {empty[0]} of the source has no training image, so it cannot be "
                            "distilled; use a source with images of every class.")

    def count(self, c: int) -> int:
        return int(self.index[c].numel())

    def sample(self, c: int, n: int, generator: torch.Generator) -> Tensor:
        """min(n, |class c|) images of class c drawn without replacement: (B, c, h, w)."""
        idx = self.index[c]
        pick = torch.randperm(idx.numel(), generator=generator)[:n].to(idx.device)
        return self.images[idx[pick]]

    def first(self, c: int, n: int) -> Tensor:
        """The first n images of class c in source order (IDC/DSDM's initialisation)."""
        return self.images[self.index[c][:n]]

    def sample_any(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """n images of any class without replacement, with their labels (IDM's network training)."""
        idx = torch.randperm(self.images.shape[0], generator=generator)[:n].to(self.images.device)
        return self.images[idx], self.labels[idx]

    def epoch(self, batch_size: int, generator: torch.Generator) -> list[Tensor]:
        """A shuffled pass over every image in minibatches of indices (the last may be smaller;
        a lone last image joins the previous batch, as a batch of one trains badly)."""
        order = torch.randperm(self.images.shape[0], generator=generator).to(self.images.device)
        chunks = list(order.split(batch_size))
        if len(chunks) > 1 and chunks[-1].numel() == 1:
            chunks[-2:] = [torch.cat(chunks[-2:])]
        return chunks
