"""Where the DM family's feature extractors come from, and the short supervised training some need.

- `random_matcher`: the DC ConvNet (width 128 at every block, instance norm) freshly initialised,
  as DM, DataDAM and IID draw one every iteration.
- `PretrainedPool`: M networks trained briefly on the labelled source and held in memory, one
  drawn uniformly per iteration (DSDM's ConvNets; IID's auxiliary ResNet-18 for the class
  centralisation term). The reference code reloads them from disk every iteration.
- `Classifier` and `train_classifier`: a backbone with a linear head trained by cross-entropy with
  SGD (the pools and the IDM queue), optionally with per-image DSA and CutMix (DSDM's pool).

Every network is built from the run's generator (`build_seeded`), so a run is reproducible and
resumable; matching networks are frozen (their parameters take no gradient).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssdd_cli.distill import dsa
from ssdd_cli.distill.objectives.classes import ClassSampler
from ssdd_cli.kit.distributed import broadcast_module
from ssdd_cli.kit.seeding import build_seeded
from ssdd_cli.models import Backbone, create_backbone
from ssdd_cli.models.convnet import default_depth
from ssdd_cli.progress import Callback, ProgressEvent


def matcher_kwargs(image_size: int, width: int = 128) -> dict[str, Any]:
    """The DC ConvNet's options: `width` at each of the resolution's blocks, instance norm."""
    return {"widths": (width,) * default_depth(image_size), "norm": "in"}


def random_matcher(channels: int, image_size: int, width: int, generator: torch.Generator,
                   device: torch.device) -> Backbone:
    """A freshly initialised, frozen DC ConvNet on `device` (DM's network of the iteration)."""
    net = build_seeded(lambda: create_backbone("convnet", channels, image_size,
                                               **matcher_kwargs(image_size, width)), generator)
    return net.to(device).requires_grad_(False)


class Classifier(nn.Module):
    """A backbone and a linear head: logits (B, classes) of images (B, c, h, w)."""

    def __init__(self, backbone: Backbone, classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.feature_dim, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone.features(x))


@dataclass(frozen=True)
class TrainConfig:
    """Supervised training of a pool or queue network: SGD, cross-entropy, minibatches.

    augment: "none", or a DSA strategy drawn per image in IDC's composition (DSDM's pool:
        "color_crop"). cutmix: the probability of CutMix (β = 1) per minibatch (DSDM: 0.5).
    """

    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    augment: str = "none"
    cutmix: float = 0.0


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


def train_step(model: Classifier, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor,
               config: TrainConfig, generator: torch.Generator) -> int:
    """One SGD step of cross-entropy on (x, y) with the config's augmentation; returns the
    number of correct predictions (before the step, on the batch as trained)."""
    model.train()
    if config.augment != "none":
        with torch.no_grad():
            x = dsa.apply(dsa.sample(config.augment, "idc", (x.shape[2], x.shape[3]), generator, n=len(x),
                                      shared=False), x)
    if config.cutmix > 0 and float(torch.rand(1, generator=generator)) < config.cutmix:
        x, y_b, ratio = cutmix(x, y, generator)
        logits = model(x)
        loss = F.cross_entropy(logits, y) * ratio + F.cross_entropy(logits, y_b) * (1 - ratio)
    else:
        logits = model(x)
        loss = F.cross_entropy(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return int((logits.detach().argmax(1) == y).sum())


def cutmix(x: Tensor, y: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor, float]:
    """CutMix (β = 1, IDC's `rand_bbox`): paste a box of another image of the batch.

    Returns (mixed images, the pasted images' labels, the fraction of each image left unpasted).
    """
    n, _, h, w = x.shape
    lam = float(torch.rand(1, generator=generator))  # Beta(1, 1) is uniform on [0, 1]
    perm = torch.randperm(n, generator=generator).to(x.device)
    cut = (1.0 - lam) ** 0.5
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = (int(torch.randint(s, (1,), generator=generator)) for s in (h, w))
    y1, y2 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x1, x2 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    mixed = x.clone()
    mixed[:, :, y1:y2, x1:x2] = x[perm, :, y1:y2, x1:x2]
    ratio = 1.0 - (y2 - y1) * (x2 - x1) / (h * w)
    return mixed, y[perm], ratio


def train_classifier(model: Classifier, sampler: ClassSampler, epochs: int, config: TrainConfig,
                     generator: torch.Generator) -> None:
    """`epochs` passes over the source in shuffled minibatches (the pools' pretraining)."""
    optimizer = make_optimizer(model, config)
    for _ in range(epochs):
        for idx in sampler.epoch(config.batch_size, generator):
            train_step(model, optimizer, sampler.images[idx], sampler.labels[idx], config, generator)
    model.eval()


@dataclass(frozen=True)
class PoolConfig:
    """M networks of `arch` trained `epochs` epochs each (DSDM: 10 ConvNets × 20 epochs)."""

    size: int = 10
    epochs: int = 20
    arch: str = "convnet"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)


class PretrainedPool:
    """Networks trained briefly on the labelled source; `draw` returns one uniformly, frozen."""

    def __init__(self, config: PoolConfig, sampler: ClassSampler, generator: torch.Generator,
                 name: str = "pool") -> None:
        self.config, self.sampler, self.generator, self.name = config, sampler, generator, name
        c, r = sampler.images.shape[1], sampler.images.shape[2]
        device = sampler.images.device
        self.models = [build_seeded(lambda: Classifier(
            create_backbone(config.arch, c, r, **config.arch_kwargs), sampler.classes), generator).to(device)
            for _ in range(config.size)]

    def prepare(self, callback: Callback) -> None:
        """Train every model (before the first outer step of a fresh run)."""
        for i, model in enumerate(self.models):
            train_classifier(model, self.sampler, self.config.epochs, self.config.train, self.generator)
            broadcast_module(model)  # under torchrun: rank 0's weights on every rank
            model.requires_grad_(False)
            callback(ProgressEvent(f"{self.name}-init", i + 1, len(self.models)))

    def draw(self) -> Classifier:
        """One model uniformly at random (eval mode, frozen)."""
        j = int(torch.randint(len(self.models), (1,), generator=self.generator))
        return self.models[j].eval().requires_grad_(False)

    def state(self) -> dict[str, Any]:
        return {"models": [m.state_dict() for m in self.models]}

    def load_state(self, state: dict[str, Any]) -> None:
        for model, sd in zip(self.models, state["models"], strict=True):
            model.load_state_dict(sd)
            model.requires_grad_(False)
