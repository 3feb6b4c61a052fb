"""The eval step: a backbone probed with one protocol on one target (sharing the previous
evaluation's BatchNorm recalibration and features when it is the same backbone), or a labelled
artifact classified (fresh networks trained on its images and labels)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssdd_cli.artifact import materialize
from ssdd_cli.bundle import load_bundle
from ssdd_cli.compare.plan import Step
from ssdd_cli.compare.steps.context import Outputs, StepContext
from ssdd_cli.compare.store import StepRecord
from ssdd_cli.compare.typed import config_of
from ssdd_cli.io import atomic_write_bytes
from ssdd_cli.kit.checkpoint import flat_settings
from ssdd_cli.models import Backbone, load_backbone
from ssdd_cli.teacher import load_teacher
from ssdd_cli.train.batchnorm import DEFAULT_BATCHNORM, RECALIBRATION_VERSION
from ssdd_cli.train.classify import classify
from ssdd_cli.train.evaluate import Probed, evaluate, prepare
from ssdd_cli.train.protocols import get_protocol


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
                "draws": draws(ctx, step), **({"fraction": f} if (f := cell.protocol.fraction) else {}),
                "config": flat_settings(protocol_config(ctx, cell.protocol.name)),
                "batchnorm": DEFAULT_BATCHNORM, "recalibration": RECALIBRATION_VERSION,
                "split": ctx.spec.split}
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
        n = draws(ctx, step)
        report = evaluate(ready, ready.target, cell.protocol.name, seeds=n, first_seed=cell.seed * n,
                          shots=cell.protocol.shots, fraction=cell.protocol.fraction, device=ctx.device,
                          callback=ctx.callback, config=config)
    doc = report.to_dict()
    atomic_write_bytes(work / "result.json", (json.dumps(doc, indent=2) + "\n").encode())
    return {"result": "result.json"}, {m.name: m.mean for m in report.metrics}


def draws(ctx: StepContext, step: Step) -> int:
    """The labelled draws a step's probe averages: `spec.draws` for a few-shot or limited-label
    protocol, else 1 (a full-label probe's seed changes only its own initialisation)."""
    assert step.cell.protocol is not None
    return ctx.spec.draws if step.cell.protocol.draws_labels else 1
