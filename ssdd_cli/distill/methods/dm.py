"""DM: distribution matching with randomly initialised networks (Zhao & Bilen, WACV 2023).

    L = Σ_c ‖μ f_θ(A_ω(X_c)) − μ f_θ(A_ω(S_c))‖²₂

f_θ: the flat last-block output of a DC ConvNet (width 128, instance norm), drawn afresh every
iteration and frozen; X_c: 256 real images of class c; S_c: its IPC synthetic images initialised
from random real ones; A_ω: Siamese DSA (`color_crop_cutout_flip_scale_rotate`, one op group per
class and step). One SGD step (lr 1, momentum 0.5) on the class sum per iteration, 20,000
iterations (VICO-UoE/DatasetCondensation `main_DM.py`; its README uses lr 10 from IPC 100 on).
No normalisation of the sum, no clamping, no ZCA.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ssdd_cli.distill.engine import OuterConfig
from ssdd_cli.distill.inputs import DistillInputs
from ssdd_cli.distill.methods.base import Optimization, register_method, replace_path
from ssdd_cli.distill.methods.matching import (
    LabelledConfig,
    MatchingMethod,
    classes_of,
    matching_defaults,
    sgd,
)
from ssdd_cli.distill.objectives.matching import MatchTerm
from ssdd_cli.distill.objectives.networks import random_matcher
from ssdd_cli.models import Backbone
from ssdd_cli.presets import Preset

DM_STEPS = 20_000


def mean_embedding_loss(real: Tensor, syn: Tensor) -> Tensor:
    """‖μ(real) − μ(syn)‖²₂: real (B, d), syn (K, d) embeddings of one class -> scalar (DM)."""
    return (real.mean(dim=0) - syn.mean(dim=0)).pow(2).sum()


class RandomNetworkTerm(MatchTerm):
    """A fresh random DC ConvNet per outer step (DM, DataDAM, IID's main network)."""

    def __init__(self, inputs: DistillInputs, width: int) -> None:
        self.inputs, self.width = inputs, width
        self.net: Backbone | None = None

    def begin(self, step: int) -> None:
        shape = self.inputs.shape
        self.net = random_matcher(shape.channels, shape.height, self.width, self.inputs.generator,
                                  self.inputs.device)

    def network(self) -> Backbone:
        assert self.net is not None, "begin() chooses the step's network"
        return self.net


class DMTerm(RandomNetworkTerm):
    def class_loss(self, c: int, real: Tensor, syn: Tensor) -> Tensor:
        net = self.network()
        with torch.no_grad():
            f_real = net.features(real)
        return mean_embedding_loss(f_real, net.features(syn))


@dataclass(frozen=True)
class DMConfig(LabelledConfig):
    outer: OuterConfig = field(default_factory=lambda: sgd(DM_STEPS, 1.0))


@register_method
class DM(MatchingMethod[DMConfig]):
    name = "dm"
    summary = "class-wise mean embeddings under random ConvNets (Zhao & Bilen 2023)"
    options = {**MatchingMethod.options, "width": "width"}

    def defaults(self, preset: Preset, N: int, d_y: int) -> DMConfig:
        steps, match = matching_defaults(preset, self.name, DM_STEPS)
        return DMConfig(N, classes_of(preset, self.name), match=match, outer=sgd(steps, 1.0))

    def resolve(self, config: DMConfig, preset: Preset, ipc: int, given: set[str]) -> DMConfig:
        """The DM README: lr 1 up to IPC 50, 10 from IPC 100."""
        if "lr" in given or ipc < 100:
            return config
        return replace_path(config, "outer.lr", 10.0)

    def optimization(self, config: DMConfig, inputs: DistillInputs) -> Optimization:
        term = DMTerm(inputs, config.width)
        return Optimization(self.objective(config, term, self.sampler(config, inputs), inputs), config.outer)
