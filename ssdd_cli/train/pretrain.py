"""Pretrain a fresh backbone on a distilled set (SSDD paper, Appendix A.1; KRR-ST eq. 5).

A randomly initialised backbone f and linear head h: d_h -> d_y are trained together to
regress the artifact's targets, ½‖h(f(X̃_s)) − Ỹ^Q‖² (the mean over entries, as
`F.mse_loss` in KRR-ST's code), or, for labelled artifacts (the DM family), with cross-entropy
to the labels. The head is dropped afterwards: the backbone is the product.

Recipe (paper): SGD, lr 0.1, momentum 0.9, minibatches of 256, 1,000 epochs, weight decay by
budget (Table 5). The paper says the lr is "maintained at 0.1" and KRR-ST's code has no
scheduler, so the default schedule is `constant`; `cosine` is offered. No augmentation: the
artifact's predefined augmented views are already among its images.

Labelled artifacts (the DM family) train under that family's own evaluation protocol
(`PretrainConfig.from_preset(..., labelled=True)`; DC's `evaluate_synset`): cross-entropy, SGD lr
0.01, momentum 0.9, weight decay 5e-4, batch 256, lr ×0.1 at half of the epochs ("step"), DSA on
every minibatch (one op group of `color_crop_cutout_flip_scale_rotate` per batch, parameters per
image), the final model. The epochs are the preset's (the protocol's 1,000 on the paper sources;
DC's loop runs 1,001 and decays after epoch 501, we run the epochs given and decay at half).

Under torchrun (`kit.distributed`) every rank draws the same minibatches and takes its share of
each; the backbone and head run under DistributedDataParallel with BatchNorm over the global
minibatch (`kit.parallel`), and each rank's loss is its share of the minibatch's loss times K
(DDP averages the gradients), so K processes take the steps one process takes. Network passes
run in `precision` (`kit.precision`), the loss in float32; the epoch's loss is read to the host
once per epoch. DSA's parameters are drawn for the whole minibatch on every rank (one
generator stream) and each rank applies its own rows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssdd_cli.distill import dsa
from ssdd_cli.errors import DivergedError, UsageError
from ssdd_cli.kit import distributed
from ssdd_cli.kit.checkpoint import KEYED_WHEN_SET, Checkpointer, flat_settings, tensor_sha256
from ssdd_cli.kit.precision import FP32, Precision
from ssdd_cli.kit.schedules import SCHEDULES, set_lr
from ssdd_cli.kit.seeding import cpu_generator, seeded
from ssdd_cli.kit.training import (
    decay_groups,
    minibatches,
    parallel_model,
    restore_state,
    rng_state,
    save_state,
    set_rng_state,
)
from ssdd_cli.models import Backbone, create_backbone
from ssdd_cli.presets import Preset
from ssdd_cli.progress import Callback, ProgressEvent, silent

STAGE = "pretrain"
AUGMENTS = ("none", "dsa")
DM_PROTOCOL_LR = 0.01  # DC's evaluate_synset: SGD lr 0.01, momentum 0.9, weight decay 5e-4
DM_PROTOCOL_WD = 5e-4


@dataclass(frozen=True)
class PretrainConfig:
    """How to pretrain on an artifact.

    arch / arch_kwargs: the backbone (`create_backbone(arch, c, r, **arch_kwargs)`).
    weight_decay: Table 5 of the SSDD paper (1e-3 for CIFAR-100 N ≤ 100); `from_preset` takes it
        from the source's budget rule. decay_norm_bias: whether it also applies to BatchNorm's
        weights and every bias (True: the papers' code, SGD's weight decay over all parameters;
        False: only the convolution and linear weights, `kit.training.decay_groups`).
    schedule: a `kit.schedules` name, per epoch: "constant"
        (the paper), "cosine", "linear", "step" (×0.1 at half: the DM family's protocol).
    augment: "none", or "dsa": differentiable augmentation drawn per image on every minibatch
        (the DM family's protocol).
    seed: initialisation (global RNG, forked locally), minibatch order and augmentation (a CPU
        generator).
    """

    arch: str = "convnet"
    epochs: int = 1000
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-3
    seed: int = 0
    schedule: str = "constant"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    augment: str = "none"
    decay_norm_bias: bool = field(default=True, metadata=KEYED_WHEN_SET)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UsageError(f"pretraining needs at least one epoch, got {self.epochs}.", option="epochs")
        if self.batch_size < 1:
            raise UsageError(f"the batch size must be at least 1, got {self.batch_size}.",
                             option="batch_size")
        if not self.lr > 0:
            raise UsageError(f"the learning rate must be positive, got {self.lr}.", option="lr")
        if self.weight_decay < 0:
            raise UsageError(f"the weight decay cannot be negative, got {self.weight_decay}.",
                             option="weight_decay")
        SCHEDULES.get(self.schedule)
        if self.augment not in AUGMENTS:
            raise UsageError(f"unknown pretraining augmentation {self.augment!r}; choose one of: "
                             f"{', '.join(AUGMENTS)}.", option="augment")

    @classmethod
    def from_preset(
        cls,
        preset: Preset,
        *,
        budget: int | None = None,
        arch: str = "convnet",
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        weight_decay: float | None = None,
        seed: int = 0,
        schedule: str | None = None,
        decay_norm_bias: bool | None = None,
        labelled: bool = False,
    ) -> PretrainConfig:
        """The paper's recipe with the preset's defaults: its pretraining epochs, the weight decay
        of the budget's Table-5 row, and, when `arch` is the preset's inner network, its options
        (so the demo's ConvNet is the one distilled with). `labelled`: the DM family's protocol
        instead (lr 0.01, weight decay 5e-4, "step" schedule, DSA), for artifacts of labels.
        Every option that is not None wins."""
        N = preset.budgets.default if budget is None else budget
        inner = preset.distill
        if labelled:
            base = cls(lr=DM_PROTOCOL_LR, weight_decay=DM_PROTOCOL_WD, schedule="step", augment="dsa")
        else:
            base = cls(weight_decay=preset.budgets.weight_decay(N))
        return cls(
            arch=arch,
            epochs=preset.pretrain.epochs if epochs is None else epochs,
            batch_size=base.batch_size if batch_size is None else batch_size,
            lr=base.lr if lr is None else lr,
            weight_decay=base.weight_decay if weight_decay is None else weight_decay,
            seed=seed,
            schedule=base.schedule if schedule is None else schedule,
            arch_kwargs=dict(inner.inner_kwargs) if arch == inner.inner_arch else {},
            augment=base.augment,
            decay_norm_bias=base.decay_norm_bias if decay_norm_bias is None else decay_norm_bias,
        )


def build_backbone(
    config: PretrainConfig, *, in_channels: int, image_size: int, device: torch.device
) -> Backbone:
    """A fresh `config.arch` initialised from `config.seed`, checked on one input of the shape.

    Raises UsageError in one sentence when images (c, r, r) do not fit the architecture.
    """
    with seeded(config.seed, device):
        backbone = create_backbone(config.arch, in_channels, image_size, **config.arch_kwargs)
    backbone.to(device).eval()
    try:
        with torch.no_grad():
            backbone.features(torch.zeros(1, in_channels, image_size, image_size, device=device))
    except (RuntimeError, ValueError, IndexError) as error:
        raise UsageError(
            f"{in_channels}×{image_size}×{image_size} images do not fit arch {config.arch!r} "
            f"({str(error).splitlines()[0][:120]}); choose another architecture.", option="arch"
        ) from None
    return backbone


class Regressor(nn.Module):
    """h(f(x)): the backbone's features through the linear head, one module for DDP."""

    def __init__(self, backbone: Backbone, head: nn.Linear) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.head(self.backbone.features(x))
        return out


def pretrain(images: Tensor, targets: Tensor | None, labels: Tensor | None, config: PretrainConfig,
             **options: Any) -> tuple[Backbone, float]:
    """`fit` a fresh backbone and head, and keep the backbone (the head is dropped): the
    pretraining of an artifact. Returns (backbone in eval mode, mean loss of the last epoch)."""
    network, loss = fit(images, targets, labels, config, **options)
    return network.backbone, loss


def fit(
    images: Tensor,
    targets: Tensor | None,
    labels: Tensor | None,
    config: PretrainConfig,
    *,
    in_channels: int,
    image_size: int,
    device: torch.device,
    callback: Callback = silent,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    num_classes: int | None = None,
    checkpoint_seconds: float = 60.0,
    precision: Precision = FP32,
) -> tuple[Regressor, float]:
    """Train a fresh backbone and linear head on (images, targets) by MSE, or on (images,
    labels) by CE.

    images: (M, c, r, r), normalised, all augmented views included (X̃_s).
    targets: (M, d_y) regression targets (Ỹ^Q), or None. When both are given the targets win:
        the self-supervised regression is what the artifact was distilled for.
    labels: (M,) int64 class indices, used when targets is None; `num_classes` defaults to
        max(label) + 1.
    The head is d_h × d_y (8,192 × 512 for the ConvNet at 32 px: 4.2 M weights, more than the
    backbone), trained with the same SGD and weight decay as the backbone (`pretrain` drops it;
    the `classify` protocol predicts with it).
    Checkpoints to `checkpoint_path` (safetensors, atomic) after the first epoch, then after any
    epoch that ends `checkpoint_seconds` or more after the last save, and after the last; a set
    smaller than a minibatch takes one step an epoch, and an fsynced write every epoch cost more
    than the step (issue 22);
    `resume=True` continues from it, bit-for-bit on CPU, if it belongs to the same run.
    precision: of the network passes (module docstring).
    Returns (backbone and head in eval mode on `device`, mean loss of the last epoch).
    """
    m = images.shape[0]
    if images.ndim != 4 or tuple(images.shape[1:]) != (in_channels, image_size, image_size):
        raise ValueError(f"images must be (M, {in_channels}, {image_size}, {image_size}), "
                         f"got {tuple(images.shape)}")
    if targets is None and labels is None:
        raise UsageError("the artifact has neither targets nor labels, so there is nothing to "
                         "pretrain on; distill it again.")
    if m == 0:
        raise UsageError("the artifact holds no images; distill it again with a larger budget.")
    if m < 2 * distributed.world_size():
        raise UsageError(f"the artifact's {m} images are too few to share among "
                         f"{distributed.world_size()} processes; use fewer processes.")
    backbone = build_backbone(config, in_channels=in_channels, image_size=image_size, device=device)
    precision = precision.suited(backbone)
    x = precision.images(images.to(device, torch.float32))  # the set in its final layout, once
    loss_fn: Callable[..., Tensor]
    if targets is not None:
        y = targets.to(device, torch.float32).reshape(m, -1)
        out_dim, loss_fn = y.shape[1], F.mse_loss
        per_row = out_dim  # mse's mean runs over every entry
    else:
        assert labels is not None
        y = labels.to(device, torch.long)
        out_dim = num_classes if num_classes is not None else int(labels.max()) + 1
        loss_fn, per_row = F.cross_entropy, 1
    with seeded(config.seed + 1, device):
        head = nn.Linear(backbone.feature_dim, out_dim).to(device)
    modules: dict[str, nn.Module] = {"backbone": backbone, "head": head}
    model = parallel_model(Regressor(backbone, head), precision, device)
    k = distributed.world_size()
    params = [p for mod in modules.values() for p in mod.parameters()]
    opt = torch.optim.SGD(decay_groups(params, config.weight_decay, config.decay_norm_bias), lr=config.lr,
                          momentum=config.momentum)
    generator = cpu_generator(config.seed)
    checkpoint = None
    if checkpoint_path is not None:
        fingerprint = {**flat_settings(config), "data": tensor_sha256(x, y)}
        checkpoint = Checkpointer(checkpoint_path, STAGE, fingerprint)
    schedule = SCHEDULES.get(config.schedule)
    start, last_loss = 0, float("nan")
    saved = time.monotonic()

    with seeded(config.seed + 2, device):  # BatchNorm/dropout draw from the global RNG
        if resume and checkpoint is not None and checkpoint.exists():
            extra, info = restore_state(checkpoint, modules, opt)
            set_rng_state(extra["rng"], generator, device)
            start, last_loss = int(info["epoch"]), float(info["loss"])
            callback(ProgressEvent(STAGE, message=f"resuming from epoch {start} of {config.epochs} "
                                                  f"({checkpoint.path})"))
        for epoch in range(start, config.epochs):
            set_lr(opt, config.lr, schedule(epoch, config.epochs))
            model.train()
            total = torch.zeros((), device=device)  # this rank's share of the epoch's summed loss
            for idx in minibatches(m, config.batch_size, generator, device, min_size=max(2, k)):
                mine = distributed.shard(idx)
                batch = x[mine]
                if config.augment == "dsa":  # DC's DiffAugment without a seed: per-image parameters
                    omega = dsa.sample(dsa.DSA_STRATEGY, "dsa", (batch.shape[2], batch.shape[3]), generator,
                                       n=len(idx), shared=False)
                    batch = dsa.apply(_rank_rows(omega), batch)
                with precision.autocast():
                    out = model(precision.images(batch))
                part = loss_fn(out.float(), y[mine], reduction="sum")
                # The minibatch's mean loss is Σ_ranks part / (rows·per_row); DDP averages over k.
                loss = part * (k / (idx.numel() * per_row))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += part.detach()
            last_loss = float(distributed.all_reduce(total)) / (m * per_row)
            if not math.isfinite(last_loss):
                raise DivergedError(f"pretraining diverged (loss {last_loss} at epoch {epoch + 1}); "
                                    "lower the learning rate or the weight decay.", option="lr")
            callback(ProgressEvent(STAGE, epoch + 1, config.epochs, {"loss": last_loss}))
            done = epoch + 1
            due = done == start + 1 or done == config.epochs or \
                time.monotonic() - saved >= checkpoint_seconds
            if checkpoint is not None and due:
                saved = time.monotonic()
                save_state(checkpoint, modules, opt, {"epoch": done, "loss": last_loss},
                           rng=rng_state(generator, device))
    network = Regressor(backbone, head).eval()
    return network, last_loss


def _rank_rows(augmentation: dsa.Augmentation) -> dsa.Augmentation:
    """This rank's rows of an augmentation drawn per image for the whole minibatch (all of it in
    a single process), matching `distributed.shard` of the minibatch's indices."""
    return tuple(dsa.AugOp(op.name, distributed.shard(op.params)) for op in augmentation)
