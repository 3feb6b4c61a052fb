"""Selection baselines (SSDD §4 "Baselines"): real images paired with teacher targets.

`random` draws m images uniformly; `kmeans` clusters the teacher features into m groups and
keeps the real image nearest to each centroid. Both store raw images at the raw-image budget
convention and are not optimised (no outer loop).

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


@register_method
class RandomSelection(RawImageMethod):
    name = "random"
    summary = "m real images drawn uniformly, with their teacher targets"


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

    def defaults(self, preset: Preset, N: int, d_y: int) -> Any:
        return KMeansConfig(N)

    def init(self, config: Any, plan: BudgetReport, inputs: DistillInputs) -> DistilledModule:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=inputs.generator))
        feats = inputs.require_teacher().features()
        idx, centroids = kmeans_nearest(feats, plan.m, seed)
        idx = idx.to(inputs.images.device)
        targets = centroids if config.targets == "centroid" else feats[idx]
        return RawSet(inputs.images[idx], targets)
