"""IDM: improved distribution matching (Zhao, Li, Qin & Yu, CVPR 2023).

DM with its three changes, as in the official code (uitrbn/IDM `IDM_cifar10.py` and the
commands of its `command.txt`):
- partitioning and expansion: each stored image holds 2×2 tiles, each decoded by bilinear
  upsampling to a full image (4·IPC training images per class), initialised from four
  independent random real images per stored image, downscaled;
- enriched model sampling: the networks come from a queue of partly trained ConvNets
  (`objectives.queue`), not fresh random ones;
- class-aware regularisation: cross-entropy of the matching network's logits on the
  synthetic images, weighted by that network's training accuracy (in percent) and `ce_weight`.

Per step, for each class c with one optimiser step per class (SGD lr 0.2, momentum 0.5):

    L_c = ‖μ f(A_ω(X_c)) − μ f(A_ω(Ŝ_c))‖² + ce_weight · acc% · CE(h(f(A_ω(Ŝ_c))), c)

f: the queue network's flat last-block output, h its linear head. 20,000 iterations, 256 real
images per class, DSA as DM. Per-IPC values from `command.txt`: ce_weight 0.5 where IPC·classes
≤ 100 (CIFAR-10 IPC 1 and 10, CIFAR-100 IPC 1) and 0.1 beyond (CIFAR-10 IPC 50, CIFAR-100 IPC 10
and 50); at IPC 1 a real batch of 5,000 (in effect the whole class) and a new network every 5
steps. The code's IPC-1 branch without partitioning (top-k real selection) is not reproduced.

The real images' embeddings (no gradient; the queue networks are in eval mode and normalise
per image) are computed in chunks of 512: at IPC 1's 5,000 images a class one pass through the
width-128 ConvNet was 1.45× slower on 2 CPU cores (its first map alone is 2 GB), the result
identical (measured on Fashion-MNIST's 28 px).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ssdd_cli.distill.engine import OuterConfig
from ssdd_cli.distill.inputs import DistillInputs
from ssdd_cli.distill.labelled import LabelledSet
from ssdd_cli.distill.methods.base import Optimization, register_method, replace_path
from ssdd_cli.distill.methods.dm import DM_STEPS, mean_embedding_loss
from ssdd_cli.distill.methods.matching import (
    LabelledConfig,
    MatchingMethod,
    classes_of,
    matching_defaults,
    sgd,
)
from ssdd_cli.distill.objectives.matching import Augmenter, MatchingConfig, MatchTerm
from ssdd_cli.distill.objectives.networks import TrainConfig
from ssdd_cli.distill.objectives.queue import Member, NetworkQueue, QueueConfig
from ssdd_cli.models import extract_features
from ssdd_cli.presets import Preset
from ssdd_cli.progress import Callback


def idm_loss(real: Tensor, syn: Tensor, syn_logits: Tensor, label: int, weight: float) -> Tensor:
    """One class's IDM loss: real (B, d), syn (K, d) embeddings, syn_logits (K, classes);
    ‖μ real − μ syn‖² + weight · CE(syn_logits, label), weight = ce_weight · accuracy%."""
    target = torch.full((syn_logits.shape[0],), label, dtype=torch.long, device=syn_logits.device)
    return mean_embedding_loss(real, syn) + weight * F.cross_entropy(syn_logits, target)


class IDMTerm(MatchTerm):
    def __init__(self, queue: NetworkQueue, ce_weight: float) -> None:
        self.queue, self.ce_weight = queue, ce_weight
        self.nets: list[Member] = []

    def prepare(self, callback: Callback) -> None:
        """The queue's networks start untrained (the code trains them only inside the loop)."""

    def begin(self, step: int) -> None:
        self.nets = self.queue.begin(step)

    def class_loss(self, c: int, real: Tensor, syn: Tensor) -> Tensor:
        total = real.new_zeros(())
        for member in self.nets:
            backbone = member.model.backbone
            f_real = extract_features(backbone, real, device=real.device)  # in chunks (module docstring)
            f_syn = backbone.features(syn)
            logits = member.model.head(f_syn)
            total = total + idm_loss(f_real, f_syn, logits, c, self.ce_weight * member.accuracy)
        return total

    def after_step(self, step: int, distilled: LabelledSet, augment: Augmenter) -> None:
        self.nets = []
        self.queue.train()

    def state(self) -> dict[str, Any]:
        return {"queue": self.queue.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.queue.load_state(state["queue"])


@dataclass(frozen=True)
class IDMConfig(LabelledConfig):
    """ce_weight: the class-aware regulariser's weight (None: by IPC); queue: the networks."""

    factor: int = 2
    init: str = "real-tiles"
    ce_weight: float | None = None
    queue: QueueConfig = field(default_factory=QueueConfig)
    match: MatchingConfig = field(default_factory=lambda: MatchingConfig(per_class_step=True))
    outer: OuterConfig = field(default_factory=lambda: sgd(DM_STEPS, 0.2))


@register_method
class IDM(MatchingMethod[IDMConfig]):
    name = "idm"
    summary = "DM with a queue of partly trained ConvNets, tiles and class-aware CE (Zhao et al. 2023)"
    options = {**MatchingMethod.options, "factor": "factor", "width": "width", "ce_weight": "ce_weight"}

    def defaults(self, preset: Preset, N: int, d_y: int) -> IDMConfig:
        steps, match = matching_defaults(preset, self.name, DM_STEPS)
        p = preset.matching
        train = TrainConfig(batch_size=p.queue_batch or 256)
        queue = QueueConfig(train_steps=p.queue_steps or 10, train=train)
        return IDMConfig(N, classes_of(preset, self.name), queue=queue, outer=sgd(steps, 0.2),
                         match=replace(match, per_class_step=True))

    def resolve(self, config: IDMConfig, preset: Preset, ipc: int, given: set[str]) -> IDMConfig:
        if config.ce_weight is None:
            config = replace_path(config, "ce_weight", 0.5 if ipc * config.classes <= 100 else 0.1)
        if ipc == 1:
            config = replace_path(config, "queue.push_every", 5)
            if "batch_size" not in given and preset.matching.real_batch is None:
                config = replace_path(config, "match.real_batch", 5000)
        return config

    def optimization(self, config: IDMConfig, inputs: DistillInputs) -> Optimization:
        sampler = self.sampler(config, inputs)
        queue = NetworkQueue(config.queue, sampler, config.width, inputs.generator)
        assert config.ce_weight is not None
        term = IDMTerm(queue, config.ce_weight)
        return Optimization(self.objective(config, term, sampler, inputs), config.outer)
