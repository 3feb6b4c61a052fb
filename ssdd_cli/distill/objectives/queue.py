"""IDM's queue of partly trained networks ("enriched model sampling", Zhao et al., CVPR 2023).

Following the official code (uitrbn/IDM `IDM_cifar10.py`, also VincenDen/IID `IDM+ours`): the
queue starts with 3 random DC ConvNets with linear heads; every `push_every` outer steps (30; 5
at IPC 1) a new random one is appended, dropping the oldest beyond `capacity` (100). Each step
matches through `match_nets` (1) networks drawn at random, and afterwards trains `train_nets` (2)
networks drawn at random for `train_steps` (10) SGD steps each on random real batches (256
images of any class; lr 0.01, momentum 0.9, weight decay 5e-4: the README's `--net_decay`).

Each network keeps its training accuracy (correct / seen since the last reset, in percent), which
weighs IDM's class-aware regulariser. The code resets these meters at its evaluation points,
every `eval_interval` = 100 steps; we reset them every `meter_reset` steps likewise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ssdd_cli.distill.objectives.classes import ClassSampler
from ssdd_cli.distill.objectives.networks import (
    Classifier,
    TrainConfig,
    make_optimizer,
    matcher_kwargs,
    train_step,
)
from ssdd_cli.kit.distributed import broadcast_module
from ssdd_cli.kit.seeding import build_seeded
from ssdd_cli.models import create_backbone


@dataclass(frozen=True)
class QueueConfig:
    initial: int = 3
    capacity: int = 100
    push_every: int = 30
    match_nets: int = 1
    train_nets: int = 2
    train_steps: int = 10
    meter_reset: int = 100
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class Member:
    """A queue network, its optimiser and its training accuracy meter."""

    model: Classifier
    optimizer: torch.optim.Optimizer
    correct: int = 0
    seen: int = 0

    @property
    def accuracy(self) -> float:
        """Training accuracy in percent since the meter's last reset (0 before any training)."""
        return 100.0 * self.correct / self.seen if self.seen else 0.0


class NetworkQueue:
    def __init__(self, config: QueueConfig, sampler: ClassSampler, width: int,
                 generator: torch.Generator) -> None:
        self.config, self.sampler, self.width, self.generator = config, sampler, width, generator
        self.members: list[Member] = [self._new() for _ in range(config.initial)]
        self.pushed = 0  # networks created after the initial ones (for resuming)

    def _new(self) -> Member:
        c, r, k = self.sampler.images.shape[1], self.sampler.images.shape[2], self.sampler.classes
        kwargs = matcher_kwargs(r, self.width)

        def build() -> Classifier:
            return Classifier(create_backbone("convnet", c, r, **kwargs), k)

        model = build_seeded(build, self.generator)
        model = model.to(self.sampler.images.device)
        return Member(model, make_optimizer(model, self.config.train))

    def begin(self, step: int) -> list[Member]:
        """Push a network when due, reset the meters when due; the step's matching networks
        (eval mode, frozen)."""
        if step % self.config.meter_reset == 0 and step > 0:
            for member in self.members:
                member.correct = member.seen = 0
        if step % self.config.push_every == 0:
            self.members.append(self._new())
            self.pushed += 1
            if len(self.members) > self.config.capacity:
                self.members.pop(0)
        order = torch.randperm(len(self.members), generator=self.generator)[:self.config.match_nets]
        chosen = [self.members[int(i)] for i in order]
        for member in chosen:
            member.model.eval().requires_grad_(False)
        return chosen

    def train(self) -> None:
        """`train_nets` random networks each take `train_steps` SGD steps on random real batches."""
        order = torch.randperm(len(self.members), generator=self.generator)[:self.config.train_nets]
        for i in order:
            member = self.members[int(i)]
            member.model.requires_grad_(True)
            for _ in range(self.config.train_steps):
                x, y = self.sampler.sample_any(self.config.train.batch_size, self.generator)
                member.correct += train_step(member.model, member.optimizer, x, y, self.config.train,
                                             self.generator)
                member.seen += len(y)
            broadcast_module(member.model)  # under torchrun: rank 0's weights on every rank
            member.model.eval()

    def state(self) -> dict[str, Any]:
        return {"pushed": self.pushed,
                "members": [{"model": m.model.state_dict(), "optimizer": m.optimizer.state_dict(),
                             "correct": m.correct, "seen": m.seen} for m in self.members]}

    def load_state(self, state: dict[str, Any]) -> None:
        self.members = []
        for saved in state["members"]:
            member = self._new()
            member.model.load_state_dict(saved["model"])
            member.optimizer.load_state_dict(saved["optimizer"])
            member.correct, member.seen = int(saved["correct"]), int(saved["seen"])
            self.members.append(member)
        self.pushed = int(state["pushed"])
