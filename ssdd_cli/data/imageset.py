"""`ImageSet`: the train/val/test tensors of one source, with its per-channel statistics.

torch is imported inside the methods, so that `ssdd_cli.data` loads without it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

# A channel whose train-split std is below this (a blank channel) is divided by this instead,
# so normalising it never divides by zero.
MIN_STD = 1e-6


@dataclass(frozen=True, eq=False)
class ImageSet:
    """One source's splits, float32 in [0, 1] at the source's resolution r.

    Attributes:
        name: the source spec that produced it (`"digits"`, `"imagefolder:/data/cub"`, ...).
        train, val, test: images (n, c, r, r), float32 in [0, 1]; val is carved from the
            official train split with a fixed seed, so the three never overlap. The source side
            (teacher, normalisation and target statistics, PCA, distillation, selection, the
            full row) uses `source`, the train split alone: val is held out of every step that
            makes an artifact, so a diagnostic or a screen scored on it is scored on images no
            step of distillation read (issue 33). Evaluation trains its probes on train and
            makes its choices on val.
        train_labels, val_labels, test_labels: class indices (n,) int64, or None for an
            unlabelled source.
        mean, std: per-channel statistics (c,) of `source` (train) in [0, 1] space; distillation and
            training work on `(x - mean) / std` (see `ssdd_cli.data.normalize`).
        classes: number of classes, or None for an unlabelled source.

    `eq=False`: tensors have no single truth value, so two sets compare by identity.
    """

    name: str
    train: Tensor
    train_labels: Tensor | None
    val: Tensor
    val_labels: Tensor | None
    test: Tensor
    test_labels: Tensor | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: int | None

    def __post_init__(self) -> None:
        import torch

        shape = tuple(self.train.shape[1:])
        if self.train.dim() != 4 or shape[1] != shape[2]:
            raise ValueError(f"train must be (n, c, r, r), got {tuple(self.train.shape)}")
        for split in ("train", "val", "test"):
            x: Tensor = getattr(self, split)
            y: Tensor | None = getattr(self, f"{split}_labels")
            if x.dtype != torch.float32 or tuple(x.shape[1:]) != shape:
                raise ValueError(f"{split} is {x.dtype} {tuple(x.shape)}, expected float32 (n, *{shape})")
            if y is not None and (y.dtype != torch.int64 or tuple(y.shape) != (len(x),)):
                raise ValueError(f"{split}_labels is {y.dtype} {tuple(y.shape)}, expected int64 ({len(x)},)")
        if len(self.mean) != shape[0] or len(self.std) != shape[0]:
            raise ValueError(f"mean/std need {shape[0]} values, got {len(self.mean)}/{len(self.std)}")

    def validation(self) -> ImageSet:
        """The same source with val standing in for test, so that an evaluation scores the
        validation split: for choosing settings without looking at test images. val keeps its
        place too (a protocol's own choices then see the images it is scored on: a screen, not a
        final number)."""
        return replace(self, test=self.val, test_labels=self.val_labels)

    @property
    def channels(self) -> int:
        """c, the number of image channels (1 for digits, 3 for RGB sources)."""
        return int(self.train.shape[1])

    @property
    def resolution(self) -> int:
        """r, the side of the square images in pixels."""
        return int(self.train.shape[-1])

    @property
    def source(self) -> Tensor:
        """The source side (n_train, c, r, r): the train split, without val. The papers' teacher,
        PCA and distillation see the whole official train split; here its validation tenth is
        held out of them (docs/reproducing.md), so that a screen on val is a screen on unseen
        images, as the test split is."""
        return self.train

    @property
    def source_labels(self) -> Tensor | None:
        """Labels (n_train,) of `source`, or None for an unlabelled source."""
        return self.train_labels

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(train, val, test) image counts."""
        return len(self.train), len(self.val), len(self.test)


def channel_stats(*parts: Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of the images of all `parts` (each (n_i, c, h, w))
    taken together, accumulated in float64.

    Chunked so a CIFAR-sized split never needs a float64 copy of itself (nor the parts a joint
    copy). A blank channel's std is floored at `MIN_STD`.
    """
    import torch

    c = parts[0].shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    squares = torch.zeros(c, dtype=torch.float64)
    count = 0
    for x in parts:
        for start in range(0, len(x), chunk):
            part = x[start : start + chunk].to(torch.float64)
            total += part.sum(dim=(0, 2, 3))
            squares += part.square().sum(dim=(0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    count = max(1, count)
    mean = total / count
    var = (squares / count - mean.square()).clamp_min(0.0)
    std = var.sqrt().clamp_min(MIN_STD)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)
