"""A `CompareRun` built by hand, with the numbers a test chooses, for report and plot tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ssdd_cli.compare import Cell, CompareRun, Outcome, Plan, StepRecord, build_plan, spec_from_mapping


def fake_run(raw: dict[str, Any], value: Callable[[Cell], dict[str, float] | None], output: Path,
             held_out: Callable[[Cell], list[list[float]]] | None = None) -> CompareRun:
    """Every step of the plan of `raw` "ran"; an eval's metrics are `value(cell)` (None: it failed)."""
    plan: Plan = build_plan(spec_from_mapping(raw))
    outcomes = []
    for step in plan:
        metrics: dict[str, Any] = {}
        status = "ran"
        if step.kind == "eval":
            got = value(step.cell)
            metrics = dict(got) if got is not None else {"error": "diverged"}
            status = "ran" if got is not None else "failed"
        if step.kind == "distill" and held_out is not None:
            metrics["held_out"] = held_out(step.cell)
        record = StepRecord(step.kind, step.id, {}, {}, metrics, 0.0, folder=output / "steps" / step.id)
        outcomes.append(Outcome(step, status, record))
    return CompareRun(plan, tuple(outcomes), output, "cpu", 0.0)
