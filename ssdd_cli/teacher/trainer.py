"""Barlow Twins training of the teacher: the loop, its schedule, checkpoints and resume.

Optimiser. The paper presets train as solo-learn does on CIFAR (the SSDD paper's teacher):
LARS (`kit.lars`) at lr 0.3 for a batch of 256, scaled linearly with the batch (`lr_batch`),
eta 0.02, clip_lr, biases and norms excluded from the adaptation and the weight decay,
momentum 0.9, weight decay 1e-4, the loss multiplied by `scale_loss` = 0.1, a linear warm-up from
3e-5 over 10 epochs then a cosine decay to 0, per step. (Plain SGD at LARS' rate 0.3 diverges:
its update is not bounded by the trust ratio.) Two plain optimisers remain, with the same
warm-up and cosine and no weight decay on 1-D parameters (biases, norms):

- `adamw`, used by the embedded presets (digits, shapes): on short schedules it learns far
  faster. Measured on digits (ResNet-10 width 16, projector 512, batch 128, 60 epochs, same
  augmentation), k-NN / linear-probe test accuracy: AdamW lr 2e-3 0.983 / 0.986; SGD lr 0.1
  0.919 / 0.955; SGD lr 0.3 0.891 / 0.961; a randomly initialised network 0.925 / 0.964.
- `sgd` (momentum `momentum`).

Finite features. After every epoch, before its checkpoint is written, the backbone's features
(eval mode) of a fixed batch of the source (its first `PROBE_IMAGES` images) must be finite; if
they are not, training stops with a `DivergedError` and the previous epoch's checkpoint stays
on disk. A teacher whose features are NaN is never returned, so it is never saved.

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

from ssdd_cli.data.normalize import normalize
from ssdd_cli.errors import DataError, DivergedError, UsageError
from ssdd_cli.kit import distributed
from ssdd_cli.kit.checkpoint import Checkpointer, flat_settings, tensor_sha256
from ssdd_cli.kit.lars import LARS
from ssdd_cli.kit.parallel import data_parallel
from ssdd_cli.kit.precision import FP32, Precision
from ssdd_cli.kit.schedules import set_lr, warmup_cosine
from ssdd_cli.kit.seeding import seeded
from ssdd_cli.models import Backbone, create_backbone, extract_features
from ssdd_cli.presets import TeacherPreset
from ssdd_cli.progress import Callback, ProgressEvent, silent
from ssdd_cli.teacher.augment import AUGMENT_RECIPES, AugmentConfig, two_views
from ssdd_cli.teacher.loss import barlow_twins_loss
from ssdd_cli.teacher.projector import Projector

STAGE = "teacher"
OPTIMIZERS = ("lars", "sgd", "adamw")
PROBE_IMAGES = 128  # the fixed batch whose features must stay finite (module docstring)
READ_EVERY = 25  # steps between host reads of the loss on an accelerator (every step on the CPU)


@dataclass(frozen=True)
class TeacherConfig:
    """Everything that determines a teacher run (given the images and the device); the defaults
    are the paper presets' (solo-learn's CIFAR recipe, see `presets.TeacherPreset`).

    arch, arch_kwargs: the backbone, `create_backbone(arch, c, r, **arch_kwargs)`.
    epochs, batch_size: one epoch is ⌊n / batch_size⌋ steps over a fresh permutation (the ragged
        last batch is dropped: BatchNorm and the loss's batch statistics need a full batch).
    optimizer: "lars", "sgd" or "adamw" (module docstring); `momentum` for lars and sgd;
        `lars_eta`, `lars_clip` for lars. lr is the peak learning rate for a batch of
        `lr_batch` images, scaled linearly to the batch actually used (solo-learn's rule);
        `lr_batch` None uses lr as given. The peak is reached after `warmup_epochs` of linear
        warm-up, starting at `warmup_start_lr` (None: lr / warm-up steps), and decays to 0 by a
        cosine.
    scale_loss: the Barlow Twins loss is multiplied by it (solo-learn's `scale_loss`).
    seed: initialises the networks and the generator that shuffles and augments.
    lambd: the loss's off-diagonal weight λ; projector_hidden, projector_out, projector_bias:
        the MLP's widths and whether its Linear layers have biases (solo-learn's do).
    """

    arch: str = "resnet18"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 1000
    batch_size: int = 256
    optimizer: str = "lars"
    lr: float = 0.3
    lr_batch: int | None = 256
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lars_eta: float = 0.02
    lars_clip: bool = True
    scale_loss: float = 0.1
    warmup_epochs: int = 10
    warmup_start_lr: float | None = 3e-5
    seed: int = 0
    lambd: float = 0.0051
    projector_hidden: int = 2048
    projector_out: int = 2048
    projector_bias: bool = True
    augment: AugmentConfig = field(default_factory=lambda: AUGMENT_RECIPES.get("solo-learn-cifar"))

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
        if self.lr_batch is not None and self.lr_batch < 1:
            raise UsageError(f"the learning rate's reference batch must be positive, got "
                             f"{self.lr_batch}.", option="lr_batch")
        if not self.scale_loss > 0:
            raise UsageError(f"the loss scale must be positive, got {self.scale_loss}.",
                             option="scale_loss")
        if self.warmup_epochs < 0:
            raise UsageError(f"the warm-up cannot be negative, got {self.warmup_epochs} epochs.",
                             option="warmup_epochs")

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
        warmup = preset.warmup_epochs
        return cls(
            arch=chosen,
            arch_kwargs=dict(preset.arch_kwargs) if chosen == preset.arch else {},
            epochs=epochs,
            batch_size=preset.batch_size if batch_size is None else batch_size,
            optimizer=preset.optimizer,
            lr=preset.lr if lr is None else lr,
            lr_batch=preset.lr_batch,
            momentum=preset.momentum,
            weight_decay=preset.weight_decay,
            lars_eta=preset.lars_eta,
            lars_clip=preset.lars_clip,
            scale_loss=preset.scale_loss,
            warmup_epochs=min(10, max(1, epochs // 10)) if warmup is None else warmup,
            warmup_start_lr=preset.warmup_start_lr,
            seed=seed,
            projector_hidden=preset.projector_hidden,
            projector_out=preset.projector_out,
            projector_bias=preset.projector_bias,
            augment=AUGMENT_RECIPES.get(preset.augment),
        )

    def peak_lr(self, batch: int) -> float:
        """The peak learning rate for minibatches of `batch` images (linear scaling rule)."""
        return self.lr if self.lr_batch is None else self.lr * batch / self.lr_batch

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
        projector = Projector(backbone.feature_dim, config.projector_hidden, config.projector_out,
                              bias=config.projector_bias)
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
    """`config.optimizer` over `params`; 1-D parameters (biases, norms) get no weight decay (and,
    with LARS, no adaptation: `exclude_bias_n_norm`)."""
    if config.optimizer == "lars":
        return LARS(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                    eta=config.lars_eta, clip_lr=config.lars_clip, exclude_bias_n_norm=True)
    groups: list[dict[str, Any]] = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.AdamW(groups, lr=config.lr)


def check_finite_features(backbone: Backbone, probe: Tensor, epoch: int,
                          checkpoint_path: Path | None) -> None:
    """`DivergedError` unless the backbone's features (eval mode) of `probe` (B, c, r, r),
    normalised images, are all finite; the message names the checkpoint that is kept."""
    feats = extract_features(backbone, probe, batch_size=len(probe), device=probe.device)
    if bool(torch.isfinite(feats).all()):
        return
    kept = (f"; the checkpoint {checkpoint_path} of epoch {epoch - 1} is kept"
            if checkpoint_path is not None and epoch > 1 else "")
    raise DivergedError(f"the teacher's features became NaN or infinite in epoch {epoch}{kept}; "
                        "lower the learning rate or use the preset's optimizer.", option="lr")


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
    peak = config.peak_lr(batch)
    start = None if config.warmup_start_lr is None else min(1.0, config.warmup_start_lr / peak)
    schedule = warmup_cosine(min(config.warmup_epochs, config.epochs) * steps_per_epoch, start)
    probe = normalize(data[:PROBE_IMAGES], mean, std)
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
            loss = config.scale_loss * barlow_twins_loss(distributed.all_gather(z1.float()),
                                                         distributed.all_gather(z2.float()), config.lambd)
            epoch_sum += loss.detach()
            last = i == steps_per_epoch - 1
            if read_every == 1 or last or (i + 1) % read_every == 0:
                running = float(epoch_sum) / (i + 1)
                if not math.isfinite(running):
                    raise DivergedError(f"teacher training diverged (loss {running}) in epoch {epoch + 1}; "
                                        "lower the learning rate.", option="lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            set_lr(optimizer, peak, schedule(step, total_steps))
            optimizer.step()
            seen += batch
            if last:
                check_finite_features(backbone, probe, epoch + 1, checkpoint_path)
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
