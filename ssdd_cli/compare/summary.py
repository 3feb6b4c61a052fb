"""A comparison's cells: every evaluation's values grouped by row, budget, arch, target,
protocol and metric (`summarize`), and how their numbers print.

Choices: std is the population std (ddof = 0), as `evaluate` reports and the papers' "mean ±
std over three runs"; accuracy and CKA print in percent, other metrics as they are; `mse` is
the one metric where lower is better.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from ssdd_cli.compare.plan import REFERENCES, TEACHER
from ssdd_cli.compare.runner import CompareRun

PERCENT = {"accuracy", "cka"}
LOWER_IS_BETTER = {"mse"}


@dataclass(frozen=True)
class Summary:
    """One cell: a row (method entry or reference) on one arch (None: the teacher, any column),
    budget (None: a reference line), target, protocol label and metric, over its seeds."""

    row: str
    budget: int | None
    arch: str | None
    target: str
    protocol: str
    metric: str
    seeds: tuple[int, ...]
    values: tuple[float, ...]
    planned: int

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else float("nan")

    @property
    def std(self) -> float:
        return statistics.pstdev(self.values) if self.values else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean": self.mean, "std": self.std}


def summarize(run: CompareRun) -> list[Summary]:
    """Every eval's values grouped by cell: methods first (plan order), then the references."""
    cells: dict[tuple[Any, ...], dict[str, dict[int, float]]] = {}
    names: dict[str, list[str]] = {}  # protocol label → its metrics, in the order reported
    for outcome in run.outcomes:
        c = outcome.step.cell
        if outcome.step.kind != "eval" or c.protocol is None or c.target is None or c.seed is None:
            continue
        cell = cells.setdefault((c.row, c.budget, c.arch, c.target, c.protocol.label), {})
        if outcome.usable and outcome.record is not None:
            for name, value in outcome.record.metrics.items():
                known = names.setdefault(c.protocol.label, [])
                known.extend([name] if name not in known else [])
                cell.setdefault(name, {})[c.seed] = float(value)
    out = [Summary(row, budget, arch, target, label, name, tuple(sorted(seeds)),
                   tuple(seeds[s] for s in sorted(seeds)), run.plan.spec.seeds)
           for (row, budget, arch, target, label), cell in cells.items()
           for name in names.get(label, []) for seeds in [cell.get(name, {})]]
    return sorted(out, key=lambda s: (s.row in REFERENCES, s.row == TEACHER))


def decimals(value: float, metric: str) -> int:
    """Decimals to print a metric's values with: 2 for percentages, else 3 significant digits of
    the mean (at most 6), so a mean and its std share one precision."""
    if metric in PERCENT:
        return 2
    if not math.isfinite(value) or value == 0:
        return 4
    return min(6, max(0, 2 - math.floor(math.log10(abs(value)))))


def fmt(value: float, metric: str, places: int | None = None) -> str:
    if value != value:  # NaN
        return "—"
    places = decimals(value, metric) if places is None else places
    return f"{(100 if metric in PERCENT else 1) * value:.{places}f}"
