"""Scale-free regression targets: the teacher's features standardised per dimension.

KRR-ST's and SSDD's code regress the teacher's raw features g(x). A small teacher's features can
have a tiny spread (the digits-nuisance ConvNet: mean 0.27, per-dimension variance 0.0045 over
its training images), and then a linear head fits 20–200 such rows by itself while the backbone
only decays (docs/results.md, "Pretraining trains the backbone"). Standardising each dimension
with the teacher's mean μ and std σ over the source's images,

    y' = (g(x) − μ) / σ,

gives every dimension unit variance over the source; distillation's loss and pretraining then
both work in that space, and the artifact's manifest keeps μ and σ so the raw features come back
as y'·σ + μ. "raw" keeps g(x) as it is (the papers' code).

A teacher whose features are the same for every source image (every variance 0: a collapsed
Barlow Twins run) or not finite gives no standardised targets; `fit` refuses it in one sentence,
before any distillation step, rather than store σ = 0 and infinite targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ssdd_cli.errors import SSDDError

TARGET_SCALINGS = ("standardized", "raw")
DEFAULT_TARGETS = "standardized"
# σ = sqrt(var + EPS·mean(var)): a dimension that never varies (a dead ReLU of the teacher) maps
# to 0 instead of dividing by zero, and the floor scales with the features (unlike a fixed eps).
EPS = 1e-6
# σ is stored in float32: a floor that underflowed to 0 there would still divide by zero.
FLOAT32_TINY = torch.finfo(torch.float32).tiny


class TeacherFeaturesError(SSDDError):
    """A teacher whose features over the source cannot be standardised (collapsed or not finite)."""


def check_features(features: Tensor) -> Tensor:
    """The per-dimension population variance (d_y,) of a teacher's features (n, d_y) over the
    source, after refusing (TeacherFeaturesError) features that are not finite or constant in
    every dimension: such a teacher has collapsed and teaches nothing, whatever the scaling."""
    f = features.double()
    if not bool(torch.isfinite(f).all()):
        raise TeacherFeaturesError(
            "the teacher's features of the source images are not finite (NaN or infinite); retrain "
            "the teacher.", option="teacher")
    var = f.var(dim=0, unbiased=False)
    if not bool((var > 0).any()):
        raise TeacherFeaturesError(
            f"the teacher has collapsed (its {f.shape[1]} features are the same for every source "
            "image, every variance 0), so its targets teach nothing; retrain the teacher.", option="teacher")
    return var


@dataclass(frozen=True)
class TargetScaling:
    """Per-dimension standardisation y' = (y − mean) / std. mean, std: (d_y,) float32."""

    mean: Tensor
    std: Tensor

    @classmethod
    def fit(cls, features: Tensor) -> TargetScaling:
        """μ and σ of features (n, d_y) over their rows (population variance, floored by EPS, and
        by float32's smallest normal number so that σ > 0 once stored).

        Raises TeacherFeaturesError as `check_features` does.
        """
        f = features.double()
        var = check_features(f)
        std = (var + EPS * var.mean()).sqrt().clamp_min(FLOAT32_TINY)
        return cls(f.mean(dim=0).float(), std.float())

    @classmethod
    def from_lists(cls, mean: list[float], std: list[float]) -> TargetScaling:
        return cls(torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32))

    def apply(self, y: Tensor) -> Tensor:
        """(y − μ)/σ for y (B, d_y), on y's device and in float32."""
        return (y.float() - self.mean.to(y.device)) / self.std.to(y.device)

    def invert(self, y: Tensor) -> Tensor:
        """y·σ + μ: the teacher's raw features from standardised targets (B, d_y)."""
        return y.float() * self.std.to(y.device) + self.mean.to(y.device)
