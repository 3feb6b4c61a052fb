"""Barlow Twins training of the teacher: the loop, its schedule, checkpoints and resume.

Optimiser. The paper trains with LARS (batch 2048, 1000 epochs); solo-learn's CIFAR recipe keeps
LARS at lr 0.3, batch 256. We offer two plain optimisers instead, both with a linear warmup and a
cosine decay to zero, and with no weight decay on biases and normalisation parameters (every
1-D parameter), as in LARS' usual setup:

- `adamw`, used by the embedded presets (digits, shapes): on short schedules it learns far
  faster. Measured on digits (ResNet-10 width 16, projector 512, batch 128, 60 epochs, same
  augmentation), k-NN / linear-probe test accuracy: AdamW lr 2e-3 0.983 / 0.986; SGD lr 0.1
  0.919 / 0.955; SGD lr 0.3 0.891 / 0.961; a randomly initialised network 0.925 / 0.964.
- `sgd` (momentum 0.9), the default of the paper-scale presets, whose lr (0.3) is the paper's
  LARS rate; LARS' layer-wise trust ratio is not implemented.

Under torchrun (`kit.distributed`) every rank draws the same permutation and the same views of
each global batch (one generator stream, as one process) and keeps its share of the views; the
backbone and projector run under DistributedDataParallel with BatchNorm over the global batch
(`kit.parallel`), and the loss's cross-correlation is computed on the all-gathered projections,
so K processes train exactly what one process trains on the whole batch (up to float rounding).
The batch size must then be a multiple of K. Network passes run in `precision` (`kit.precision`);
the loss in float32. On an accelerator the loss is read to the host every `READ_EVERY` steps and
at the end of each epoch (before its checkpoint), not every step.

Checkpoints. After every epoch the loop writes (atomically) a checkpoint holding the backbone,
the projector, the optimizer state, the CPU generator's state and the per-epoch losses, bound to
the config and the images (`kit.checkpoint.Checkpointer`). `resume=True` continues with the next
epoch; with the same config on CPU the result is bitwise identical to an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ssdd_cli.errors import DataError, DivergedError, UsageError
from ssdd_cli.kit import distributed
from ssdd_cli.kit.checkpoint import Checkpointer, flat_settings, tensor_sha256
from ssdd_cli.kit.parallel import data_parallel
from ssdd_cli.kit.precision import FP32, Precision
from ssdd_cli.kit.schedules import set_lr, warmup_cosine
from ssdd_cli.kit.seeding import seeded
from ssdd_cli.models import Backbone, create_backbone
from ssdd_cli.presets import TeacherPreset
from ssdd_cli.progress import Callback, ProgressEvent, silent
from ssdd_cli.teacher.augment import AugmentConfig, two_views
from ssdd_cli.teacher.loss import barlow_twins_loss
from ssdd_cli.teacher.projector import Projector

STAGE = "teacher"
OPTIMIZERS = ("sgd", "adamw")
READ_EVERY = 25  # steps between host reads of the loss on an accelerator (every step on the CPU)


@dataclass(frozen=True)
class TeacherConfig:
    """Everything that determines a teacher run (given the images and the device).

    arch, arch_kwargs: the backbone, `create_backbone(arch, c, r, **arch_kwargs)`.
    epochs, batch_size: one epoch is ⌊n / batch_size⌋ steps over a fresh permutation (the ragged
        last batch is dropped: BatchNorm and the loss's batch statistics need a full batch).
    optimizer: "sgd" (momentum `momentum`) or "adamw"; lr is the peak learning rate, reached
        after `warmup_epochs` of linear warmup and decayed to 0 by a cosine (module docstring).
    seed: initialises the networks and the generator that shuffles and augments.
    lambd: the loss's off-diagonal weight λ; projector_hidden, projector_out: the MLP's widths.
    """

    arch: str = "resnet18"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 800
    batch_size: int = 256
    optimizer: str = "sgd"
    lr: float = 0.3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: int = 10
    seed: int = 0
    lambd: float = 0.0051
    projector_hidden: int = 2048
    projector_out: int = 2048
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UsageError(f"the teacher needs at least one epoch, got {self.epochs}.", option="epochs")
        if self.batch_size < 2:
            raise UsageError(f"the teacher's batch size must be at least 2 (the loss standardises "
                             f"over the batch), got {self.batch_size}.", option="batch_size")
        if not self.lr > 0:
            raise UsageError(f"the teacher's learning rate must be positive, got {self.lr}.", option="lr")
        if self.weight_decay < 0:
            raise UsageError(f"the teacher's weight decay cannot be negative, got {self.weight_decay}.",
                             option="weight_decay")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown teacher optimizer {self.optimizer!r}; choose one of: "
                             f"{', '.join(OPTIMIZERS)}.", option="optimizer")

    @classmethod
    def from_preset(
        cls,
        preset: TeacherPreset,
        *,
        arch: str | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        seed: int = 0,
    ) -> TeacherConfig:
        """The preset's teacher with every option that is not None overriding it.

        The preset's backbone options apply only to its own architecture (a `width` for
        resnet10 means nothing to a ViT).
        """
        chosen = preset.arch if arch is None else arch
        epochs = preset.epochs if epochs is None else epochs
        return cls(
            arch=chosen,
            arch_kwargs=dict(preset.arch_kwargs) if chosen == preset.arch else {},
            epochs=epochs,
            batch_size=preset.batch_size if batch_size is None else batch_size,
            optimizer=preset.optimizer,
            lr=preset.lr if lr is None else lr,
            weight_decay=preset.weight_decay,
            warmup_epochs=min(10, max(1, epochs // 10)),
            seed=seed,
            projector_hidden=preset.projector_hidden,
            projector_out=preset.projector_out,
        )

    def to_json(self) -> str:
        """The config as canonical JSON (sorted keys), as stored in teacher files."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


@dataclass
class TeacherResult:
    """A trained teacher.

    backbone: in eval mode, on the training device. projector: the SSL head (not saved in the
    teacher file; distillation only uses the backbone's features).
    losses: mean loss of each epoch, resumed epochs included. seconds, images_per_second: wall
    time and source images per second over the epochs run by this call (0 when none ran).
    start_epoch: the number of epochs already done when this call started (0 unless resumed).
    """

    backbone: Backbone
    projector: Projector
    config: TeacherConfig
    losses: list[float]
    seconds: float
    images_per_second: float
    start_epoch: int

    @property
    def final_loss(self) -> float:
        """The mean loss of the last epoch (NaN if no epoch ever ran)."""
        return self.losses[-1] if self.losses else math.nan


def build_teacher(config: TeacherConfig, in_channels: int, image_size: int) -> tuple[Backbone, Projector]:
    """Fresh backbone and projector (on the CPU), initialised from `config.seed`; the caller's
    global random state is the same before and after."""
    with seeded(config.seed):
        backbone = create_backbone(config.arch, in_channels, image_size, **config.arch_kwargs)
        projector = Projector(backbone.feature_dim, config.projector_hidden, config.projector_out)
    return backbone, projector


class TwinNetwork(nn.Module):
    """Backbone then projector on both views, in one forward (one DistributedDataParallel call
    per step); each view is its own batch for BatchNorm, as with two separate calls."""

    def __init__(self, backbone: Backbone, projector: Projector) -> None:
        super().__init__()
        self.backbone, self.projector = backbone, projector

    def forward(self, v1: Tensor, v2: Tensor) -> tuple[Tensor, Tensor]:
        return self.projector(self.backbone(v1)), self.projector(self.backbone(v2))


def make_optimizer(config: TeacherConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """`config.optimizer` over `params`; 1-D parameters (biases, norms) get no weight decay."""
    groups: list[dict[str, Any]] = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.AdamW(groups, lr=config.lr)


def train_teacher(
    images_01: Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    config: TeacherConfig,
    *,
    device: torch.device | str = "cpu",
    callback: Callback = silent,
    checkpoint_path: Path | None = None,
    resume: bool = False,
    precision: Precision = FP32,
) -> TeacherResult:
    """Train a Barlow Twins teacher on unlabeled images.

    images_01: (n, c, r, r) source images in [0, 1] (any device; copied once to `device`).
    mean, std: the source's per-channel statistics (c,); the views are normalised with them.
    callback: receives a `ProgressEvent("teacher", step, total)` after every optimiser step,
        with metrics epoch (fractional), loss (running mean over the epoch) and img/s. The event
        of an epoch's last step comes after that epoch's checkpoint is on disk.
    checkpoint_path: where to write a checkpoint after every epoch (None: no checkpoints).
    resume: continue from `checkpoint_path` if it exists; a finished run returns at once.
    precision: of the network passes (module docstring).
    """
    if images_01.ndim != 4:
        raise ValueError(f"images_01 must be (n, c, r, r), got {tuple(images_01.shape)}")
    n, c, r = images_01.shape[0], images_01.shape[1], images_01.shape[-1]
    if n < 2:
        raise DataError(f"the source has {n} training image(s); the teacher needs at least 2.")
    device = torch.device(device)
    backbone, projector = build_teacher(config, c, r)
    backbone.to(device).train()
    projector.to(device).train()
    data = images_01.to(device=device, dtype=torch.float32)
    batch = min(config.batch_size, n)
    if batch % distributed.world_size():
        raise UsageError(f"the teacher's batch of {batch} images cannot be split evenly over "
                         f"{distributed.world_size()} processes; use a multiple of that.",
                         option="batch_size")
    twins = data_parallel(precision.module(TwinNetwork(backbone, projector)), device)
    read_every = 1 if device.type == "cpu" else READ_EVERY
    steps_per_epoch = n // batch
    total_steps = steps_per_epoch * config.epochs
    schedule = warmup_cosine(min(config.warmup_epochs, config.epochs) * steps_per_epoch)
    optimizer = make_optimizer(config, [*backbone.parameters(), *projector.parameters()])
    generator = torch.Generator().manual_seed(config.seed)
    modules = {"backbone": backbone, "projector": projector}
    losses: list[float] = []
    start_epoch = 0
    checkpoint = None
    if checkpoint_path is not None:
        checkpoint = Checkpointer(checkpoint_path, STAGE,
                                  {**flat_settings(config), "data": tensor_sha256(images_01)})
    if resume and checkpoint is not None and checkpoint.exists():
        state, info = checkpoint.load()
        for name, module in modules.items():
            module.load_state_dict(state[name])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        start_epoch, losses = int(info["epoch"]), [float(v) for v in info["losses"]]
        callback(ProgressEvent(STAGE, message=(
            f"resuming the teacher from epoch {start_epoch} of {config.epochs} ({checkpoint_path})")))

    t0 = time.perf_counter()
    seen = 0
    for epoch in range(start_epoch, config.epochs):
        perm = torch.randperm(n, generator=generator)
        epoch_sum = torch.zeros((), device=device)  # the epoch's losses, read every `read_every` steps
        running = math.nan  # the epoch's mean loss as last read
        for i in range(steps_per_epoch):
            step = epoch * steps_per_epoch + i
            x = data[perm[i * batch : (i + 1) * batch].to(device)]
            v1, v2 = (precision.images(distributed.shard(v))
                      for v in two_views(x, generator, config.augment, mean, std))
            with precision.autocast():
                z1, z2 = twins(v1, v2)
            loss = barlow_twins_loss(distributed.all_gather(z1.float()), distributed.all_gather(z2.float()),
                                     config.lambd)
            epoch_sum += loss.detach()
            last = i == steps_per_epoch - 1
            if read_every == 1 or last or (i + 1) % read_every == 0:
                running = float(epoch_sum) / (i + 1)
                if not math.isfinite(running):
                    raise DivergedError(f"teacher training diverged (loss {running}) in epoch {epoch + 1}; "
                                        "lower the learning rate.", option="lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            set_lr(optimizer, config.lr, schedule(step, total_steps))
            optimizer.step()
            seen += batch
            if last:
                losses.append(running)
                if checkpoint is not None:
                    state = {name: module.state_dict() for name, module in modules.items()}
                    state.update(optimizer=optimizer.state_dict(), generator=generator.get_state())
                    checkpoint.save(state, {"epoch": epoch + 1, "losses": losses})
            elapsed = time.perf_counter() - t0
            callback(ProgressEvent(STAGE, step=step + 1, total=total_steps, metrics={
                "epoch": epoch + (i + 1) / steps_per_epoch,
                "loss": running,
                "img/s": seen / elapsed if elapsed > 0 else 0.0,
            }))
    seconds = time.perf_counter() - t0
    return TeacherResult(
        backbone=backbone.eval(),
        projector=projector.eval(),
        config=config,
        losses=losses,
        seconds=seconds if seen else 0.0,
        images_per_second=seen / seconds if seen and seconds > 0 else 0.0,
        start_epoch=start_epoch,
    )
