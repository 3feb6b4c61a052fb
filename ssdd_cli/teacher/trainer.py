"""Barlow Twins training of the teacher: the loop, its schedule, checkpoints and resume.

The recipe (`TeacherConfig`) and its optimiser (`make_optimizer`) live in `teacher.config`.

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

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ssdd_cli.data.normalize import normalize
from ssdd_cli.errors import DataError, DivergedError, UsageError
from ssdd_cli.kit import distributed
from ssdd_cli.kit.checkpoint import Checkpointer, flat_settings, tensor_sha256
from ssdd_cli.kit.precision import FP32, Precision
from ssdd_cli.kit.schedules import set_lr, warmup_cosine
from ssdd_cli.kit.seeding import seeded
from ssdd_cli.kit.training import parallel_model, restore_state, save_state
from ssdd_cli.models import Backbone, create_backbone, extract_features
from ssdd_cli.progress import Callback, ProgressEvent, silent
from ssdd_cli.teacher.augment import two_views
from ssdd_cli.teacher.config import TeacherConfig, make_optimizer
from ssdd_cli.teacher.loss import barlow_twins_loss
from ssdd_cli.teacher.projector import Projector

STAGE = "teacher"
PROBE_IMAGES = 128  # the fixed batch whose features must stay finite (module docstring)
READ_EVERY = 25  # steps between host reads of the loss on an accelerator (every step on the CPU)


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
    precision = precision.suited(backbone)
    backbone.to(device).train()
    projector.to(device).train()
    data = images_01.to(device=device, dtype=torch.float32)
    batch = min(config.batch_size, n)
    if batch % distributed.world_size():
        raise UsageError(f"the teacher's batch of {batch} images cannot be split evenly over "
                         f"{distributed.world_size()} processes; use a multiple of that.",
                         option="batch_size")
    twins = parallel_model(TwinNetwork(backbone, projector), precision, device)
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
        extra, info = restore_state(checkpoint, modules, optimizer)
        generator.set_state(extra["generator"])
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
                    save_state(checkpoint, modules, optimizer, {"epoch": epoch + 1, "losses": losses},
                               generator=generator.get_state())
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
