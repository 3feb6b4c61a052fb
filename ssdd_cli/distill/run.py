"""`distill` end to end: source → teacher → budget → init → pool → outer loop → Q_a → artifact."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import torch

from ssdd_cli.budget import ImageShape
from ssdd_cli.bundle import Manifest, save_bundle
from ssdd_cli.bundle.manifest import BudgetInfo, DistillConfig, SourceInfo, Teacher
from ssdd_cli.data import ImageSet, device_tensor, load_source
from ssdd_cli.distill.engine import OuterConfig, OuterLoop
from ssdd_cli.distill.methods import InitInputs, get_method
from ssdd_cli.distill.methods.base import MethodOptions
from ssdd_cli.distill.pool import ModelPool, PoolConfig
from ssdd_cli.distill.real import CACHED_VIEWS, RealSampler, check_real_aug
from ssdd_cli.errors import UsageError
from ssdd_cli.io import check_writable
from ssdd_cli.models import Backbone, extract_features
from ssdd_cli.progress import Callback, ProgressEvent, silent
from ssdd_cli.teacher.cache import get_or_train_teacher, teacher_features
from ssdd_cli.teacher.store import load_teacher


@dataclass(frozen=True)
class DistillRequest:
    source: str
    method: str
    options: MethodOptions
    outer: OuterConfig
    pool: PoolConfig
    real_aug: str
    batch_size: int
    seed: int
    output: Path
    device: torch.device
    data_root: Path | None = None
    teacher: Path | None = None
    resume: bool = False


@dataclass(frozen=True)
class DistillResult:
    path: Path
    manifest: Manifest
    losses: list[float]
    approx_mse: tuple[list[float], list[float]] | None
    seconds: float


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".ckpt")


def run_distill(req: DistillRequest, callback: Callback = silent) -> DistillResult:
    t0 = time.perf_counter()
    check_writable(req.output)
    check_real_aug(req.real_aug)
    data = load_source(req.source, data_root=req.data_root)
    method = get_method(req.method)
    teacher, meta, teacher_file = _teacher(req, data, callback)
    d_y = teacher.feature_dim
    options = replace(req.options, V=min(req.options.V, d_y)) if req.options.cap_bases else req.options
    report = method.plan(options, ImageShape(data.channels, data.resolution, data.resolution), d_y)
    if report.m > len(data.train):
        raise UsageError(f"the budget buys m = {report.m} distilled images but {data.name} has only "
                         f"{len(data.train)} training images; lower --budget or raise --U/--V.")
    images = device_tensor(data.train, data.mean, data.std, req.device)
    cached = {view: teacher_features(teacher, meta, images, view, device=req.device,
                                     teacher_file=teacher_file, split="train")
              for view in dict.fromkeys(("identity", *CACHED_VIEWS[req.real_aug]))}
    teacher_fn = partial(extract_features, teacher, device=req.device)

    generator = torch.Generator().manual_seed(req.seed)
    distilled = method.init(options, report, InitInputs(images, cached["identity"], teacher_fn, generator))
    distilled = distilled.to(req.device)
    losses: list[float] = []
    outer = req.outer if method.optimized else OuterConfig(steps=0)
    if method.optimized:
        pool = ModelPool(req.pool, data.channels, data.resolution, d_y, req.device, generator)
        real = RealSampler(images, req.real_aug, req.batch_size, cached, teacher_fn)
        loop = OuterLoop(distilled, method.augmentation(options), pool, real, outer, generator)
        losses = _optimize(loop, checkpoint_path(req.output), req, callback)

    tensors, fields = method.finish(distilled, options, generator)
    approx_mse = fields.pop("approx_mse", None)
    manifest = Manifest(
        method=req.method,
        source=_source_info(data),
        budget=BudgetInfo(images=options.N, floats_allowed=report.allowed, floats_used=report.used,
                          components=report.components, convention=report.convention),
        teacher=Teacher(arch=teacher.arch, feature_dim=d_y, sha256=meta["ssdd.sha256"]),
        distill=DistillConfig(steps=outer.steps, lr=outer.lr, seed=req.seed,
                              batch_size=min(req.batch_size, images.shape[0]), real_aug=req.real_aug,
                              pool_size=req.pool.size, pool_max_steps=req.pool.max_steps,
                              inner_arch=req.pool.arch, ridge=outer.ridge,
                              final_loss=losses[-1] if losses else None),
        **fields,
    )
    path = save_bundle(req.output, manifest, tensors)
    checkpoint_path(req.output).unlink(missing_ok=True)
    return DistillResult(path, manifest, losses, approx_mse, time.perf_counter() - t0)


def _teacher(req: DistillRequest, data: ImageSet, callback: Callback
             ) -> tuple[Backbone, dict[str, str], Path]:
    """The given teacher file, or the cached teacher of the source (trained first if absent)."""
    if req.teacher is not None:
        teacher, meta = load_teacher(req.teacher, map_location=req.device)
        path = req.teacher
    else:
        teacher, meta, path = get_or_train_teacher(req.source, data_root=req.data_root, device=req.device,
                                                   callback=callback)
    if (teacher.in_channels, teacher.image_size) != (data.channels, data.resolution):
        raise UsageError(
            f"the teacher {path} takes {teacher.in_channels}×{teacher.image_size}² images but "
            f"{data.name} is {data.channels}×{data.resolution}²; pass a teacher trained on this source."
        )
    return teacher, meta, path


def _optimize(loop: OuterLoop, ckpt: Path, req: DistillRequest, callback: Callback) -> list[float]:
    """Pool initialisation then the outer loop, resuming from `ckpt` when asked and possible."""
    if req.resume and ckpt.exists():
        loop.resume(ckpt)
        callback(ProgressEvent("distill", message=f"resuming from {ckpt} at step {loop.step}"))
    else:
        if req.resume:
            callback(ProgressEvent("distill", message=f"no checkpoint at {ckpt}: starting afresh"))
        with torch.no_grad():
            x_s, y_s = loop.support()
        loop.pool.initialize(x_s, y_s, callback)
        loop.save(ckpt, {"source": req.source})
    return loop.run(callback, ckpt, {"source": req.source})


def _source_info(data: ImageSet) -> SourceInfo:
    return SourceInfo(name=data.name, channels=data.channels, height=data.resolution, width=data.resolution,
                      mean=list(data.mean), std=list(data.std), classes=data.classes)
