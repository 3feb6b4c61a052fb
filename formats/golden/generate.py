"""Writes the golden files of each format version that has none yet (`make golden`).

A golden file is written once, with the version it is named after, and never regenerated: every
later reader must load it unchanged (tests/bundle/test_bundle.py).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import torch

from ssdd_cli.budget import ImageShape, class_budget, raw_budget, ssdd_components
from ssdd_cli.bundle import save_bundle
from ssdd_cli.bundle.manifest import (
    Approx,
    Augmentations,
    BudgetInfo,
    DistillConfig,
    Manifest,
    Parameterization,
    RawImages,
    SourceInfo,
    Teacher,
    expected_tensors,
)

HERE = Path(__file__).parent
CREATED = datetime(2026, 11, 21, tzinfo=timezone.utc)
SOURCE = SourceInfo(name="digits", channels=1, height=8, width=8, mean=[0.3], std=[0.4], classes=10)


def parameterized() -> Manifest:
    shape = ImageShape(1, 8, 8)
    comps = ssdd_components(m=5, U=6, V=4, shape=shape, scale=2, feature_dim=8, hidden=2, A=3)
    return Manifest(
        format_version="1.0", method="ssdd", source=SOURCE,
        budget=BudgetInfo(images=6, floats_allowed=6 * 64, floats_used=sum(comps.values()),
                          components=comps, convention="parameterized"),
        parameterization=Parameterization(m=5, U=6, V=4, scale=2, feature_dim=8),
        augmentations=Augmentations(name="rotate", views=["rot90", "rot180", "rot270"]),
        approx=Approx(hidden=2),
        teacher=Teacher(arch="resnet10", feature_dim=8, sha256="0" * 64),
        distill=DistillConfig(steps=10, lr=1e-3, seed=0, batch_size=32, real_aug="none",
                              pool_size=2, pool_max_steps=5, inner_arch="convnet", ridge=1e-6,
                              final_loss=0.5),
        tool_version="0.1.0", created=CREATED,
    )


def raw() -> Manifest:
    report = raw_budget(4, ImageShape(1, 8, 8), count_targets=True, target_floats=8)
    return Manifest(
        format_version="1.0", method="krr-st", source=SOURCE,
        budget=BudgetInfo(images=4, floats_allowed=report.allowed, floats_used=report.used,
                          components=report.components, convention=report.convention),
        raw=RawImages(m=report.m, target_dim=8),
        tool_version="0.1.0", created=CREATED,
    )


def tensors_for(manifest: Manifest, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(*shape, generator=g) if dtype == "float32"
            else torch.arange(shape[0]) % 10
            for name, (shape, dtype) in expected_tensors(manifest).items()}


def parameterized_1_1() -> Manifest:
    """Format 1.1: the distill record holds the method's whole config under `settings`."""
    settings = {"N": 6, "U": 6, "V": 4, "scale": 2, "aug": "rotate", "approx.hidden": 2, "krr.pool.size": 2,
                "krr.pool.arch_kwargs": {"widths": [8, 16]}, "outer.steps": 10, "outer.lr": 1e-3}
    return parameterized().model_copy(update={
        "format_version": "1.1",
        "distill": DistillConfig(steps=10, lr=1e-3, seed=0, final_loss=0.5, settings=settings)})


def labelled_1_2() -> Manifest:
    """Format 1.2: a labelled, multi-formation raw artifact (DSDM/IDM): `raw.factor` = 2, no teacher."""
    report = class_budget(4, ImageShape(1, 8, 8), classes=2)
    return Manifest(
        format_version="1.2", method="dsdm", source=SOURCE,
        budget=BudgetInfo(images=4, floats_allowed=report.allowed, floats_used=report.used,
                          components=report.components, convention=report.convention),
        raw=RawImages(m=report.m, labels=True, factor=2),
        distill=DistillConfig(steps=10, lr=0.02, seed=0, final_loss=1.5,
                              settings={"N": 4, "classes": 2, "factor": 2, "outer.optimizer": "sgd"}),
        tool_version="0.1.0", created=CREATED,
    )


GOLDEN = {"v1-ssdd.ssdd": (parameterized, 0), "v1-raw.ssdd": (raw, 1), "v1.1-ssdd.ssdd": (parameterized_1_1, 2),
          "v1.2-labelled.ssdd": (labelled_1_2, 3)}

if __name__ == "__main__":
    for name, (make, seed) in GOLDEN.items():
        if not (HERE / name).exists():
            manifest = make()
            save_bundle(HERE / name, manifest, tensors_for(manifest, seed))
