"""A tiny random teacher file, so distillation tests need no teacher training."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ssdd_cli.models import create_backbone, save_backbone
from ssdd_cli.teacher.store import TEACHER_KIND, TRAINED_ON, weights_sha256


def write_tiny_teacher(path: Path, in_channels: int = 1, image_size: int = 16, seed: int = 0,
                       width: int = 8) -> Path:
    """A random resnet10 saved as a teacher file (d_y = 8·width)."""
    torch.manual_seed(seed)
    model = create_backbone("resnet10", in_channels, image_size, width=width).eval()
    meta = {"ssdd.kind": TEACHER_KIND, "ssdd.source": "test", "ssdd.sha256": weights_sha256(model),
            "ssdd.trained_on": TRAINED_ON,
            "ssdd.mean": json.dumps([0.5] * in_channels), "ssdd.std": json.dumps([0.25] * in_channels)}
    save_backbone(path, model, meta)
    return path
