"""Teacher files: a backbone safetensors file with the teacher's metadata and weights hash.

Metadata a teacher adds to `save_backbone`'s structural keys (all strings):

    ssdd.kind        "teacher"
    ssdd.ssl         "barlow_twins"
    ssdd.source      the source spec it was trained on, e.g. "digits"
    ssdd.mean        JSON list, the source's per-channel mean in [0, 1] space
    ssdd.std         JSON list, the per-channel std
    ssdd.epochs      epochs trained
    ssdd.loss        the mean Barlow Twins loss of the last epoch
    ssdd.teacher_config  JSON of the `TeacherConfig`
    ssdd.sha256      `weights_sha256` of the backbone (see there for exactly what is hashed)
    ssdd.trained_on  which images of the source it trained on: `TRAINED_ON`, the train split
                     with val held out (absent: a teacher from before issue 33, which saw val)

A teacher imported from elsewhere (`teacher.imports`) has no epochs, loss or config; it carries
`ssdd.origin` instead: JSON of the checkpoint's file name and sha256, its layout, the heads
dropped and the backbone options chosen.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ssdd_cli.models import Backbone, BackboneFileError, load_backbone, save_backbone
from ssdd_cli.teacher.trainer import TeacherResult

TEACHER_KIND = "teacher"
SSL_METHOD = "barlow_twins"
# The images a teacher trained by this ssdd sees: the source side, the train split without val
# (`ImageSet.source`). A teacher without this record saw val too.
TRAINED_ON = "train, val held out"


def weights_sha256(model: nn.Module) -> str:
    """Hex sha256 identifying a network's weights, stable across save/load and devices.

    Hashed: for every entry of `model.state_dict()` in sorted key order, the UTF-8 key, a NUL
    byte, the dtype name (e.g. "torch.float32"), the shape as JSON (e.g. "[32, 1, 3, 3]"), a NUL
    byte, then the tensor's raw bytes (contiguous, on the CPU, native little-endian order).
    Buffers (BatchNorm running statistics) are included: they change the features.
    """
    h = hashlib.sha256()
    state = model.state_dict()
    for key in sorted(state):
        t = state[key].detach().to("cpu").contiguous()
        h.update(key.encode("utf-8") + b"\0")
        h.update(f"{t.dtype}{json.dumps(list(t.shape))}".encode() + b"\0")
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def teacher_metadata(
    result: TeacherResult, *, source: str, mean: Sequence[float], std: Sequence[float]
) -> dict[str, str]:
    """The metadata `save_teacher` adds to the backbone file (module docstring lists the keys)."""
    return {
        "ssdd.kind": TEACHER_KIND,
        "ssdd.ssl": SSL_METHOD,
        "ssdd.source": source,
        "ssdd.mean": json.dumps([float(v) for v in mean]),
        "ssdd.std": json.dumps([float(v) for v in std]),
        "ssdd.epochs": str(len(result.losses)),
        "ssdd.loss": repr(result.final_loss),
        "ssdd.teacher_config": result.config.to_json(),
        "ssdd.sha256": weights_sha256(result.backbone),
        "ssdd.trained_on": TRAINED_ON,
    }


def save_teacher(
    path: str | os.PathLike[str],
    result: TeacherResult,
    *,
    source: str,
    mean: Sequence[float],
    std: Sequence[float],
) -> dict[str, str]:
    """Write the trained backbone to `path` (atomically) as a teacher file; returns its metadata."""
    meta = teacher_metadata(result, source=source, mean=mean, std=std)
    save_backbone(path, result.backbone, meta)
    return meta


def load_teacher(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[Backbone, dict[str, str]]:
    """Load a teacher file: (backbone in eval mode, metadata).

    Raises `BackboneFileError` for anything `load_backbone` refuses, and for a backbone file that
    is not a teacher (e.g. the output of `ssdd pretrain`) or whose weights do not match its
    recorded sha256.
    """
    model, meta = load_backbone(path, map_location)
    if meta.get("ssdd.kind") != TEACHER_KIND:
        raise BackboneFileError(
            f"{Path(path)} is a {meta.get('ssdd.kind', 'backbone')} file, not a teacher; pass the "
            "output of `ssdd teacher`."
        )
    recorded = meta.get("ssdd.sha256")
    if recorded is not None and recorded != weights_sha256(model):
        raise BackboneFileError(
            f"the weights in {Path(path)} do not match their recorded sha256; the file is "
            "corrupt, so train the teacher again with `ssdd teacher`."
        )
    return model, meta
