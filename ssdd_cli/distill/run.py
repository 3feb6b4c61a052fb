"""`distill` end to end: source → teacher → config → budget → init → outer loop → export → artifact."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ssdd_cli.bundle import Manifest, save_bundle
from ssdd_cli.bundle.manifest import BudgetInfo, DistillConfig, SourceInfo, Teacher
from ssdd_cli.data import ImageSet, device_tensor, load_source, source_preset
from ssdd_cli.distill.approx import ApproxFit
from ssdd_cli.distill.distillation import Distillation
from ssdd_cli.distill.inputs import DistillInputs, TeacherTargets
from ssdd_cli.distill.methods import get_method
from ssdd_cli.io import check_writable
from ssdd_cli.kit.checkpoint import Checkpointer, flat_settings, tensor_sha256
from ssdd_cli.kit.distributed import is_main
from ssdd_cli.kit.precision import FP32, Precision
from ssdd_cli.progress import Callback, silent
from ssdd_cli.teacher.provide import resolve_teacher


@dataclass(frozen=True)
class DistillRequest:
    """One distillation: what to distill, with which method, and where to write it.

    budget: N in images (None: the source preset's default budget). options: the method's
    settings by option name (`Method.options`, e.g. {"steps": 300, "pool_size": 4}); a value of
    None means the preset's. teacher: a teacher file (None: the source's cached teacher).
    precision: of the network passes (`kit.precision`); like the device, an execution choice
    that a resumed run may change (it is recorded in the manifest's settings).
    Under torchrun every rank runs this with the same request; rank 0 writes the artifact.
    """

    source: str
    output: Path
    method: str = "ssdd"
    budget: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    data_root: Path | None = None
    teacher: Path | None = None
    resume: bool = False
    precision: Precision = FP32


@dataclass(frozen=True)
class DistillResult:
    path: Path
    manifest: Manifest
    losses: list[float]
    approx_fit: ApproxFit | None
    seconds: float


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".ckpt")


def run_distill(req: DistillRequest, callback: Callback = silent) -> DistillResult:
    t0 = time.perf_counter()
    check_writable(req.output)
    method = get_method(req.method)
    preset = source_preset(req.source)
    N = preset.budgets.default if req.budget is None else req.budget
    data = load_source(req.source, data_root=req.data_root)
    backbone, meta, teacher_file = resolve_teacher(req.teacher, req.source, data, data_root=req.data_root,
                                                   device=req.device, callback=callback)
    config = method.configure(preset, N, backbone.feature_dim, **req.options)
    images = device_tensor(data.train, data.mean, data.std, req.device)
    teacher = TeacherTargets.from_backbone(backbone, meta, images, req.device, teacher_file, req.precision)
    inputs = DistillInputs(images, teacher, torch.Generator().manual_seed(req.seed), data.train_labels,
                           held_out=device_tensor(data.val, data.mean, data.std, req.device),
                           mean=data.mean, std=data.std, precision=req.precision)
    run = Distillation.create(method, config, inputs)
    checkpoint = Checkpointer(
        checkpoint_path(req.output), "distill",
        {"source": req.source, "method": method.name, "seed": req.seed, "teacher": teacher.sha256,
         **flat_settings(config), "data": tensor_sha256(images)},
        options={path: option for option, path in method.options.items()})
    if run.loop is not None:
        run.loop.start(checkpoint, req.resume, callback)
        run.loop.run(callback, checkpoint)

    export = run.finalize(callback)
    outer = run.loop.config if run.loop is not None else None
    losses = run.losses
    manifest = Manifest(
        method=method.name,
        source=source_info(data),
        budget=BudgetInfo(images=N, floats_allowed=run.plan.allowed, floats_used=run.plan.used,
                          components=run.plan.components, convention=run.plan.convention),
        parameterization=export.parameterization, raw=export.raw,
        augmentations=export.augmentations, approx=export.approx,
        teacher=Teacher(arch=backbone.arch, feature_dim=teacher.d_y, sha256=teacher.sha256),
        distill=DistillConfig(steps=outer.steps if outer else 0, lr=outer.lr if outer else None,
                              seed=req.seed, final_loss=losses[-1] if losses else None,
                              settings={**flat_settings(config), "precision": req.precision.name},
                              held_out=run.loop.held_out if run.loop is not None else []),
    )
    path = req.output
    if is_main():  # every rank holds the same artifact
        path = save_bundle(req.output, manifest, export.tensors)
        checkpoint.remove()
    return DistillResult(path, manifest, losses, export.approx_fit, time.perf_counter() - t0)


def source_info(data: ImageSet) -> SourceInfo:
    return SourceInfo(name=data.name, channels=data.channels, height=data.resolution, width=data.resolution,
                      mean=list(data.mean), std=list(data.std), classes=data.classes)
