"""Selection baselines (SSDD §4 "Baselines"): real images paired with their teacher targets.

`random` draws m images uniformly; `kmeans` clusters the teacher features into m groups and
keeps the real image nearest to each centroid. Both store raw images at the raw-image budget
convention and are not optimised (no outer loop).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssdd_cli.distill.inputs import DistillInputs
from ssdd_cli.distill.methods.base import register_method
from ssdd_cli.distill.methods.krr_st import RawImageMethod


def kmeans_nearest(features: Tensor, m: int, seed: int) -> Tensor:
    """Indices (m,) of the rows of `features` (n, d) nearest to the m k-means centroids, distinct."""
    from sklearn.cluster import KMeans  # deferred: scikit-learn is slow to import (and loads rich)

    km = KMeans(n_clusters=m, n_init=3, random_state=seed).fit(features.detach().cpu().double().numpy())
    centroids = torch.from_numpy(km.cluster_centers_).to(features)
    dist = torch.cdist(centroids, features, compute_mode="donot_use_mm_for_euclid_dist")
    chosen: list[int] = []
    for row in dist:
        chosen.append(next(i for i in torch.argsort(row).tolist() if i not in chosen))
    return torch.tensor(chosen, dtype=torch.long)


@register_method
class RandomSelection(RawImageMethod):
    name = "random"
    summary = "m real images drawn uniformly, with their teacher targets"


@register_method
class KMeansSelection(RawImageMethod):
    name = "kmeans"
    summary = "the real image nearest each of m k-means centroids of the teacher features"

    def select(self, inputs: DistillInputs, m: int) -> Tensor:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=inputs.generator))
        return kmeans_nearest(inputs.require_teacher().features(), m, seed)
