"""The "full" reference row: a fresh backbone pretrained on every image distillation sees (the
source side: the train split, val held out) with its teacher target, scaled as artifacts scale theirs
(`teacher.targets`), by the same recipe as an artifact's pretraining (`train.pretrain`).

It is the ceiling a distilled set of N images aims at: the same regression, on all the data.
Its length is a number of SGD steps, the preset's `full_steps` (about an artifact's pretraining:
its `epochs` epochs of one minibatch), turned into the fewest whole epochs over the source that
reach it (`full_config`); the artifacts' epochs do not set it, since an epoch of the source is
hundreds of an artifact's.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ssdd_cli.data import ImageSet, device_tensor
from ssdd_cli.distill.inputs import TeacherTargets
from ssdd_cli.errors import UsageError
from ssdd_cli.kit import distributed
from ssdd_cli.kit.precision import FP32, Precision
from ssdd_cli.presets import Preset
from ssdd_cli.progress import Callback, silent
from ssdd_cli.teacher import load_teacher
from ssdd_cli.teacher.targets import DEFAULT_TARGETS
from ssdd_cli.train.diagnostics import sgd_steps
from ssdd_cli.train.recipe import PretrainConfig
from ssdd_cli.train.recorded import Origin, Pretrained, pretrain_recorded

FULL = "full"


def full_epochs(steps: int, images: int, batch_size: int) -> int:
    """The fewest epochs over `images` in minibatches of `batch_size` that take at least `steps`
    SGD steps (an epoch's minibatches counted as `train.pretrain` draws them)."""
    if steps < 1:
        raise UsageError(f"the full row needs at least one SGD step, got {steps}.", option="full_steps")
    return max(1, math.ceil(steps / epoch_steps(images, batch_size)))


def epoch_steps(images: int, batch_size: int) -> int:
    """SGD steps an epoch over `images` takes (`train.pretrain`'s minibatches; under torchrun a
    last batch smaller than the ranks joins the one before)."""
    return sgd_steps(images, batch_size, 1, min_size=max(2, distributed.world_size()))


def full_config(preset: Preset, images: int, *, arch: str, seed: int = 0, steps: int | None = None,
                **options: Any) -> PretrainConfig:
    """The full row's recipe on a source of `images` images: the artifacts' (`PretrainConfig.
    from_preset` with `options`, e.g. lr or batch_size, but not epochs) for `full_epochs` of
    `steps` SGD steps (None: the preset's `full_steps`)."""
    if "epochs" in options:
        raise TypeError("full_config sets the epochs from `steps`; give steps, not epochs")
    base = PretrainConfig.from_preset(preset, arch=arch, seed=seed, **options)
    wanted = preset.pretrain.full_steps if steps is None else steps
    return replace(base, epochs=full_epochs(wanted, images, base.batch_size))


def pretrain_full(data: ImageSet, teacher_file: Path, config: PretrainConfig, *,
                  device: torch.device, callback: Callback = silent, checkpoint_path: Path | None = None,
                  resume: bool = False, precision: Precision = FP32,
                  target_scaling: str = DEFAULT_TARGETS, output: Path | None = None) -> Pretrained:
    """Pretrain `config.arch` on `data.source` (n, c, r, r) regressing the teacher's features of
    each image, scaled by `target_scaling`, for `config.epochs` (`full_config` sets them from the
    preset's SGD steps); the backbone file's metadata comes with it, and the file is written to
    `output` when given (`train.recorded`)."""
    teacher, meta = load_teacher(teacher_file, map_location=device)
    images = device_tensor(data.source, data.mean, data.std, device)
    targets = TeacherTargets.from_backbone(teacher, meta, images, device, teacher_file).scaled(target_scaling)
    origin = Origin(data.name, data.mean, data.std, "", FULL, meta.get("ssdd.sha256"), target_scaling)
    return pretrain_recorded(images, targets.features(), None, config, origin, device=device,
                             callback=callback, checkpoint_path=checkpoint_path, resume=resume,
                             precision=precision, output=output)
