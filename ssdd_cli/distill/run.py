"""`distill` end to end: source → teacher → config → budget → init → outer loop → export → artifact.

Methods without a teacher (`Method.needs_teacher` False: the DM family) neither train nor load
one, and their artifact records no teacher; methods that need labels refuse an unlabelled source.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ssdd_cli.budget import ImageShape
from ssdd_cli.bundle import Manifest, save_bundle
from ssdd_cli.bundle.manifest import BudgetInfo, DistillConfig, SourceInfo, Teacher
from ssdd_cli.data import ImageSet, device_tensor, load_source, source_preset
from ssdd_cli.distill.approx import ApproxFit
from ssdd_cli.distill.distillation import Distillation
from ssdd_cli.distill.inputs import DistillInputs, TeacherTargets
from ssdd_cli.distill.methods import get_method
from ssdd_cli.errors import UsageError
from ssdd_cli.io import check_writable
from ssdd_cli.kit.checkpoint import Checkpointer, flat_settings, tensor_sha256
from ssdd_cli.kit.distributed import is_main
from ssdd_cli.kit.precision import FP32, Precision
from ssdd_cli.presets import Preset
from ssdd_cli.progress import Callback, ProgressEvent, silent
from ssdd_cli.teacher.provide import resolve_teacher
from ssdd_cli.teacher.targets import DEFAULT_TARGETS, TARGET_SCALINGS


@dataclass(frozen=True)
class DistillRequest:
    """One distillation: what to distill, with which method, and where to write it.

    budget: N in images (None: the preset's default budget). options: the method's
    settings by option name (`Method.options`, e.g. {"steps": 300, "pool_size": 4}); a value of
    None means the preset's. teacher: a teacher file (None: the source's cached teacher).
    preset: the preset's name (None: the source's own); it sets the resolution and the defaults.
    download: fetch a missing source that can be fetched (CIFAR), as `load_source` does.
    precision: of the network passes (`kit.precision`); like the device, an execution choice
    that a resumed run may change (it is recorded in the manifest's settings). Methods that do
    not use it (`Method.uses_precision` False: the DM family) run, and record, fp32.
    target_scaling: how the teacher's features are scaled as targets, "standardized" (the default) or
    "raw" (the papers' code); see `teacher.targets`. Recorded in the manifest's teacher, with
    the statistics; ignored by methods without a teacher.
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
    preset: str | None = None
    download: bool = False
    precision: Precision = FP32
    target_scaling: str = DEFAULT_TARGETS


@dataclass(frozen=True)
class DistillResult:
    path: Path
    manifest: Manifest
    losses: list[float]
    approx_fit: ApproxFit | None
    seconds: float


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".ckpt")


@dataclass(frozen=True)
class PreparedDistill:
    """A distillation set up as `run_distill` runs it, before its outer loop: the run (its
    method, config and inputs: the source images, the teacher's targets, the passes' precision),
    and what else its checkpoint and manifest name (the source, the preset, N, the teacher's
    manifest record)."""

    run: Distillation
    data: ImageSet
    preset: Preset
    N: int
    record: Teacher | None


def prepare_distill(req: DistillRequest, callback: Callback = silent) -> PreparedDistill:
    """Everything of `run_distill` before the outer loop: the source, the teacher (trained first
    when the source's cached one is absent), the method's config, checked against the budget
    before any work, and the distillation built on the train split (val held out)."""
    method = get_method(req.method)
    if req.target_scaling not in TARGET_SCALINGS:
        raise UsageError(f"unknown target scaling {req.target_scaling!r}; choose one of: "
                         f"{', '.join(TARGET_SCALINGS)}.", option="target_scaling")
    # The preset carries the loaded source's classes (a user's image folder need not have the
    # preset's), which the per-class methods budget by.
    base = source_preset(req.source, req.preset)
    data = load_source(req.source, data_root=req.data_root, resolution=base.resolution, download=req.download)
    preset = replace(base, classes=data.classes)
    N = preset.budgets.default if req.budget is None else req.budget
    if method.needs_labels and data.source_labels is None:
        raise UsageError(f"{method.name} distills class by class, but source {data.name} has no labels; "
                         "use a labelled source or a self-supervised method.", option="method")
    shape = ImageShape(data.channels, data.resolution, data.resolution)

    def check_plan(d_y: int) -> None:
        """The options and the budget, refused before any work (no teacher trained, no features
        computed or cached, no checkpoint written)."""
        method.plan(method.configure(preset, N, d_y, **req.options), shape, d_y)

    # A cached teacher (trained first if absent) is the preset's, whose feature width the preset
    # declares; a given teacher file is loaded first (a moment) and checked with its own.
    if not method.needs_teacher:
        check_plan(0)
    elif req.teacher is None:
        check_plan(preset.teacher.feature_dim)
    # The source side is the train split: val is held out of every step that makes the artifact
    # (`ImageSet.source`), so the held-out signal and the probe score images distillation never read.
    images = device_tensor(data.source, data.mean, data.std, req.device)
    precision = req.precision if method.uses_precision else FP32
    teacher: TeacherTargets | None = None
    record: Teacher | None = None
    if method.needs_teacher:
        backbone, meta, teacher_file = resolve_teacher(req.teacher, req.source, data, data_root=req.data_root,
                                                       device=req.device, callback=callback,
                                                       preset=preset.name, download=req.download)
        if req.teacher is not None:
            check_plan(backbone.feature_dim)
        teacher = TeacherTargets.from_backbone(backbone, meta, images, req.device, teacher_file,
                                               precision).scaled(req.target_scaling)
        record = teacher_record(backbone.arch, teacher)
    config = method.configure(preset, N, teacher.d_y if teacher else 0, **req.options)
    labels = data.source_labels.to(req.device) if data.source_labels is not None else None
    val_labels = data.val_labels.to(req.device) if data.val_labels is not None else None
    inputs = DistillInputs(images, teacher, torch.Generator().manual_seed(req.seed), labels,
                           held_out=device_tensor(data.val, data.mean, data.std, req.device),
                           held_out_labels=val_labels, mean=data.mean, std=data.std,
                           precision=precision)
    run = Distillation.create(method, config, inputs, callback)
    if run.plan.shortfall:
        callback(ProgressEvent("distill", message=f"note: {run.plan.shortfall}"))
    return PreparedDistill(run, data, preset, N, record)


def run_distill(req: DistillRequest, callback: Callback = silent) -> DistillResult:
    t0 = time.perf_counter()
    check_writable(req.output)
    ready = prepare_distill(req, callback)
    run, data, preset, N, record = ready.run, ready.data, ready.preset, ready.N, ready.record
    method, config, teacher, precision = run.method, run.config, run.inputs.teacher, run.inputs.precision
    checkpoint = Checkpointer(
        checkpoint_path(req.output), "distill",
        {"source": req.source, "preset": preset.name, "method": method.name, "seed": req.seed,
         "teacher": teacher.sha256 if teacher else None,
         "target_scaling": req.target_scaling if teacher else None,
         **flat_settings(config), "data": tensor_sha256(run.inputs.images)},
        options={path: option for option, path in method.options.items()})
    if run.loop is not None:
        run.loop.start(checkpoint, req.resume, callback)
        run.loop.run(callback, checkpoint)

    export = run.finalize(callback)
    outer = run.loop.config if run.loop is not None else None
    losses = run.losses
    manifest = Manifest(
        method=method.name,
        source=source_info(data, preset.name),
        budget=BudgetInfo(images=N, floats_allowed=run.plan.allowed, floats_used=run.plan.used,
                          components=run.plan.components, convention=run.plan.convention),
        parameterization=export.parameterization, raw=export.raw,
        augmentations=export.augmentations, approx=export.approx,
        teacher=record,
        distill=DistillConfig(steps=outer.steps if outer else 0, lr=outer.lr if outer else None,
                              seed=req.seed, final_loss=losses[-1] if losses else None,
                              settings={**flat_settings(config), "precision": precision.name},
                              held_out=run.loop.held_out if run.loop is not None else [],
                              probe=run.probes,
                              movement=run.loop.movement if run.loop is not None else []),
    )
    path = req.output
    if is_main():  # every rank holds the same artifact
        path = save_bundle(req.output, manifest, export.tensors)
        checkpoint.remove()
    return DistillResult(path, manifest, losses, export.approx_fit, time.perf_counter() - t0)


def teacher_record(arch: str, teacher: TeacherTargets) -> Teacher:
    """The manifest's teacher: which network, and how its features were scaled as targets."""
    scaling = teacher.scaling
    if scaling is None:
        return Teacher(arch=arch, feature_dim=teacher.d_y, sha256=teacher.sha256, targets="raw")
    return Teacher(arch=arch, feature_dim=teacher.d_y, sha256=teacher.sha256, targets="standardized",
                   target_mean=scaling.mean.tolist(), target_std=scaling.std.tolist())


def source_info(data: ImageSet, preset: str | None = None) -> SourceInfo:
    return SourceInfo(name=data.name, channels=data.channels, height=data.resolution, width=data.resolution,
                      mean=list(data.mean), std=list(data.std), classes=data.classes, preset=preset)
