"""Run a comparison's plan: check it all first, then run or reuse every step, in order.

    plan = build_plan(spec_from_mapping({"source": "digits", "methods": ["ssdd", "random"]}))
    run = run_compare(plan, Path("results"), callback=print)
    write_results(run)   # compare.report
    write_plots(run)     # compare.plots

Before any work, every name, setting, budget and shape of the plan is checked (`check`), so a
mistake fails in one sentence rather than after an hour of training. Then each step is keyed by
its material (`compare.steps`) and reused from the store when a finished step has that key, or
run into its work folder and committed (`compare.store`) with its wall time and memory
(`kit.memory.PeakMemory`, evaluations included): the process's peak during the step, and what the
step added above the level it started at (the first counts what earlier steps left resident).

Progress: a `ProgressEvent("compare", done, total, label=step)` before and after each step (the
one after carries a one-line `message`: reused, ran, failed or skipped, and the step), with the
step's own events (teacher, distill, pretrain, eval stages) in between.

A comparison runs in one process, in float32 unless its `precision` says otherwise (so by
default its numbers do not depend on the hardware's bf16 units; the precision a training step
ran in is part of its key). Under torchrun it is refused before any work:
its store has one writer (`teacher`, `distill` and `pretrain` run under torchrun on their own).

Backbones (`spec.keep_backbones` false): once every step that consumes a backbone (its
evaluations) is done, its weights are deleted and its record kept (`StepStore.prune`), so the
store holds a comparison's results rather than a network per cell. A later run finds every
finished evaluation by its key as before (the record keeps the weights' hash); a step that needs
deleted weights (a protocol added since) has that backbone made again when it is reached, before
any of its evaluations is keyed, so all of them follow the new weights' hash, which equals the old
one where training is deterministic (the same machine and threads: every evaluation is reused but
the new ones) and differs elsewhere (every evaluation of it reruns).

A training that diverges (`DivergedError`) fails its step, not the comparison: the failure is
recorded (a rerun with the same settings would diverge again, so it is reused like a result),
the steps that depend on it are skipped, and the report shows their cells as missing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ssdd_cli.budget import ImageShape
from ssdd_cli.compare import steps as S
from ssdd_cli.compare.plan import KINDS, Plan, Step
from ssdd_cli.compare.store import StepRecord, StepStore, step_key
from ssdd_cli.data import source_preset
from ssdd_cli.device import hardware
from ssdd_cli.distill.methods import get_method
from ssdd_cli.errors import DataError, DivergedError, UsageError
from ssdd_cli.kit import distributed
from ssdd_cli.kit.memory import PeakMemory
from ssdd_cli.models import create_backbone
from ssdd_cli.progress import Callback, ProgressEvent, silent
from ssdd_cli.teacher import load_teacher
from ssdd_cli.train.pretrain import build_backbone
from ssdd_cli.train.protocols import get_protocol
from ssdd_cli.train.recipe import PretrainConfig

STAGE = "compare"
Material = Callable[[Step, Mapping[str, StepRecord], S.StepContext], dict[str, Any]]
Runner = Callable[[Step, Mapping[str, StepRecord], Path, S.StepContext], tuple[S.Outputs, dict[str, Any]]]
KIND: dict[str, tuple[Material, Runner]] = {
    "teacher": (S.teacher_material, S.run_teacher),
    "init": (S.init_material, S.run_init),
    "full": (S.full_material, S.run_full),
    "distill": (S.distill_material, S.run_distill_step),
    "pretrain": (S.pretrain_material, S.run_pretrain),
    "eval": (S.eval_material, S.run_eval),
}
assert set(KIND) == set(KINDS)
BACKBONES = ("init", "full", "pretrain")  # the kinds whose output, "backbone", only evaluations consume


@dataclass(frozen=True)
class Outcome:
    """A step's fate in this run: "ran", "reused", "failed" (recorded) or "skipped"."""

    step: Step
    status: str
    record: StepRecord | None = None

    @property
    def usable(self) -> bool:
        return self.status in ("ran", "reused")

    @property
    def error(self) -> str | None:
        return self.record.metrics.get("error") if self.record is not None else None


@dataclass(frozen=True)
class CompareRun:
    """The outcome of every step of a plan, and where they live."""

    plan: Plan
    outcomes: tuple[Outcome, ...]
    output: Path
    device: str
    seconds: float

    def outcome(self, step_id: str) -> Outcome:
        return next(o for o in self.outcomes if o.step.id == step_id)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def peak_memory(self) -> int | None:
        """The largest peak memory of the steps this run ran (bytes; None if it ran none or none
        was known): what the run needed, which `/usr/bin/time -v` cannot show (`kit.memory`)."""
        peaks = [o.record.peak_memory for o in self.outcomes
                 if o.status == "ran" and o.record is not None and o.record.peak_memory is not None]
        return max(peaks, default=None)

    @property
    def peak_memory_grown(self) -> int | None:
        """The most memory one step this run ran added above its starting level (bytes; None if
        none was known): `peak_memory` without what earlier steps left resident."""
        grown = [o.record.peak_memory_grown for o in self.outcomes
                 if o.status == "ran" and o.record is not None and o.record.peak_memory_grown is not None]
        return max(grown, default=None)


def run_compare(plan: Plan, output: Path, *, device: torch.device | str = "cpu",
                data_root: Path | None = None, callback: Callback = silent,
                download: bool = False) -> CompareRun:
    """Run or reuse every step of `plan` under the folder `output` (see the module docstring).
    download: fetch a missing source that can be fetched (CIFAR)."""
    if distributed.is_distributed():
        raise UsageError(f"ssdd compare runs in one process, not {distributed.world_size()}; run it "
                         "without torchrun (teacher, distill and pretrain each run under torchrun).")
    t0 = time.perf_counter()
    store = StepStore(output)
    store.check_writable()
    ctx = S.StepContext(plan.spec, torch.device(device), data_root, callback, download)
    check(plan, ctx)
    kinds = ", ".join(f"{plan.count(k)} {k}" for k in KINDS if plan.count(k))
    callback(ProgressEvent(STAGE, 0, len(plan), message=f"{len(plan)} steps ({kinds}) in {output}"))
    outcomes: dict[str, Outcome] = {}
    consumers = _consumers(plan)
    for i, step in enumerate(plan):
        callback(ProgressEvent(STAGE, i, len(plan), _counts(outcomes), label=step.description))
        started = time.perf_counter()
        outcome = _run_step(step, outcomes, store, ctx, consumers[step.id])
        outcomes[step.id] = outcome
        if not plan.spec.keep_backbones:
            _prune_evaluated(step, outcomes, consumers, store)
        took = ""
        if outcome.status in ("ran", "failed"):
            peak = outcome.record.peak_memory if outcome.record is not None else None
            grown = outcome.record.peak_memory_grown if outcome.record is not None else None
            memory = f", peak {peak / 1e9:.2f} GB" if peak else ""
            memory += f" (+{grown / 1e9:.2f} GB by the step)" if peak and grown is not None else ""
            took = f" ({time.perf_counter() - started:.1f} s{memory})"
        why = f": {outcome.error}" if outcome.error else ""
        callback(ProgressEvent(STAGE, i + 1, len(plan), _counts(outcomes),
                               message=f"{outcome.status:>7}  {step.description}{took}{why}",
                               label=step.description))
    return CompareRun(plan, tuple(outcomes.values()), Path(output), str(ctx.device), time.perf_counter() - t0)


def _counts(outcomes: Mapping[str, Outcome]) -> dict[str, float]:
    return {"reused": sum(o.status == "reused" for o in outcomes.values()),
            "ran": sum(o.status == "ran" for o in outcomes.values())}


def _consumers(plan: Plan) -> dict[str, list[Step]]:
    """Step id → the steps that take its output."""
    out: dict[str, list[Step]] = {step.id: [] for step in plan}
    for step in plan:
        for _, sid in step.inputs:
            out[sid].append(step)
    return out


def _prune_evaluated(step: Step, done: dict[str, Outcome], consumers: Mapping[str, list[Step]],
                     store: StepStore) -> None:
    """Delete the weights of each backbone `step` consumed once all its consumers are done."""
    for _, sid in step.inputs:
        o = done[sid]
        if (o.step.kind in BACKBONES and o.status in ("ran", "reused") and o.record is not None
                and o.record.output("backbone").is_file() and all(c.id in done for c in consumers[sid])):
            done[sid] = replace(o, record=store.prune(o.record, "backbone"))


def _inputs(step: Step, done: Mapping[str, Outcome]) -> dict[str, StepRecord | None]:
    """The records of the step's inputs in `done`, by role."""
    return {role: done[sid].record for role, sid in step.inputs}


def _key(step: Step, inputs: Mapping[str, StepRecord | None],
         ctx: S.StepContext) -> tuple[dict[str, Any], str]:
    """The step's material and key, from the records of its inputs."""
    material = KIND[step.kind][0](step, inputs, ctx)  # type: ignore[arg-type]
    return material, step_key(material)


def _needs_files(step: Step, record: StepRecord, done: Mapping[str, Outcome], consumers: Sequence[Step],
                 store: StepStore, ctx: S.StepContext) -> bool:
    """Whether a consumer of this found step will run and read an output it no longer has: the
    outputs were deleted (`StepStore.prune`) and a consumer whose other inputs are usable is not in
    the store under the key the recorded hashes give it."""
    if not record.missing:
        return False
    found = {**done, step.id: Outcome(step, "reused", record)}
    for c in consumers:
        if all(sid in found and found[sid].usable for _, sid in c.inputs):
            if store.lookup(c.kind, _key(c, _inputs(c, found), ctx)[1]) is None:
                return True
    return False


def _run_step(step: Step, done: Mapping[str, Outcome], store: StepStore, ctx: S.StepContext,
              consumers: Sequence[Step] = ()) -> Outcome:
    """Reuse `step` from the store, or run it. A found step whose deleted outputs one of its
    `consumers` needs is made again here, before any consumer is keyed, so all of them key on the new
    outputs' hashes; if that fails, the found record stays and the step counts as failed."""
    if not all(done[sid].usable for _, sid in step.inputs):
        return Outcome(step, "skipped")
    inputs = _inputs(step, done)
    material, key = _key(step, inputs, ctx)
    found = store.lookup(step.kind, key)
    if found is not None and not _needs_files(step, found, done, consumers, store, ctx):
        return Outcome(step, "failed" if "error" in found.metrics else "reused", found)
    if found is not None:
        ctx.callback(ProgressEvent(STAGE, message=f"making {step.description} again: its weights were "
                                                  "deleted (keep_backbones) and an evaluation needs them"))
    work = store.begin(step.kind, key)
    if step.kind != "eval":
        ctx.forget_probed()  # its features would count in this step's peak memory
    t0 = time.perf_counter()
    with PeakMemory(ctx.device) as memory:
        try:
            outputs, metrics = KIND[step.kind][1](step, inputs, work, ctx)  # type: ignore[arg-type]
        except DivergedError as e:
            outputs, metrics = {}, {"error": str(e)}
    seconds = time.perf_counter() - t0
    if found is not None and "error" in metrics:  # keep the found record (and its consumers' results)
        shutil.rmtree(work, ignore_errors=True)
        return Outcome(step, "failed", StepRecord(step.kind, key, material, metrics=metrics, seconds=seconds,
                                                  folder=work))
    record = store.commit(step.kind, key, material, outputs, metrics, seconds, memory.peak, memory.grown,
                          hardware(ctx.device))
    return Outcome(step, "failed" if "error" in metrics else "ran", record)


def check(plan: Plan, ctx: S.StepContext) -> None:
    """Refuse, before any work, anything the plan would trip over later: missing data, a teacher
    file that does not fit, a method option or budget that cannot work, an architecture that does
    not take the source's images, a target of another shape, a protocol setting or shot count
    that cannot be met."""
    spec = plan.spec
    ctx.precision  # noqa: B018  (refuses bf16 where the device has none, before any work)
    data = ctx.data(spec.source)
    shape = ImageShape(data.channels, data.resolution, data.resolution)
    given = spec.teacher.get("file")
    if given is not None:
        teacher = load_teacher(given)[0]
        if (teacher.in_channels, teacher.image_size) != (data.channels, data.resolution):
            raise UsageError(f"the teacher {given} takes {teacher.in_channels}×{teacher.image_size}² images "
                             f"but {spec.source} is {data.channels}×{data.resolution}²; use a teacher "
                             "trained on this source.", option="teacher")
        d_y = teacher.feature_dim
    else:
        config = S.teacher_config(ctx)
        d_y = create_backbone(config.arch, data.channels, data.resolution, **config.arch_kwargs).feature_dim
    for budget in spec.budgets:
        for entry in spec.methods:
            method_config = S.distill_config(ctx, entry, budget, d_y)
            S.in_entry(entry, get_method(entry.method).plan, method_config, shape, d_y)
    preset = source_preset(spec.source)
    for arch in spec.archs:
        pretrain = PretrainConfig.from_preset(preset, budget=spec.budgets[0], arch=arch, **spec.pretrain)
        options = {**pretrain.arch_kwargs, **spec.arch_options.get(arch, {})}
        build_backbone(replace(pretrain, arch_kwargs=options), in_channels=data.channels,
                       image_size=data.resolution, device=torch.device("cpu"))
    for target in spec.targets:
        _check_target(ctx, target, data.channels)
    on_sets = [p.name for p in spec.protocols if not p.on_backbone]
    if on_sets and data.train_labels is None:
        raise DataError(f"{spec.source} has no labels, so its artifacts have none for the {on_sets[0]} "
                        "protocol to train on; drop it.")


def _check_target(ctx: S.StepContext, target: str, channels: int) -> None:
    images = ctx.data(target, ctx.resolution)
    if images.channels != channels:
        raise UsageError(f"target {target} has {images.channels}-channel images but {ctx.spec.source} has "
                         f"{channels}; choose targets of the source's kind.", option="targets")
    for protocol in ctx.spec.protocols:
        S.protocol_config(ctx, protocol.name)
        needs_labels = get_protocol(protocol.name).needs_labels
        if needs_labels and (images.train_labels is None or images.test_labels is None):
            raise DataError(f"target {target} has no labels, so the {protocol.name} protocol cannot score "
                            "it; use the align protocol.")
        if protocol.shots is not None and images.train_labels is not None:
            fewest = int(images.train_labels.bincount().min())
            if protocol.shots > fewest:
                raise UsageError(f"{protocol.label} asks for {protocol.shots} images of every class but "
                                 f"the train split of {target} has {fewest} of its smallest class; choose "
                                 "fewer shots.", option="protocols")
