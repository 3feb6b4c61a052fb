"""`finetune`: the whole network and a new head trained on the target (KRR-ST §4.1)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ssdd_cli.data import normalize
from ssdd_cli.data.augment import random_crop_flip
from ssdd_cli.errors import DivergedError
from ssdd_cli.kit.schedules import cosine, set_lr
from ssdd_cli.kit.seeding import cpu_generator, seeded
from ssdd_cli.progress import ProgressEvent
from ssdd_cli.train.linear import accuracy
from ssdd_cli.train.protocols.base import EvalContext, ProtocolResult, register_protocol


@dataclass(frozen=True)
class FinetuneConfig:
    """KRR-ST's fine-tuning (§4.1): the whole network plus a new linear head, SGD lr 0.01,
    momentum 0.9, weight decay 5e-4, cosine decay over `steps`, minibatches of 256, random crop
    (zero padding) and horizontal flip. KRR-ST runs 10,000 (CIFAR, TinyImageNet targets) or 5,000
    steps (the others): pass them as `steps`; the default here is small enough for a CPU.
    `padding`: 4 px at every resolution, as KRR-ST's `RandomCrop(size, padding=4)`; None means
    resolution // 8 (this project's earlier default, 8 px at 64 px).
    """

    steps: int = 100
    batch_size: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    padding: int | None = 4
    flip: bool = True


@register_protocol("finetune", config=FinetuneConfig)
def finetune_protocol(ctx: EvalContext, config: FinetuneConfig, seed: int) -> list[ProtocolResult]:
    """Fine-tuning: the whole network and a new head, with crop and flip (KRR-ST §4.1)."""
    idx = ctx.train_indices(seed)
    images, labels = ctx.images("train")[idx], ctx.labels("train")[idx]
    net = copy.deepcopy(ctx.backbone).to(ctx.device)
    with seeded(seed, ctx.device):
        head = nn.Linear(net.feature_dim, ctx.num_classes).to(ctx.device)
    opt = torch.optim.SGD([*net.parameters(), *head.parameters()], lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    generator = cpu_generator(seed)
    padding = config.padding if config.padding is not None else ctx.target.resolution // 8
    n = images.shape[0]
    batch = min(config.batch_size, n)
    order = torch.zeros(0, dtype=torch.long)
    stage = f"finetune (seed {seed})"
    net.train()
    with seeded(seed + 1, ctx.device):  # dropout and friends
        for step in range(config.steps):
            if order.numel() < batch:  # a fresh epoch: reshuffle (KRR-ST's infinite loader)
                order = torch.randperm(n, generator=generator)
            pick, order = order[:batch], order[batch:]
            x = random_crop_flip(images[pick].to(ctx.device), padding=padding, flip=config.flip,
                                 generator=generator)
            x = normalize(x, ctx.target.mean, ctx.target.std)
            loss = F.cross_entropy(head(net.features(x)), labels[pick].to(ctx.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            set_lr(opt, config.lr, cosine(step, config.steps))
            opt.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise DivergedError(f"fine-tuning diverged at step {step + 1} (the loss is not finite); "
                                    "the backbone's features may be degenerate, so compare with the "
                                    "linear protocol.")
            ctx.callback(ProgressEvent(stage, step + 1, config.steps, {"loss": value}))
    with torch.no_grad():
        pred = head(ctx.features_of(net, ctx.images("test"))).argmax(dim=1)
    return [ProtocolResult("finetune", "accuracy", accuracy(pred, ctx.labels("test")))]
