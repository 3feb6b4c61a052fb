"""Selection baselines (SSDD §4 "Baselines"): real images paired with teacher targets.

`random` draws m images uniformly (or ⌊m/C⌋ of each class, `per_class`); `kmeans` clusters the
teacher features into m groups and keeps the real image nearest to each centroid. Both store raw
images at the raw-image budget convention and are not optimised (no outer loop). From a labelled
source they also store the kept images' class labels (not charged, as the papers charge no
targets), which the supervised `classify` protocol trains on.

k-means targets: the SSDD paper says "the centroids and their corresponding image samples
construct the distilled dataset", which allows the nearest image's own teacher feature (our
default, `kmeans_targets="nearest"`: every stored pair is a real image and its real feature) or
the centroid itself (`kmeans_targets="centroid"`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from ssdd_cli.budget import BudgetReport
from ssdd_cli.data.splits import ShortClass, draw_per_class
from ssdd_cli.distill.inputs import DistillInputs
from ssdd_cli.distill.methods.base import register_method
from ssdd_cli.distill.methods.krr_st import RawConfig, RawImageMethod
from ssdd_cli.distill.param import DistilledModule, RawSet
from ssdd_cli.errors import UsageError
from ssdd_cli.presets import Preset

KMEANS_TARGETS = ("nearest", "centroid")


def kmeans_nearest(features: Tensor, m: int, seed: int) -> tuple[Tensor, Tensor]:
    """(indices (m,) of the rows of `features` (n, d) nearest to the m k-means centroids, all
    distinct; the centroids (m, d), in the same order)."""
    from sklearn.cluster import KMeans  # deferred: scikit-learn is slow to import (and loads rich)

    km = KMeans(n_clusters=m, n_init=3, random_state=seed).fit(features.detach().cpu().double().numpy())
    centroids = torch.from_numpy(km.cluster_centers_).to(features)
    dist = torch.cdist(centroids, features, compute_mode="donot_use_mm_for_euclid_dist")
    chosen: list[int] = []
    for row in dist:
        chosen.append(next(i for i in torch.argsort(row).tolist() if i not in chosen))
    return torch.tensor(chosen, dtype=torch.long), centroids


@dataclass(frozen=True)
class RandomConfig(RawConfig):
    """`per_class`: draw ⌊m/C⌋ images of each of the C classes (the "Random" rows of the DC, DSA
    and DM papers' tables, and the IPC of the DM family), instead of m uniformly (SSDD's). When C
    does not divide m, the artifact holds C·⌊m/C⌋ images and the rest of the budget is unused."""

    per_class: bool = False


@register_method
class RandomSelection(RawImageMethod):
    name = "random"
    summary = "m real images drawn uniformly (or per class), with their teacher targets"
    options: ClassVar[dict[str, str]] = {**RawImageMethod.options, "per_class": "per_class"}
    keeps_labels = True

    def defaults(self, preset: Preset, N: int, d_y: int) -> Any:
        return RandomConfig(N)

    def select(self, config: Any, inputs: DistillInputs, m: int) -> Tensor:
        if not config.per_class:
            return super().select(config, inputs, m)
        if inputs.labels is None:
            raise UsageError("a per-class selection needs a labelled source; drop --per-class.",
                             option="per_class")
        classes = int(inputs.labels.max()) + 1
        if m < classes:
            raise UsageError(f"the budget buys {m} images, fewer than one for each of the {classes} classes; "
                             "use a larger budget or drop --per-class.", option="budget")
        try:
            return draw_per_class(inputs.labels, m // classes, inputs.generator, range(classes))
        except ShortClass as short:
            raise UsageError(f"class {short.label} has {short.available} images, fewer than the "
                             f"{m // classes} a per-class selection of this budget takes; use a smaller "
                             "budget.", option="budget") from None


@dataclass(frozen=True)
class KMeansConfig(RawConfig):
    """`targets`: "nearest" (the nearest image's teacher feature) or "centroid" (module docstring)."""

    targets: str = "nearest"

    def __post_init__(self) -> None:
        if self.targets not in KMEANS_TARGETS:
            raise UsageError(f"unknown k-means targets {self.targets!r}; choose one of: "
                             f"{', '.join(KMEANS_TARGETS)}.", option="kmeans_targets")


@register_method
class KMeansSelection(RawImageMethod):
    name = "kmeans"
    summary = "the real image nearest each of m k-means centroids of the teacher features"
    options: ClassVar[dict[str, str]] = {**RawImageMethod.options, "kmeans_targets": "targets"}
    keeps_labels = True

    def defaults(self, preset: Preset, N: int, d_y: int) -> Any:
        return KMeansConfig(N)

    def init(self, config: Any, plan: BudgetReport, inputs: DistillInputs) -> DistilledModule:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=inputs.generator))
        feats = inputs.require_teacher().features()
        idx, centroids = kmeans_nearest(feats, plan.m, seed)
        idx = idx.to(inputs.images.device)
        targets = centroids if config.targets == "centroid" else feats[idx]
        return RawSet(inputs.images[idx], targets, self.labels_of(inputs, idx))
