"""Fixed-seed splits, and the one place every source turns arrays into an `ImageSet`.

Splits use their own constant seed (`SPLIT_SEED`), not the run's `--seed`: a teacher trained
with one seed and an evaluation run with another must see the same validation and test images.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from ssdd_cli.data.imageset import ImageSet

SPLIT_SEED = 0
VAL_FRACTION = 0.1
TEST_FRACTION = 0.2


def carve(
    n: int, n_out: int, labels: np.ndarray | None = None, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Split range(n) into (kept, carved) index arrays, sorted, with `n_out` carved.

    With `labels` (n,) the carve is stratified: each class gives its share of `n_out`
    (largest-remainder rounding), chosen uniformly at random with a generator seeded by `seed`.
    Deterministic for a given (n, n_out, labels, seed).
    """
    if not 0 <= n_out <= n:
        raise ValueError(f"cannot carve {n_out} of {n} items")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    if labels is None or n_out == 0:
        return np.sort(perm[n_out:]), np.sort(perm[:n_out])
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels)
    share = counts * (n_out / n)
    quota = np.floor(share).astype(np.int64)
    # Largest remainder first; ties broken by class index so the result is deterministic.
    order = np.lexsort((np.arange(len(share)), -(share - quota)))
    quota[order[: n_out - int(quota.sum())]] += 1
    # Rank of each permuted item within its class: the first quota[c] of class c are carved.
    plab = labels[perm]
    by_class = np.argsort(plab, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(n, dtype=np.int64)
    rank[by_class] = np.arange(n) - starts[plab[by_class]]
    out = rank < quota[plab]
    return np.sort(perm[~out]), np.sort(perm[out])


class ShortClass(ValueError):
    """A class with fewer members than a per-class draw asks for (`label`, `available`)."""

    def __init__(self, label: int, available: int) -> None:
        super().__init__(f"class {label} has {available} members")
        self.label, self.available = label, available


def draw_per_class(labels: Tensor, k: int, generator: torch.Generator, classes: Iterable[int]) -> Tensor:
    """k indices of each class in `classes` among labels (n,), drawn without replacement (one
    permutation per class from `generator`, in `classes`' order); class-major (k·C,), on the CPU.
    Raises `ShortClass` for the first class with fewer than k members."""
    import torch

    picked = []
    for c in classes:
        members = (labels == c).nonzero().flatten().cpu()
        if members.numel() < k:
            raise ShortClass(int(c), members.numel())
        picked.append(members[torch.randperm(members.numel(), generator=generator)[:k]])
    return torch.cat(picked)


def val_count(n: int, fraction: float = VAL_FRACTION) -> int:
    """How many of n training images become validation images: round(fraction·n), at least 1
    when n >= 2 so every split is non-empty."""
    return min(n - 1, max(1, round(fraction * n))) if n >= 2 else 0


def to_labels(y: np.ndarray | None) -> Tensor | None:
    """Class indices (n,) as an int64 tensor, or None."""
    import torch

    return None if y is None else torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))


def assemble(
    name: str,
    train: Tensor,
    train_labels: np.ndarray | None,
    test: Tensor,
    test_labels: np.ndarray | None,
    *,
    val: Tensor | None = None,
    val_labels: np.ndarray | None = None,
    n_val: int | None = None,
    classes: int | None = None,
    limit: int | None = None,
) -> ImageSet:
    """Build an `ImageSet` from (n, c, r, r) float32 [0, 1] splits.

    Without `val`, `n_val` images (default `val_count(len(train))`) are carved from `train`
    (stratified when labelled). `limit` then keeps a fixed random subset of that many training
    images (for quick runs); val and test are untouched. Mean and std come from the source side,
    the train split alone (or what `limit` kept of it): val is held out of it (`ImageSet.source`).
    """
    import torch

    from ssdd_cli.data.imageset import ImageSet, channel_stats

    if val is None:
        n_val = val_count(len(train)) if n_val is None else n_val
        keep, out = carve(len(train), n_val, train_labels)
        val = train[torch.from_numpy(out)]
        val_labels = None if train_labels is None else train_labels[out]
        train = train[torch.from_numpy(keep)]
        train_labels = None if train_labels is None else train_labels[keep]
    if limit is not None and limit < len(train):
        _, kept = carve(len(train), limit, train_labels)
        train = train[torch.from_numpy(kept)]
        train_labels = None if train_labels is None else train_labels[kept]
    if classes is None and train_labels is not None:
        present = [y for y in (train_labels, val_labels, test_labels) if y is not None and len(y)]
        classes = max(int(np.max(y)) for y in present) + 1 if present else 0
    mean, std = channel_stats(train)
    return ImageSet(
        name=name,
        train=train.contiguous(),
        train_labels=to_labels(train_labels),
        val=val.contiguous(),
        val_labels=to_labels(val_labels),
        test=test.contiguous(),
        test_labels=to_labels(test_labels),
        mean=mean,
        std=std,
        classes=classes,
    )
