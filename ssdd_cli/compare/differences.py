"""Paired differences between the rows of a comparison, seed by seed, with their 95% interval.

Two rows that share a seed share their initial set and their networks' initialisation, so each
row is compared with its baselines seed by seed, with the paired t interval (`kit.stats`); a
difference is real when its interval excludes 0, not when it exceeds one std. The baselines of a
method row are the `random` entry (random real images, when the comparison has one) and the
*random init* line; the *full* row is compared with every method row (how far below the whole
data it stays); and for an entry `base@variant` the entry `base` is compared with it (`ssdd` −
`ssdd@init`: what the outer steps add).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ssdd_cli.compare.plan import FULL, RANDOM_INIT, REFERENCES, TEACHER
from ssdd_cli.compare.summary import PERCENT, Summary, decimals
from ssdd_cli.kit.stats import PairedDifference, paired_by_seed

RANDOM = "random"  # the entry of random real images, the first baseline of every method row


@dataclass(frozen=True)
class Difference:
    """`row` − `baseline` in one column (budget, arch, target, protocol label, metric), paired by
    seed over the seeds both have."""

    row: str
    baseline: str
    budget: int | None
    arch: str | None
    target: str
    protocol: str
    metric: str
    seeds: tuple[int, ...]
    paired: PairedDifference

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "paired"} | self.paired.to_dict()


def pairs(rows: list[str]) -> list[tuple[str, str]]:
    """(row, baseline) for every method row among `rows`: against `random`, *random init* and
    *full* (how far below the whole data), and `base` − `base@variant` (module docstring)."""
    methods = [r for r in rows if r not in REFERENCES]
    out = [(r, b) for r in methods for b in (RANDOM, RANDOM_INIT) if r != b and b in rows]
    out += [(FULL, r) for r in methods if FULL in rows]
    out += [(r.split("@")[0], r) for r in methods if "@" in r and r.split("@")[0] in methods]
    return out


def differences(summaries: list[Summary]) -> list[Difference]:
    """Every pair of `pairs` in every column where both rows have values on shared seeds."""
    by_column: dict[tuple[Any, ...], dict[str, Summary]] = {}
    for s in summaries:
        if s.row == TEACHER:
            continue
        by_column.setdefault((s.arch, s.target, s.protocol, s.metric), {})[s.row] = s
    budgets = sorted({s.budget for s in summaries if s.budget is not None})
    out = []
    for (arch, target, protocol, metric), rows in by_column.items():
        for budget in budgets:
            present = {r: s for r, s in rows.items() if s.budget in (budget, None)}
            for row, baseline in pairs(list(present)):
                a, b = (dict(zip(present[r].seeds, present[r].values, strict=True)) for r in (row, baseline))
                paired = paired_by_seed(a, b)
                if paired is not None:
                    shared = tuple(sorted(a.keys() & b.keys()))
                    out.append(Difference(row, baseline, budget, arch, target, protocol, metric, shared,
                                          paired))
    return out


def difference_text(d: Difference) -> str:
    """"+1.23 [+0.41, +2.05]*" (percent points for accuracy and CKA; * when the interval excludes 0)."""
    places = decimals(d.paired.mean, d.metric) if d.metric not in PERCENT else 2
    scale = 100 if d.metric in PERCENT else 1
    low, high = (f"{scale * v:+.{places}f}" if math.isfinite(v) else ("−∞" if v < 0 else "+∞")
                 for v in (d.paired.low, d.paired.high))
    return f"{scale * d.paired.mean:+.{places}f} [{low}, {high}]" + ("*" if d.paired.excludes_zero else "")


def difference_table(diffs: list[Difference], archs: list[str]) -> str:
    """Rows target / `row − baseline` × columns archs, for one budget, protocol and metric."""
    by_key = {(d.target, d.row, d.baseline, d.arch): d for d in diffs}
    names = list(dict.fromkeys((d.target, d.row, d.baseline) for d in diffs))
    lines = ["| target | paired difference | " + " | ".join(archs) + " |", "|---|---|" + "---:|" * len(archs)]
    for i, (target, row, baseline) in enumerate(names):
        found = [by_key.get((target, row, baseline, arch)) for arch in archs]
        cells = [difference_text(d) if d is not None else "—" for d in found]
        first = i == 0 or names[i - 1][0] != target
        lines.append(f"| {target if first else ''} | {row} − {baseline} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
