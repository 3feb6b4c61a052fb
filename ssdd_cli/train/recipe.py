"""The recipe of a pretraining: `PretrainConfig` (the loop that follows it is `train.pretrain`).

Recipe (SSDD paper, Appendix A.1): SGD, lr 0.1, momentum 0.9, minibatches of 256, 1,000 epochs,
weight decay by budget (Table 5). The paper says the lr is "maintained at 0.1" and KRR-ST's code
has no scheduler, so the default schedule is `constant`; `cosine` is offered. No augmentation:
the artifact's predefined augmented views are already among its images.

Labelled artifacts (the DM family) train under that family's own evaluation protocol
(`PretrainConfig.from_preset(..., labelled=True)`; DC's `evaluate_synset`): cross-entropy, SGD lr
0.01, momentum 0.9, weight decay 5e-4, batch 256, lr ×0.1 at half of the epochs ("step"), DSA on
every minibatch (one op group of `color_crop_cutout_flip_scale_rotate` per batch, parameters per
image), the final model. The epochs are the preset's (the protocol's 1,000 on the paper sources;
DC's loop runs 1,001 and decays after epoch 501, we run the epochs given and decay at half).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ssdd_cli.errors import UsageError
from ssdd_cli.kit.checkpoint import KEYED_WHEN_SET
from ssdd_cli.kit.schedules import SCHEDULES
from ssdd_cli.presets import Preset

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
        augment: str | None = None,
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
            augment=base.augment if augment is None else augment,
            decay_norm_bias=base.decay_norm_bias if decay_norm_bias is None else decay_norm_bias,
        )

