"""Did pretraining train the backbone? Each weight against its initialisation, beside decay.

With SGD (momentum μ, weight decay λ) a weight that receives no gradient only decays, and its
direction is unchanged; its norm is its initialisation's times r_decay, what torch's SGD
recursion does to a scalar w_0 = 1 with gradient 0 under the learning rates η_t of the schedule:

    b_t = μ · b_{t−1} + λ · w_t   (b_{−1} = 0),   w_{t+1} = w_t − η_t · b_t,   r_decay = w_T.

exp(−λ · Σ_t η_t / (1 − μ)) (the momentum buffer at its steady state) only approximates it: it
ignores the buffer's build-up over the first steps and the compounding within them. 1,000 steps
at η 0.1, μ 0.9 give 0.3677 against e^(−1) = 0.3679 at λ 1e-3, but 0.0468 against 0.0498 at
3e-3 and 1.56e-5 against 4.5e-5 at 1e-2. A backbone whose every convolution sits at cosine ≈ 1 to
its initialisation with norm ratio ≈ r_decay learned nothing: the head fitted the targets alone
(docs/results.md, "Pretraining trains the backbone"). `weight_drift` measures it; the verdict
is the layer the features are read after, the backbone's `feature_layer`: the main path's last
convolution (a ViT's last MLP projection), not a shortcut's 1x1 projection that a ResNet
registers, and runs, after it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ssdd_cli.kit.schedules import SCHEDULES
from ssdd_cli.models import Backbone

MOVED_COSINE = 0.99  # the verdict layer moved when its cosine to its initialisation is below this
REGRESSED = ("labels", "raw", "standardized")  # what a pretraining fits (`Drift.targets`)


@dataclass(frozen=True)
class LayerDrift:
    """One weight: its cosine to its initialisation and its norm over the initial norm."""

    name: str
    cosine: float
    norm_ratio: float


@dataclass(frozen=True)
class Drift:
    """Every weight's drift, the SGD steps taken and the norm ratio decay alone would give.

    targets: what the pretraining fitted, "labels" (a labelled artifact, the DM family), "raw" or
    "standardized" teacher targets; None where the caller did not say. It decides the advice of
    `warning`: standardised targets help only where the targets are raw.
    """

    steps: int
    decay_ratio: float
    layers: tuple[LayerDrift, ...]
    verdict_layer: str
    targets: str | None = None

    def __post_init__(self) -> None:
        if self.targets is not None and self.targets not in REGRESSED:
            raise ValueError(f"unknown pretraining targets {self.targets!r}; choose one of {REGRESSED}")

    @property
    def verdict(self) -> LayerDrift:
        return next(layer for layer in self.layers if layer.name == self.verdict_layer)

    @property
    def moved(self) -> bool:
        """Whether the verdict layer turned away from its initialisation (cosine < 0.99)."""
        return self.verdict.cosine < MOVED_COSINE

    def summary(self) -> str:
        v = self.verdict
        return (f"{v.name}: cosine {v.cosine:.3f} to its initialisation, norm ×{v.norm_ratio:.3f} "
                f"(weight decay alone: ×{self.decay_ratio:.3f} over {self.steps} steps)")

    def warning(self) -> str | None:
        """One sentence when the backbone did not move beyond weight decay, else None. It advises
        standardised targets only where they apply: raw targets (or, conditionally, unknown ones);
        not labels, nor targets already standardised."""
        if self.moved:
            return None
        if self.targets == "raw":
            advice = "distill with standardized targets (--target-scaling standardized) or pretrain longer"
        elif self.targets is None:
            advice = ("pretrain longer, or, if the artifact's targets are raw, distill with standardized "
                      "targets (--target-scaling standardized)")
        else:
            advice = "pretrain longer"
        return (f"warning: pretraining left the backbone where weight decay alone would ({self.summary()}), "
                f"so its features are its initialisation's; {advice}.")

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "layers": [asdict(layer) for layer in self.layers], "moved": self.moved}


def sgd_steps(images: int, batch_size: int, epochs: int, min_size: int = 2) -> int:
    """Minibatches a pretraining takes: per epoch ⌈M / batch⌉, less one when the last batch is
    under `min_size` and joins the one before (`kit.training.minibatches`)."""
    per_epoch = math.ceil(images / batch_size)
    if per_epoch > 1 and images - (per_epoch - 1) * batch_size < min_size:
        per_epoch -= 1
    return per_epoch * epochs


def decay_ratio(*, lr: float, schedule: str, epochs: int, steps_per_epoch: int, weight_decay: float,
                momentum: float) -> float:
    """r_decay, the SGD-with-momentum recursion of the module docstring, exact: `steps_per_epoch`
    steps an epoch at η = lr · schedule(epoch, epochs), as pretraining sets the rate per epoch.

    The state (w_t, b_{t−1}) moves by the matrix [[1 − ηλ, −ημ], [λ, μ]] each step, so an
    epoch is that matrix to the power `steps_per_epoch` (by squaring) and the cost is per epoch.
    """
    factor = SCHEDULES.get(schedule)
    w, b = 1.0, 0.0
    for epoch in range(epochs):
        eta = lr * factor(epoch, epochs)
        step = ((1.0 - eta * weight_decay, -eta * momentum), (weight_decay, momentum))
        (a11, a12), (a21, a22) = _matrix_power(step, steps_per_epoch)
        w, b = a11 * w + a12 * b, a21 * w + a22 * b
    return w


Matrix2 = tuple[tuple[float, float], tuple[float, float]]


def _matrix_power(m: Matrix2, k: int) -> Matrix2:
    """m^k for a 2×2 matrix and k ≥ 0, by repeated squaring."""
    def mul(x: Matrix2, y: Matrix2) -> Matrix2:
        return ((x[0][0] * y[0][0] + x[0][1] * y[1][0], x[0][0] * y[0][1] + x[0][1] * y[1][1]),
                (x[1][0] * y[0][0] + x[1][1] * y[1][0], x[1][0] * y[0][1] + x[1][1] * y[1][1]))

    out: Matrix2 = ((1.0, 0.0), (0.0, 1.0))
    while k:
        if k & 1:
            out = mul(out, m)
        m, k = mul(m, m), k >> 1
    return out


@torch.no_grad()
def weight_drift(trained: nn.Module, initial: nn.Module, *, steps: int, decay: float,
                 targets: str | None = None) -> Drift:
    """Cosine and norm ratio of every `weight` parameter of `trained` against the same parameter
    of `initial` (same architecture); `targets` what it was trained on (`Drift`). The verdict is
    a backbone's `feature_weight` (module docstring); for another module, its last 4-d
    (convolution) weight in registration order, or its last weight of two or more dimensions
    when there is no convolution."""
    start = dict(initial.named_parameters())
    layers = []
    for name, w in trained.named_parameters():
        if not name.endswith("weight"):
            continue
        w0 = start[name].to(w.device).double().flatten()
        w1 = w.double().flatten()
        n0, n1 = w0.norm().item(), w1.norm().item()
        cosine = float(w0 @ w1) / (n0 * n1) if n0 > 0 and n1 > 0 else 1.0
        layers.append(LayerDrift(name, cosine, n1 / n0 if n0 > 0 else 1.0))
    if isinstance(trained, Backbone):
        return Drift(steps, decay, tuple(layers), trained.feature_weight, targets)
    dims = {name: p.ndim for name, p in trained.named_parameters()}
    convs = [layer.name for layer in layers if dims[layer.name] == 4]
    verdict = (convs or [layer.name for layer in layers if dims[layer.name] >= 2] or
               [layers[-1].name])[-1]
    return Drift(steps, decay, tuple(layers), verdict, targets)
