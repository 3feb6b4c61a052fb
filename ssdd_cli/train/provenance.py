"""What a pretrained backbone file records besides its weights: where it came from (the artifact,
its method and teacher, the recipe) and how far training moved it (`train.diagnostics`)."""

from __future__ import annotations

import json
from dataclasses import asdict

from ssdd_cli.kit import distributed
from ssdd_cli.models import Backbone
from ssdd_cli.train.diagnostics import Drift, decay_ratio, sgd_steps, weight_drift
from ssdd_cli.train.pretrain import build_backbone
from ssdd_cli.train.recipe import PretrainConfig


def pretrain_metadata(
    config: PretrainConfig,
    *,
    final_loss: float,
    source: str,
    mean: tuple[float, ...] | list[float],
    std: tuple[float, ...] | list[float],
    artifact_sha256: str,
    method: str,
    images: int,
    teacher_sha256: str | None = None,
    drift: Drift | None = None,
) -> dict[str, str]:
    """The extra metadata of a pretrained backbone file (beside `save_backbone`'s own keys).

    teacher_sha256: the teacher the artifact was distilled with (its manifest's), recorded as
    `ssdd.teacher_sha256` so an evaluation comparing with the teacher finds that very teacher.
    drift: the weights against their initialisation (`pretrain_drift`), as `ssdd.drift` (JSON).
    """
    provenance = {"ssdd.teacher_sha256": teacher_sha256} if teacher_sha256 else {}
    if drift is not None:
        provenance["ssdd.drift"] = json.dumps(drift.to_dict())
    return {
        **provenance,
        "ssdd.kind": "backbone",
        "ssdd.source": source,
        "ssdd.mean": json.dumps([float(v) for v in mean]),
        "ssdd.std": json.dumps([float(v) for v in std]),
        "ssdd.artifact_sha256": artifact_sha256,
        "ssdd.artifact_method": method,
        "ssdd.pretrain_images": str(images),
        "ssdd.epochs": str(config.epochs),
        "ssdd.final_loss": repr(final_loss),
        "ssdd.pretrain_config": json.dumps(asdict(config), sort_keys=True, default=str),
    }



def pretrain_drift(backbone: Backbone, config: PretrainConfig, *, images: int,
                   targets: str | None = None) -> Drift:
    """How far pretraining moved `backbone` from its initialisation (rebuilt from `config.seed`
    for the backbone's own input shape) against what weight decay alone does in its steps
    (`train.diagnostics`). images: M, the number of training images (every view). targets: what
    it fitted, "labels" (a labelled artifact), "raw" or "standardized" (the artifact manifest's
    `teacher.targets`, absent: raw; the full row's target scaling); None: not said. Only raw
    targets get the advice to standardise them (`Drift.warning`)."""
    initial = build_backbone(config, in_channels=backbone.in_channels, image_size=backbone.image_size,
                             device=next(backbone.parameters()).device)
    per_epoch = sgd_steps(images, config.batch_size, 1, min_size=max(2, distributed.world_size()))
    decay = decay_ratio(lr=config.lr, schedule=config.schedule, epochs=config.epochs,
                        steps_per_epoch=per_epoch, weight_decay=config.weight_decay, momentum=config.momentum)
    return weight_drift(backbone, initial, steps=per_epoch * config.epochs, decay=decay, targets=targets)
