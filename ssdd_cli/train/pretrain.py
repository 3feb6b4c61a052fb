"""Pretrain a fresh backbone on a distilled set (SSDD paper, Appendix A.1; KRR-ST eq. 5).

A randomly initialised backbone f and linear head h: d_h -> d_y are trained together to
regress the artifact's targets, ½‖h(f(X̃_s)) − Ỹ^Q‖² (the mean over entries, as
`F.mse_loss` in KRR-ST's code), or, for labelled artifacts (the DM family), with cross-entropy
to the labels. The head is dropped afterwards: the backbone is the product.

The recipe (SGD, weight decay, schedule, the DM family's protocol for labelled artifacts) is
`train.recipe.PretrainConfig`.

Under torchrun (`kit.distributed`) every rank draws the same minibatches and takes its share of
each; the backbone and head run under DistributedDataParallel with BatchNorm over the global
minibatch (`kit.parallel`), and each rank's loss is its share of the minibatch's loss times K
(DDP averages the gradients), so K processes take the steps one process takes. Network passes
run in `precision` (`kit.precision`), the loss in float32; the epoch's loss is read to the host
once per epoch. DSA's parameters are drawn for the whole minibatch on every rank (one
generator stream) and each rank applies its own rows.

Progress: an event after each epoch (with its loss) and, within an epoch longer than
`EVERY_SECONDS` (a whole training split takes minutes an epoch on a CPU), one every
`EVERY_SECONDS` with the epochs done so far as a fraction (metric "epoch"), so that a long epoch
is seen to move. Each rank decides by its own clock; the events involve no collective.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssdd_cli.distill import dsa
from ssdd_cli.errors import DivergedError, UsageError
from ssdd_cli.kit import distributed
from ssdd_cli.kit.checkpoint import Checkpointer, flat_settings, tensor_sha256
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
from ssdd_cli.progress import Callback, ProgressEvent, silent
from ssdd_cli.train.recipe import PretrainConfig

STAGE = "pretrain"
EVERY_SECONDS = 10.0  # within a long epoch, a progress event at most this often (module docstring)


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
    saved = shown = time.monotonic()

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
            batches = minibatches(m, config.batch_size, generator, device, min_size=max(2, k))
            for b, idx in enumerate(batches):
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
                if b + 1 < len(batches) and time.monotonic() - shown >= EVERY_SECONDS:
                    shown = time.monotonic()
                    done_so_far = epoch + (b + 1) / len(batches)
                    callback(ProgressEvent(STAGE, epoch, config.epochs, {"epoch": done_so_far}))
            last_loss = float(distributed.all_reduce(total)) / (m * per_row)
            if not math.isfinite(last_loss):
                raise DivergedError(f"pretraining diverged (loss {last_loss} at epoch {epoch + 1}); "
                                    "lower the learning rate or the weight decay.", option="lr")
            callback(ProgressEvent(STAGE, epoch + 1, config.epochs, {"loss": last_loss}))
            shown = time.monotonic()
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
