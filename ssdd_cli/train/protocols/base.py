"""What every evaluation protocol shares: its registry, the context it sees, its result.

A protocol is a function `run(ctx: EvalContext, config, seed) -> list[ProtocolResult]`,
registered with `@register_protocol(name, config=ItsConfig)`: a new protocol is one file. It
trains on the target's train split only, never looks at the test split until the final model
scores it once, and may tune only on the val split. Every backbone sees the target's images
normalised with the target's own mean/std (the usual transfer convention; KRR-ST normalises each
target with its statistics).

A protocol takes a backbone (`input="backbone"`), or, like `classify`, a labelled set to train
fresh networks on (`input="labelled set"`: run by `train.classify`, not through `EvalContext`).

`shots=k` (few-shot) restricts the labelled train set to k images per class, drawn with the
seed, for the protocols registered with `uses_shots`; `fraction=p` (limited labels) to a
stratified p of it (each class its share), drawn with the seed, for the same protocols.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ssdd_cli.data import ImageSet, normalize
from ssdd_cli.data.splits import ShortClass, carve, draw_per_class
from ssdd_cli.errors import UsageError
from ssdd_cli.kit.seeding import cpu_generator
from ssdd_cli.models import Backbone, extract_features
from ssdd_cli.progress import Callback, silent
from ssdd_cli.registry import Registry


@dataclass(frozen=True)
class ProtocolResult:
    """One number a protocol reports for one seed, e.g. ("linear", "accuracy", 0.91)."""

    protocol: str
    metric: str
    value: float


@dataclass
class EvalContext:
    """What a protocol sees: the backbone, the target, the options, and a feature cache.

    Features of a split are computed once (frozen backbone, eval mode) and shared by all seeds.
    """

    backbone: Backbone
    target: ImageSet
    device: torch.device
    shots: int | None = None
    teacher: Backbone | None = None
    callback: Callback = silent
    feature_batch_size: int = 512
    fraction: float | None = None
    _cache: dict[tuple[str, str], Tensor] = field(default_factory=dict, repr=False)

    def images(self, split: str) -> Tensor:
        """Raw images (n, c, r, r) in [0, 1] of "train", "val" or "test"."""
        images: Tensor = getattr(self.target, split)
        return images

    def labels(self, split: str) -> Tensor:
        """Labels (n,) int64 of a split (protocols that need labels are refused earlier)."""
        labels: Tensor | None = getattr(self.target, f"{split}_labels")
        assert labels is not None
        return labels

    def features(self, split: str, *, teacher: bool = False) -> Tensor:
        """Features (n, d) on the device of the backbone (or the teacher) for a whole split."""
        key = ("teacher" if teacher else "backbone", split)
        if key not in self._cache:
            net = self.teacher if teacher else self.backbone
            assert net is not None
            self._cache[key] = self.features_of(net, self.images(split))
        return self._cache[key]

    def features_of(self, net: Backbone, images: Tensor) -> Tensor:
        """Features (n, d) of raw images (n, c, r, r), normalised a chunk at a time."""
        chunk = max(self.feature_batch_size, 4096)
        parts = [extract_features(net, normalize(images[i:i + chunk], self.target.mean, self.target.std),
                                  batch_size=self.feature_batch_size, device=self.device)
                 for i in range(0, images.shape[0], chunk)]
        if not parts:
            return torch.zeros(0, net.feature_dim, device=self.device)
        return torch.cat(parts)

    def train_indices(self, seed: int) -> Tensor:
        """Indices (n',) of the labelled train images used: all, `shots` per class, or a
        stratified `fraction` of them (at least one image), drawn with `seed`."""
        labels = self.labels("train")
        if self.fraction is not None:
            n = labels.numel()
            _, kept = carve(n, max(1, round(self.fraction * n)), labels.cpu().numpy(), seed=seed)
            return torch.from_numpy(kept)
        if self.shots is None:
            return torch.arange(labels.numel())
        return few_shot_indices(labels, self.shots, cpu_generator(seed))

    @property
    def num_classes(self) -> int:
        if self.target.classes is not None:
            return int(self.target.classes)
        return int(self.labels("train").max()) + 1


def few_shot_indices(labels: Tensor, shots: int, generator: torch.Generator) -> Tensor:
    """`shots` indices per class of labels (n,), drawn without replacement; sorted (k·C,)."""
    try:
        return draw_per_class(labels, shots, generator, torch.unique(labels).tolist()).sort().values
    except ShortClass as short:
        raise UsageError(
            f"{shots} shots ask for more images than class {short.label} has in the train split "
            f"({short.available}); choose {short.available} shots or fewer.", option="shots") from None


ProtocolFn = Callable[[EvalContext, Any, int], list[ProtocolResult]]
BACKBONE, LABELLED_SET = "backbone", "labelled set"  # what a protocol takes


@dataclass(frozen=True)
class Protocol:
    """A registered protocol: its function, its config type (instantiable with no arguments for
    the defaults), what it needs (labels, a teacher), whether `shots` applies, and what it
    takes (`BACKBONE` or `LABELLED_SET`)."""

    name: str
    run: ProtocolFn
    config: type
    needs_labels: bool
    needs_teacher: bool
    uses_shots: bool
    summary: str
    input: str = BACKBONE


PROTOCOLS: Registry[Protocol] = Registry("protocol")


def register_protocol(name: str, *, config: type, needs_labels: bool = True, needs_teacher: bool = False,
                      uses_shots: bool = True, input: str = BACKBONE) -> Callable[[ProtocolFn], ProtocolFn]:
    """Register `fn(ctx, config, seed) -> list[ProtocolResult]` under `name` (a name once only)."""

    def decorate(fn: ProtocolFn) -> ProtocolFn:
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        PROTOCOLS.add(name, Protocol(name, fn, config, needs_labels, needs_teacher, uses_shots, summary,
                                     input))
        return fn

    return decorate


def list_protocols() -> list[str]:
    """The registered protocol names, sorted."""
    return PROTOCOLS.names()


def get_protocol(name: str) -> Protocol:
    """The protocol registered as `name`; UsageError listing the valid names otherwise."""
    return PROTOCOLS.get(name)
