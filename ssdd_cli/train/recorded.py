"""A pretraining and its record, in one place for every caller (`ssdd pretrain` and the Python
API, `ssdd compare`'s pretrain and full steps, the demo's full row): pretrain (`train.pretrain`),
measure how far the weights moved (`pretrain_drift`), build the backbone file's metadata
(`pretrain_metadata`: source, artifact, method, teacher, recipe, drift) and save it when asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ssdd_cli.artifact.materialize import materialize
from ssdd_cli.bundle import Bundle
from ssdd_cli.kit.distributed import is_main
from ssdd_cli.kit.precision import FP32, Precision
from ssdd_cli.models import Backbone, save_backbone
from ssdd_cli.progress import Callback, silent
from ssdd_cli.train.diagnostics import Drift
from ssdd_cli.train.pretrain import pretrain
from ssdd_cli.train.provenance import pretrain_drift, pretrain_metadata
from ssdd_cli.train.recipe import PretrainConfig


@dataclass(frozen=True)
class Pretrained:
    """A pretrained backbone, its final loss, the images it trained on (M, every view), its drift
    and its file's metadata."""

    backbone: Backbone
    final_loss: float
    images: int
    drift: Drift
    metadata: dict[str, str]


@dataclass(frozen=True)
class Origin:
    """Where the training images came from, as the backbone file records it: the source's name
    and normalisation, the artifact's sha256 ("" for none) and method, the teacher the targets
    came from (None: no teacher, e.g. an artifact of labels), and what the backbone fitted
    ("labels", "raw" or "standardized" targets; None: unknown), which the drift's advice needs."""

    source: str
    mean: tuple[float, ...] | list[float]
    std: tuple[float, ...] | list[float]
    artifact_sha256: str
    method: str
    teacher_sha256: str | None = None
    targets: str | None = None


def pretrain_recorded(images: Tensor, targets: Tensor | None, labels: Tensor | None, config: PretrainConfig,
                      origin: Origin, *, device: torch.device, callback: Callback = silent,
                      checkpoint_path: Path | None = None, resume: bool = False,
                      num_classes: int | None = None, precision: Precision = FP32,
                      output: Path | None = None) -> Pretrained:
    """Pretrain a fresh `config.arch` on `images` (M, c, r, r) with `targets` (M, d_y) or
    `labels` (M,) (`train.pretrain.pretrain`), measure its drift, and build its metadata; save
    the backbone file to `output` when given (rank 0 under torchrun)."""
    net, loss = pretrain(images, targets, labels, config, in_channels=images.shape[1],
                         image_size=images.shape[-1], device=device, callback=callback,
                         checkpoint_path=checkpoint_path, resume=resume, num_classes=num_classes,
                         precision=precision)
    drift = pretrain_drift(net, config, images=len(images), targets=origin.targets)
    meta = pretrain_metadata(config, final_loss=loss, source=origin.source, mean=origin.mean, std=origin.std,
                             artifact_sha256=origin.artifact_sha256, method=origin.method,
                             images=len(images), teacher_sha256=origin.teacher_sha256, drift=drift)
    if output is not None and is_main():
        save_backbone(output, net, meta)
    return Pretrained(net, loss, len(images), drift, meta)


def pretrain_bundle(bundle: Bundle, config: PretrainConfig, *, artifact_sha256: str, device: torch.device,
                    callback: Callback = silent, checkpoint_path: Path | None = None, resume: bool = False,
                    precision: Precision = FP32, output: Path | None = None) -> Pretrained:
    """`pretrain_recorded` on an artifact's images and targets (or labels), recording the
    artifact (`artifact_sha256`: its file's), its method and source, and the teacher its manifest
    names, so an evaluation comparing with the teacher finds that very teacher."""
    man = bundle.manifest
    src = man.source
    data = materialize(bundle, device)
    fitted = "labels" if data.targets is None else (man.teacher.targets if man.teacher else None) or "raw"
    origin = Origin(src.name, src.mean, src.std, artifact_sha256, man.method,
                    man.teacher.sha256 if man.teacher else None, fitted)
    return pretrain_recorded(data.images, data.targets, data.labels, config, origin, device=device,
                             callback=callback, checkpoint_path=checkpoint_path, resume=resume,
                             num_classes=src.classes, precision=precision, output=output)
