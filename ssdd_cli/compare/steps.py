"""Each kind of step: the settings it is keyed by (`material`) and how it runs (`run`).

Every step calls the library (teacher trainer, `run_distill`, `pretrain`, `evaluate`), never a
subprocess. A long step checkpoints inside its work folder and resumes from it when the work
folder survives an interruption. A step's material holds its full resolved config (the method's
config dataclass after its preset, `PretrainConfig`, the protocol's config, `TeacherConfig`)
and the sha256 of every file it consumes; the source's data enters as a hash of its tensors.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ssdd_cli.artifact import materialize
from ssdd_cli.bundle import load_bundle
from ssdd_cli.compare.plan import Step
from ssdd_cli.compare.spec import CompareSpec, MethodEntry
from ssdd_cli.compare.store import StepRecord
from ssdd_cli.compare.typed import config_of, method_options
from ssdd_cli.data import ImageSet, load_source, source_preset
from ssdd_cli.distill.methods import get_method
from ssdd_cli.distill.run import DistillRequest, checkpoint_path, run_distill
from ssdd_cli.errors import SSDDError
from ssdd_cli.io import atomic_write_bytes, sha256_file
from ssdd_cli.kit.checkpoint import flat_settings, tensor_sha256
from ssdd_cli.kit.precision import Precision, resolve_precision
from ssdd_cli.models import Backbone, load_backbone, save_backbone
from ssdd_cli.progress import Callback, ProgressEvent, silent
from ssdd_cli.teacher import TeacherConfig, load_teacher, save_teacher, train_teacher
from ssdd_cli.teacher.targets import DEFAULT_TARGETS
from ssdd_cli.train.batchnorm import DEFAULT_BATCHNORM
from ssdd_cli.train.classify import classify
from ssdd_cli.train.diagnostics import sgd_steps
from ssdd_cli.train.evaluate import Probed, evaluate, prepare
from ssdd_cli.train.full import full_config, pretrain_full
from ssdd_cli.train.pretrain import build_backbone, pretrain
from ssdd_cli.train.protocols import get_protocol
from ssdd_cli.train.provenance import pretrain_drift, pretrain_metadata
from ssdd_cli.train.recipe import PretrainConfig

Outputs = dict[str, str]  # output name → file name in the step's folder


@dataclass
class StepContext:
    """What steps share within one comparison: the spec, the device, and loaded data.
    download: fetch a missing source that can be fetched (CIFAR), as `load_source` does."""

    spec: CompareSpec
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    data_root: Path | None = None
    callback: Callback = silent
    download: bool = False
    _data: dict[tuple[str, int], ImageSet] = field(default_factory=dict, repr=False)
    # The last backbone prepared for probing, keyed by (backbone, target): the plan runs a
    # backbone's evaluations one after the other, so they share its BatchNorm recalibration and
    # features. One at a time: a flat ConvNet's features of 70,000 images take 650 MB.
    _probed: tuple[tuple[str, str], Probed] | None = field(default=None, repr=False)
    _hashes: dict[tuple[str, int], str] = field(default_factory=dict, repr=False)

    def forget_probed(self) -> None:
        """Let the last prepared backbone and its features go (before a step of another kind)."""
        self._probed = None

    def data(self, spec: str, resolution: int | None = None) -> ImageSet:
        """A source loaded once (at `resolution`, default its preset's)."""
        key = (spec, resolution or source_preset(spec).resolution)
        if key not in self._data:
            self._data[key] = load_source(spec, data_root=self.data_root, resolution=key[1],
                                          download=self.download)
        return self._data[key]

    def data_sha256(self, spec: str, resolution: int | None = None) -> str:
        """A hash of every split and label of a loaded source (its content, not its name)."""
        key = (spec, resolution or source_preset(spec).resolution)
        if key not in self._hashes:
            d = self.data(*key)
            labels = [t for t in (d.train_labels, d.val_labels, d.test_labels) if t is not None]
            self._hashes[key] = tensor_sha256(d.train, d.val, d.test, *labels)
        return self._hashes[key]

    def target(self, name: str) -> ImageSet:
        """A target as the probes see it: its test split scored, or its val split (spec.split)."""
        data = self.data(name, self.resolution)
        return data.validation() if self.spec.split == "val" else data

    @property
    def precision(self) -> Precision:
        """The training passes' precision, resolved on this device (spec.precision)."""
        return resolve_precision(self.spec.precision, self.device,
                                 say=lambda m: self.callback(ProgressEvent("fastpath", message=m)))

    @property
    def resolution(self) -> int:
        """The side of the source's images: every backbone of the comparison takes it."""
        return self.data(self.spec.source).resolution


def in_entry(entry: MethodEntry, build: Any, *args: Any) -> Any:
    """`build(*args)`, with a user error reworded to name the method entry it concerns."""
    try:
        return build(*args)
    except SSDDError as e:
        raise type(e)(f"method entry {entry.name!r}: {e}", option=e.option) from None


# --- teacher ---------------------------------------------------------------------------------

def teacher_config(ctx: StepContext) -> TeacherConfig:
    opts = {k: v for k, v in ctx.spec.teacher.items() if k not in ("file", "seed")}
    return TeacherConfig.from_preset(source_preset(ctx.spec.source).teacher,
                                     seed=int(ctx.spec.teacher.get("seed", 0)), **opts)


def teacher_material(step: Step, inputs: Mapping[str, StepRecord], ctx: StepContext) -> dict[str, Any]:
    given = ctx.spec.teacher.get("file")
    if given is not None:
        return {"kind": "teacher", "file": sha256_file(given)}
    # "images": the teacher trains on train + val (`ImageSet.source`), as `ssdd teacher` and
    # distill's cached teacher do; records of the older train-only teacher lack it and rerun.
    return {"kind": "teacher", "source": ctx.spec.source, "data": ctx.data_sha256(ctx.spec.source),
            "images": "source", "config": flat_settings(teacher_config(ctx)), "precision": ctx.precision.name}


def run_teacher(step: Step, inputs: Mapping[str, StepRecord], work: Path,
                ctx: StepContext) -> tuple[Outputs, dict[str, Any]]:
    out = work / "teacher.safetensors"
    given = ctx.spec.teacher.get("file")
    if given is not None:
        load_teacher(given)  # refuses a file that is not a teacher, naming why
        shutil.copyfile(given, out)
        return {"teacher": out.name}, {"given": str(given)}
    data, config = ctx.data(ctx.spec.source), teacher_config(ctx)
    ckpt = work / "teacher.safetensors.ckpt"
    result = train_teacher(data.source, data.mean, data.std, config, device=ctx.device, callback=ctx.callback,
                           checkpoint_path=ckpt, resume=ckpt.exists(), precision=ctx.precision)
    save_teacher(out, result, source=ctx.spec.source, mean=data.mean, std=data.std)
    ckpt.unlink(missing_ok=True)
    return {"teacher": out.name}, {"losses": result.losses, "final_loss": result.final_loss}


def file_metadata(path: Path) -> dict[str, str]:
    """The string metadata of a safetensors file (its header only)."""
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


# --- distill ---------------------------------------------------------------------------------

def distill_config(ctx: StepContext, entry: MethodEntry, budget: int, d_y: int) -> Any:
    """The method's full config for this entry and budget (its preset's values where unset)."""
    method = get_method(entry.method)
    preset = source_preset(ctx.spec.source)
    defaults = in_entry(entry, method.defaults, preset, budget, d_y)
    options = method_options(method, defaults, entry.options, entry.name)
    return in_entry(entry, lambda: method.configure(preset, budget, d_y, **options))


def entry_of(ctx: StepContext, step: Step) -> MethodEntry:
    return next(e for e in ctx.spec.methods if e.name == step.cell.row)


def distill_material(step: Step, inputs: Mapping[str, StepRecord], ctx: StepContext) -> dict[str, Any]:
    teacher = inputs["teacher"]
    d_y = int(file_metadata(teacher.output("teacher"))["ssdd.feature_dim"])
    assert step.cell.budget is not None
    entry = entry_of(ctx, step)
    config = distill_config(ctx, entry, step.cell.budget, d_y)
    return {"kind": "distill", "source": ctx.spec.source, "data": ctx.data_sha256(ctx.spec.source),
            "teacher": teacher.sha256("teacher"), "method": step.cell.method, "budget": step.cell.budget,
            "seed": step.cell.seed, "config": flat_settings(config),
            "target_scaling": entry.target_scaling if get_method(entry.method).needs_teacher else None,
            "precision": ctx.precision.name if get_method(entry.method).uses_precision else "fp32"}


def run_distill_step(step: Step, inputs: Mapping[str, StepRecord], work: Path,
                     ctx: StepContext) -> tuple[Outputs, dict[str, Any]]:
    out = work / "artifact.ssdd"
    entry, cell = entry_of(ctx, step), step.cell
    assert cell.method is not None and cell.seed is not None
    request = DistillRequest(source=ctx.spec.source, output=out, method=cell.method, budget=cell.budget,
                             options=dict(entry.options), seed=cell.seed, device=ctx.device,
                             data_root=ctx.data_root, teacher=inputs["teacher"].output("teacher"),
                             resume=checkpoint_path(out).exists(), download=ctx.download,
                             target_scaling=entry.target_scaling, precision=ctx.precision)
    result = in_entry(entry, run_distill, request, ctx.callback)
    man = result.manifest
    return {"artifact": out.name}, {
        "m": man.m, "floats_used": man.budget.floats_used, "floats_allowed": man.budget.floats_allowed,
        "losses": result.losses, "final_loss": result.losses[-1] if result.losses else None,
        "held_out": held_out_curve(out), "probe": probe_curve(out)}


def probe_curve(artifact: Path) -> list[list[Any]]:
    """`manifest.distill.probe` of an artifact: [[step, {signal: value}], ...] ([] when absent)."""
    doc = json.loads(file_metadata(artifact).get("ssdd.manifest", "{}"))
    points = (doc.get("distill") or {}).get("probe") or []
    return [[int(s), {k: float(v) for k, v in d.items()}] for s, d in points]


def held_out_curve(artifact: Path) -> list[list[float]]:
    """`manifest.distill.held_out` of an artifact: [[step, loss], ...], or [] when absent.

    Read from the raw manifest JSON so any 1.x artifact works, whether or not this reader's
    manifest model knows the field (selection baselines have none).
    """
    doc = json.loads(file_metadata(artifact).get("ssdd.manifest", "{}"))
    pairs = (doc.get("distill") or {}).get("held_out") or []
    return [[int(s), float(v)] for s, v in pairs]


# --- random init and pretrain ----------------------------------------------------------------

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
        return _full_config(ctx, cell.arch, cell.seed)
    # Labelled artifacts (the DM family) train under their own protocol, as `ssdd pretrain` does.
    labelled = cell.method is not None and get_method(cell.method).needs_labels
    return PretrainConfig.from_preset(preset, budget=cell.budget, arch=cell.arch, seed=cell.seed,
                                      labelled=labelled, **ctx.spec.pretrain)


def _full_config(ctx: StepContext, arch: str, seed: int) -> PretrainConfig:
    """Every training image, for the full row's own SGD steps (`spec.full_steps`, else the
    preset's): `[pretrain] epochs` is the artifacts' length, the rest of `[pretrain]` applies."""
    options = {k: v for k, v in ctx.spec.pretrain.items() if k != "epochs"}
    return full_config(source_preset(ctx.spec.source), len(ctx.data(ctx.spec.source).source), arch=arch,
                       seed=seed, steps=ctx.spec.full_steps, **options)


@dataclass(frozen=True)
class FullLength:
    """How long the full row trains: `steps` SGD steps, `epochs` over the source's `images`
    images in minibatches of `batch_size` (the same for every architecture and seed)."""

    steps: int
    epochs: int
    images: int
    batch_size: int


def full_length(ctx: StepContext) -> FullLength:
    """The full row's length on the comparison's source (reads the source)."""
    config = _full_config(ctx, ctx.spec.archs[0], 0)
    images = len(ctx.data(ctx.spec.source).source)
    steps = sgd_steps(images, config.batch_size, config.epochs)
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
                         checkpoint_path=ckpt, resume=ckpt.exists(), precision=ctx.precision)
    save_backbone(out, full.backbone, full.metadata)
    ckpt.unlink(missing_ok=True)
    return {"backbone": out.name}, {"final_loss": full.final_loss, "images": full.images,
                                    "steps": full.drift.steps, "drift": full.drift.to_dict()}


def pretrain_material(step: Step, inputs: Mapping[str, StepRecord], ctx: StepContext) -> dict[str, Any]:
    return {"kind": "pretrain", "artifact": inputs["artifact"].sha256("artifact"),
            "config": flat_settings(pretrain_config(ctx, step)), "precision": ctx.precision.name}


def run_pretrain(step: Step, inputs: Mapping[str, StepRecord], work: Path,
                 ctx: StepContext) -> tuple[Outputs, dict[str, Any]]:
    artifact = inputs["artifact"]
    bundle = load_bundle(artifact.output("artifact"))
    src = bundle.manifest.source
    data = materialize(bundle, ctx.device)
    config = pretrain_config(ctx, step)
    out, ckpt = work / "backbone.safetensors", work / "backbone.safetensors.ckpt"
    net, loss = pretrain(data.images, data.targets, data.labels, config, in_channels=src.channels,
                         image_size=src.height, device=ctx.device, callback=ctx.callback,
                         checkpoint_path=ckpt, resume=ckpt.exists(), num_classes=src.classes,
                         precision=ctx.precision)
    drift = pretrain_drift(net, config, images=len(data.images))
    meta = pretrain_metadata(config, final_loss=loss, source=src.name, mean=src.mean, std=src.std,
                             artifact_sha256=artifact.sha256("artifact"), method=bundle.manifest.method,
                             images=len(data.images), drift=drift)
    save_backbone(out, net, meta)
    ckpt.unlink(missing_ok=True)
    warning = drift.warning()
    if warning:
        ctx.callback(ProgressEvent("pretrain", message=f"{step.description}: {warning}"))
    return {"backbone": out.name}, {"final_loss": loss, "images": len(data.images), "drift": drift.to_dict()}


# --- eval ------------------------------------------------------------------------------------

def protocol_config(ctx: StepContext, name: str) -> Any:
    """The protocol's config with the comparison's options for it, each typed by its field."""
    return config_of(get_protocol(name).config, ctx.spec.eval.get(name, {}), f"the {name} protocol", "eval")


def eval_material(step: Step, inputs: Mapping[str, StepRecord], ctx: StepContext) -> dict[str, Any]:
    cell = step.cell
    assert cell.protocol is not None and cell.target is not None
    if "artifact" in inputs:  # a protocol that trains on the artifact's labels (classify)
        return {"kind": "eval", "artifact": inputs["artifact"].sha256("artifact"), "target": cell.target,
                "data": ctx.data_sha256(cell.target, ctx.resolution), "protocol": cell.protocol.name,
                "seed": cell.seed, "config": flat_settings(protocol_config(ctx, cell.protocol.name)),
                "split": ctx.spec.split, "precision": ctx.precision.name}
    material = {"kind": "eval", "backbone": inputs["backbone"].sha256(_backbone_output(inputs)),
                "target": cell.target, "data": ctx.data_sha256(cell.target, ctx.resolution),
                "protocol": cell.protocol.name, "shots": cell.protocol.shots, "seed": cell.seed,
                "config": flat_settings(protocol_config(ctx, cell.protocol.name)),
                "batchnorm": DEFAULT_BATCHNORM, "split": ctx.spec.split}
    if "teacher" in inputs:
        material["teacher"] = inputs["teacher"].sha256("teacher")
    return material


def _backbone_output(inputs: Mapping[str, StepRecord]) -> str:
    return "teacher" if inputs["backbone"].kind == "teacher" else "backbone"


def probed(ctx: StepContext, inputs: Mapping[str, StepRecord], target: str) -> Probed:
    """The step's backbone ready to probe `target` (with the comparison's teacher when the step
    takes one): the one prepared for the previous evaluation when it is the same backbone (by
    content) on the same target, else prepared anew."""
    source = inputs["backbone"]
    key = (source.sha256(_backbone_output(inputs)), target)
    if ctx._probed is None or ctx._probed[0] != key:
        ctx.forget_probed()  # the previous backbone's features go before the next are computed
        net: Backbone
        if source.kind == "teacher":
            net = load_teacher(source.output("teacher"), map_location=ctx.device)[0]
        else:
            net = load_backbone(source.output("backbone"), map_location=ctx.device)[0]
        ready = prepare(net, ctx.target(target), device=ctx.device)
        if source.kind == "teacher":
            ready.teacher = ready.backbone
        ctx._probed = (key, ready)
    ready = ctx._probed[1]
    if "teacher" in inputs and ready.teacher is None:
        teacher = load_teacher(inputs["teacher"].output("teacher"), map_location=ctx.device)[0]
        ready.teacher = prepare(teacher, ready.target, device=ctx.device).backbone
    return ready


def run_eval(step: Step, inputs: Mapping[str, StepRecord], work: Path,
             ctx: StepContext) -> tuple[Outputs, dict[str, Any]]:
    cell = step.cell
    assert cell.protocol is not None and cell.target is not None and cell.seed is not None
    config = protocol_config(ctx, cell.protocol.name)
    if "artifact" in inputs:  # classify: fresh networks trained on the artifact's labels
        path = inputs["artifact"].output("artifact")
        data = materialize(load_bundle(path), ctx.device)
        report = classify(data.images, data.labels, ctx.target(cell.target), what=f"artifact {path}",
                          mean=data.mean, std=data.std, config=config, first_seed=cell.seed,
                          device=ctx.device, precision=ctx.precision, callback=ctx.callback)
    else:
        ready = probed(ctx, inputs, cell.target)
        report = evaluate(ready, ready.target, cell.protocol.name, seeds=1, first_seed=cell.seed,
                          shots=cell.protocol.shots, device=ctx.device, callback=ctx.callback, config=config)
    doc = report.to_dict()
    atomic_write_bytes(work / "result.json", (json.dumps(doc, indent=2) + "\n").encode())
    return {"result": "result.json"}, {m.name: m.values[0] for m in report.metrics}
