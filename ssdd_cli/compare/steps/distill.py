"""The distill step: one method entry at one budget and seed (`run_distill`), and the curves its
artifact records (held-out loss, trained-network probe)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssdd_cli.compare.plan import Step
from ssdd_cli.compare.spec import MethodEntry
from ssdd_cli.compare.steps.context import Outputs, StepContext, file_metadata, in_entry
from ssdd_cli.compare.store import StepRecord
from ssdd_cli.compare.typed import method_options
from ssdd_cli.data import source_preset
from ssdd_cli.distill.methods import get_method
from ssdd_cli.distill.probe import PROBE_VERSION
from ssdd_cli.distill.run import DistillRequest, checkpoint_path, run_distill
from ssdd_cli.kit.checkpoint import flat_settings


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
    settings = flat_settings(config)
    probe = {"probe": PROBE_VERSION} if settings.get("outer.probe_every", 0) else {}
    return {**probe, "kind": "distill", "source": ctx.spec.source, "data": ctx.data_sha256(ctx.spec.source),
            "teacher": teacher.sha256("teacher"), "method": step.cell.method, "budget": step.cell.budget,
            "seed": step.cell.seed, "config": settings,
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
        **distill_curves(out)}


def distill_curves(artifact: Path) -> dict[str, list[list[Any]]]:
    """What an artifact's manifest recorded along the outer steps, each [] when absent:
    "held_out" [[step, loss], ...] (`distill.held_out`), "probe" [[step, {signal: value}], ...]
    (`distill.probe`) and "movement" [[step, {tensor: ‖Δ‖/‖initial‖}], ...] (`distill.movement`).

    Read from the raw manifest JSON so any 1.x artifact works, whether or not this reader's
    manifest model knows the field (selection baselines have none).
    """
    doc = json.loads(file_metadata(artifact).get("ssdd.manifest", "{}"))
    distill = doc.get("distill") or {}
    return {"held_out": [[int(s), float(v)] for s, v in distill.get("held_out") or []],
            **{name: [[int(s), {k: float(v) for k, v in d.items()}] for s, d in distill.get(name) or []]
               for name in ("probe", "movement")}}


def held_out_curve(artifact: Path) -> list[list[Any]]:
    """`manifest.distill.held_out` of an artifact: [[step, loss], ...], or [] when absent."""
    return distill_curves(artifact)["held_out"]
