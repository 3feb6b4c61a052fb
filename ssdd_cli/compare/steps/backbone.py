"""The steps that make a backbone: a random initialisation (the lower reference), the full row
(every training image, `train.full`) and the pretraining on an artifact (`train.recorded`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ssdd_cli.bundle import load_bundle
from ssdd_cli.compare.plan import Step
from ssdd_cli.compare.spec import CompareSpec
from ssdd_cli.compare.steps.context import Outputs, StepContext
from ssdd_cli.compare.store import StepRecord
from ssdd_cli.data import source_preset
from ssdd_cli.distill.methods import get_method
from ssdd_cli.kit.checkpoint import flat_settings
from ssdd_cli.models import save_backbone
from ssdd_cli.progress import ProgressEvent
from ssdd_cli.teacher.targets import DEFAULT_TARGETS
from ssdd_cli.train.full import epoch_steps, full_config, pretrain_full
from ssdd_cli.train.pretrain import build_backbone
from ssdd_cli.train.recipe import PretrainConfig
from ssdd_cli.train.recorded import pretrain_bundle


def pretrain_config(ctx: StepContext, step: Step) -> PretrainConfig:
    """The recipe of an init, full or pretrain step, with the comparison's options for its arch."""
    config = _pretrain_config(ctx, step)
    options = ctx.spec.arch_options.get(config.arch, {})
    return replace(config, arch_kwargs={**config.arch_kwargs, **options}) if options else config


def _pretrain_config(ctx: StepContext, step: Step) -> PretrainConfig:
    cell = step.cell
    assert cell.arch is not None and cell.seed is not None
    preset = source_preset(ctx.spec.source)
    if step.kind == "init":  # the lower reference: what `ssdd eval random` builds
        return PretrainConfig.from_preset(preset, arch=cell.arch, seed=cell.seed)
    if step.kind == "full":
        return _full_config(ctx.spec, len(ctx.data(ctx.spec.source).source), cell.arch, cell.seed)
    # Labelled artifacts (the DM family) train under their own protocol, as `ssdd pretrain` does.
    labelled = cell.method is not None and get_method(cell.method).needs_labels
    return PretrainConfig.from_preset(preset, budget=cell.budget, arch=cell.arch, seed=cell.seed,
                                      labelled=labelled, **ctx.spec.pretrain)


def _full_config(spec: CompareSpec, images: int, arch: str, seed: int) -> PretrainConfig:
    """Every one of the source side's `images`, for the full row's own SGD steps
    (`spec.full_steps`, else the preset's): `[pretrain] epochs` is the artifacts' length, the rest
    of `[pretrain]` applies."""
    options = {k: v for k, v in spec.pretrain.items() if k != "epochs"}
    return full_config(source_preset(spec.source), images, arch=arch, seed=seed, steps=spec.full_steps,
                       **options)


@dataclass(frozen=True)
class FullLength:
    """How long the full row trains: `steps` SGD steps, `epochs` over the source's `images`
    images in minibatches of `batch_size` (the same for every architecture and seed)."""

    steps: int
    epochs: int
    images: int
    batch_size: int


def full_length(spec: CompareSpec, images: int) -> FullLength:
    """The full row's length on a source side of `images` images (no data is read)."""
    config = _full_config(spec, images, spec.archs[0], 0)
    steps = epoch_steps(images, config.batch_size) * config.epochs
    return FullLength(steps, config.epochs, images, config.batch_size)


def init_material(step: Step, inputs: Mapping[str, StepRecord], ctx: StepContext) -> dict[str, Any]:
    config = pretrain_config(ctx, step)
    data = ctx.data(ctx.spec.source)
    return {"kind": "init", "arch": config.arch, "arch_kwargs": config.arch_kwargs, "seed": config.seed,
            "shape": [data.channels, data.resolution]}


def run_init(step: Step, inputs: Mapping[str, StepRecord], work: Path,
             ctx: StepContext) -> tuple[Outputs, dict[str, Any]]:
    data = ctx.data(ctx.spec.source)
    net = build_backbone(pretrain_config(ctx, step), in_channels=data.channels, image_size=data.resolution,
                         device=ctx.device)
    save_backbone(work / "backbone.safetensors", net, {"ssdd.source": ctx.spec.source, "ssdd.init": "random"})
    return {"backbone": "backbone.safetensors"}, {}


def full_material(step: Step, inputs: Mapping[str, StepRecord], ctx: StepContext) -> dict[str, Any]:
    return {"kind": "full", "source": ctx.spec.source, "data": ctx.data_sha256(ctx.spec.source),
            "teacher": inputs["teacher"].sha256("teacher"), "target_scaling": DEFAULT_TARGETS,
            "config": flat_settings(pretrain_config(ctx, step)), "precision": ctx.precision.name}


def run_full(step: Step, inputs: Mapping[str, StepRecord], work: Path,
             ctx: StepContext) -> tuple[Outputs, dict[str, Any]]:
    out, ckpt = work / "backbone.safetensors", work / "backbone.safetensors.ckpt"
    full = pretrain_full(ctx.data(ctx.spec.source), inputs["teacher"].output("teacher"),
                         pretrain_config(ctx, step), device=ctx.device, callback=ctx.callback,
                         checkpoint_path=ckpt, resume=ckpt.exists(), precision=ctx.precision, output=out)
    ckpt.unlink(missing_ok=True)
    return {"backbone": out.name}, {"final_loss": full.final_loss, "images": full.images,
                                    "steps": full.drift.steps, "drift": full.drift.to_dict()}


def pretrain_material(step: Step, inputs: Mapping[str, StepRecord], ctx: StepContext) -> dict[str, Any]:
    return {"kind": "pretrain", "artifact": inputs["artifact"].sha256("artifact"),
            "config": flat_settings(pretrain_config(ctx, step)), "precision": ctx.precision.name}


def run_pretrain(step: Step, inputs: Mapping[str, StepRecord], work: Path,
                 ctx: StepContext) -> tuple[Outputs, dict[str, Any]]:
    artifact = inputs["artifact"]
    out, ckpt = work / "backbone.safetensors", work / "backbone.safetensors.ckpt"
    done = pretrain_bundle(load_bundle(artifact.output("artifact")), pretrain_config(ctx, step),
                           artifact_sha256=artifact.sha256("artifact"), device=ctx.device,
                           callback=ctx.callback, checkpoint_path=ckpt, resume=ckpt.exists(),
                           precision=ctx.precision, output=out)
    ckpt.unlink(missing_ok=True)
    warning = done.drift.warning()
    if warning:
        ctx.callback(ProgressEvent("pretrain", message=f"{step.description}: {warning}"))
    return {"backbone": out.name}, {"final_loss": done.final_loss, "images": done.images,
                                    "drift": done.drift.to_dict()}
