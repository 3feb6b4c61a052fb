"""The teacher's recipe: `TeacherConfig` (from a preset's `TeacherPreset`) and the optimiser it
builds (`make_optimizer`); `teacher.trainer` runs it.

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
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ssdd_cli.errors import UsageError
from ssdd_cli.kit.lars import LARS
from ssdd_cli.kit.training import decay_groups
from ssdd_cli.presets import TeacherPreset
from ssdd_cli.teacher.augment import AUGMENT_RECIPES, AugmentConfig

OPTIMIZERS = ("lars", "sgd", "adamw")


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


def make_optimizer(config: TeacherConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """`config.optimizer` over `params`; 1-D parameters (biases, norms) get no weight decay (and,
    with LARS, no adaptation: `exclude_bias_n_norm`)."""
    if config.optimizer == "lars":
        return LARS(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                    eta=config.lars_eta, clip_lr=config.lars_clip, exclude_bias_n_norm=True)
    groups = decay_groups(params, config.weight_decay, norm_bias=False)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.AdamW(groups, lr=config.lr)
