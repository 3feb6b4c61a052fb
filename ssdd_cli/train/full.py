"""The "full" reference row: a fresh backbone pretrained on every image distillation sees (the
source's whole official train split) with its teacher target, scaled as artifacts scale theirs
(`teacher.targets`), by the same recipe as an artifact's pretraining (`train.pretrain`).

It is the ceiling a distilled set of N images aims at: the same regression, on all the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ssdd_cli.data import ImageSet, device_tensor
from ssdd_cli.distill.inputs import TeacherTargets
from ssdd_cli.kit.precision import FP32, Precision
from ssdd_cli.models import Backbone
from ssdd_cli.progress import Callback, silent
from ssdd_cli.teacher import load_teacher
from ssdd_cli.teacher.targets import DEFAULT_TARGETS
from ssdd_cli.train.diagnostics import Drift
from ssdd_cli.train.pretrain import pretrain
from ssdd_cli.train.provenance import pretrain_drift, pretrain_metadata
from ssdd_cli.train.recipe import PretrainConfig

FULL = "full"


@dataclass(frozen=True)
class FullResult:
    backbone: Backbone
    final_loss: float
    images: int
    drift: Drift
    metadata: dict[str, str]


def pretrain_full(data: ImageSet, teacher_file: Path, config: PretrainConfig, *,
                  device: torch.device, callback: Callback = silent, checkpoint_path: Path | None = None,
                  resume: bool = False, precision: Precision = FP32,
                  target_scaling: str = DEFAULT_TARGETS) -> FullResult:
    """Pretrain `config.arch` on `data.source` (n, c, r, r) regressing the teacher's features of
    each image, scaled by `target_scaling`; the backbone file's metadata comes with it."""
    teacher, meta = load_teacher(teacher_file, map_location=device)
    images = device_tensor(data.source, data.mean, data.std, device)
    targets = TeacherTargets.from_backbone(teacher, meta, images, device, teacher_file).scaled(target_scaling)
    net, loss = pretrain(images, targets.features(), None, config, in_channels=data.channels,
                         image_size=data.resolution, device=device, callback=callback,
                         checkpoint_path=checkpoint_path, resume=resume, precision=precision)
    drift = pretrain_drift(net, config, images=len(images))
    metadata = pretrain_metadata(config, final_loss=loss, source=data.name, mean=data.mean, std=data.std,
                                 artifact_sha256="", method=FULL, images=len(images),
                                 teacher_sha256=meta.get("ssdd.sha256"), drift=drift)
    return FullResult(net, loss, len(images), drift, metadata)
