"""IID: DM with class centralisation and covariance matching (Deng et al., CVPR 2024), on DM.

    L = Σ_c [ ‖μ f(X̃_c) − μ f(S̃_c)‖² + λ_CM ‖Σ(S̃_c) − Σ(X̃_c)‖²_F + λ_CC Σ_j ‖g(s̃_j) − μ_k g(s̃_k)‖² ]

X̃_c, S̃_c: the Siamese-augmented real and synthetic images of class c; f: DM's random ConvNet
(flat last-block output); Σ: the *local* covariance (eq. 6–7): each image's last-block output
reshaped to F_i ∈ R^{d×hw} (d channels, hw positions), Σ = (1/n) Σ_i (F_i − F̄)(F_i − F̄)ᵀ with
F̄ the element-wise batch mean (biased, as the paper's 1/K and 1/B); g: a ResNet-18 with
instance norm and DC's stem (3×3 conv, stride 1, padding 1: "cifar-same") pretrained on the
source, drawn from a pool each iteration and frozen.

Choices where the paper and the official code (VincenDen/IID, `DM+ours/main_DM_IID.py`) differ
(dm-family.md): the centralisation term is the code's linear form (the paper's eq. 3,
Σ max(0, exp(α d_j) − β), was simplified in the code with the same results, and the exponential
overflows on 512-d distances); λ_CM = 0.01 and λ_CC = 0.05 at IPC ≤ 10, 0.003 above (the paper's
per-IPC values; the code hard-codes 0.05); 2×2 average pooling (the code; the paper says 3×3).
The auxiliary pool: 10 ResNet-18s × 30 epochs (the paper's epochs; the code's default is 1,000
models × 40), SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 256, no augmentation, held in
memory. With one image per class both terms vanish (the covariance is constant and the
centralisation zero; an unbiased covariance would be 0/0), so IID needs IPC ≥ 2, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ssdd_cli.distill.engine import OuterConfig
from ssdd_cli.distill.inputs import DistillInputs
from ssdd_cli.distill.labelled import LabelledSet
from ssdd_cli.distill.methods.base import Optimization, register_method, replace_path
from ssdd_cli.distill.methods.dm import DM_STEPS, RandomNetworkTerm, mean_embedding_loss
from ssdd_cli.distill.methods.matching import (
    LabelledConfig,
    MatchingMethod,
    classes_of,
    matching_defaults,
    sgd,
)
from ssdd_cli.distill.objectives.matching import Augmenter
from ssdd_cli.distill.objectives.networks import Classifier, PoolConfig, PretrainedPool
from ssdd_cli.models.convnet import ConvNet
from ssdd_cli.presets import Preset
from ssdd_cli.progress import Callback


def local_covariance(final: Tensor) -> Tensor:
    """IID eq. 6–7: final (n, d, h, w) -> Σ (d, d) = (1/n) Σ_i (F_i − F̄)(F_i − F̄)ᵀ, F_i ∈ R^{d×hw}."""
    f = final.float().flatten(2)  # (n, d, hw)
    centred = f - f.mean(dim=0, keepdim=True)
    return (centred @ centred.transpose(1, 2)).mean(dim=0)


def covariance_matching_loss(real_final: Tensor, syn_final: Tensor) -> Tensor:
    """‖Σ(syn) − Σ(real)‖²_F of the local covariances (eq. 5, one class)."""
    return (local_covariance(syn_final) - local_covariance(real_final)).pow(2).sum()


def centralization_loss(g_syn: Tensor) -> Tensor:
    """Σ_j ‖g_j − μ_k g_k‖²: g_syn (K, d) auxiliary embeddings of one class's synthetic images
    (the linear form of eq. 3 that the official code uses)."""
    g = g_syn.float()
    return (g - g.mean(dim=0, keepdim=True)).pow(2).sum()


def iid_loss(real_final: Tensor, syn_final: Tensor, g_syn: Tensor, cm_weight: float,
             cc_weight: float) -> Tensor:
    """One class's IID loss (eq. 8): real_final (B, d, h, w), syn_final (K, d, h, w) last-block
    outputs of the random ConvNet; g_syn (K, d_g) the auxiliary network's embeddings."""
    dm = mean_embedding_loss(real_final.flatten(1), syn_final.flatten(1))
    return (dm + cm_weight * covariance_matching_loss(real_final, syn_final)
            + cc_weight * centralization_loss(g_syn))


class IIDTerm(RandomNetworkTerm):
    """DM's random ConvNet per step, and an auxiliary network drawn from a pretrained pool."""

    def __init__(self, inputs: DistillInputs, width: int, pool: PretrainedPool, cm_weight: float,
                 cc_weight: float) -> None:
        super().__init__(inputs, width)
        self.pool, self.cm_weight, self.cc_weight = pool, cm_weight, cc_weight
        self.aux: Classifier | None = None

    def prepare(self, callback: Callback) -> None:
        self.pool.prepare(callback)

    def begin(self, step: int) -> None:
        super().begin(step)
        self.aux = self.pool.draw()

    def class_loss(self, c: int, real: Tensor, syn: Tensor) -> Tensor:
        net = self.network()
        assert isinstance(net, ConvNet) and self.aux is not None
        with torch.no_grad():
            real_final = net.taps(real).final
        syn_final = net.taps(syn).final
        g_syn = self.aux.backbone.features(syn)
        return iid_loss(real_final, syn_final, g_syn, self.cm_weight, self.cc_weight)

    def after_step(self, step: int, distilled: LabelledSet, augment: Augmenter) -> None:
        self.aux = None

    def state(self) -> dict[str, Any]:
        return {"pool": self.pool.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.pool.load_state(state["pool"])


@dataclass(frozen=True)
class IIDConfig(LabelledConfig):
    """cm_weight: λ_CM; cc_weight: λ_CC (0.05 up to IPC 10, 0.003 above); aux: the pool of g."""

    cm_weight: float = 0.01
    cc_weight: float = 0.05
    aux: PoolConfig = field(default_factory=lambda: PoolConfig(
        size=10, epochs=30, arch="resnet18", arch_kwargs={"norm": "in", "stem": "cifar-same"}))
    outer: OuterConfig = field(default_factory=lambda: sgd(DM_STEPS, 1.0))


@register_method
class IID(MatchingMethod[IIDConfig]):
    name = "iid"
    summary = "DM with class centralisation and local covariance matching (Deng et al. 2024)"
    min_samples = 2
    options = {**MatchingMethod.options, "width": "width", "cm_weight": "cm_weight",
               "cc_weight": "cc_weight", "pool_size": "aux.size", "pool_epochs": "aux.epochs"}

    def defaults(self, preset: Preset, N: int, d_y: int) -> IIDConfig:
        steps, match = matching_defaults(preset, self.name, DM_STEPS)
        p = preset.matching
        aux = PoolConfig(size=p.pool_size or 10, epochs=p.pool_epochs.get(self.name, 30), arch="resnet18",
                         arch_kwargs={"norm": "in", "stem": "cifar-same", **p.aux_kwargs})
        return IIDConfig(N, classes_of(preset, self.name), aux=aux, match=match, outer=sgd(steps, 1.0))

    def resolve(self, config: IIDConfig, preset: Preset, ipc: int, given: set[str]) -> IIDConfig:
        """The paper's λ_CC: 0.05 for IPC 1 and 10, 0.003 for IPC 50 (0.003 above IPC 10)."""
        if "cc_weight" in given or ipc <= 10:
            return config
        return replace_path(config, "cc_weight", 0.003)

    def optimization(self, config: IIDConfig, inputs: DistillInputs) -> Optimization:
        sampler = self.sampler(config, inputs)
        pool = PretrainedPool(config.aux, sampler, inputs.generator, name="aux-pool")
        term = IIDTerm(inputs, config.width, pool, config.cm_weight, config.cc_weight)
        return Optimization(self.objective(config, term, sampler, inputs), config.outer)

