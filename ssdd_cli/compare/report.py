"""A comparison's numbers written out: `results.json` and `results.md` (the cells come from
`compare.summary`, the paired differences from `compare.differences`).

The Markdown follows the SSDD paper's Table 1: one table per budget, protocol and metric, the
target then the method as rows, the pretrained architectures as columns, mean ± std over the
seeds, the best method of each column in bold, and two reference lines below the methods: a
randomly initialised network of each architecture, and the teacher itself (one network, so the
same number in every column). References are never bolded: they are not candidates.

results.json lists every paired difference (`compare.differences`); results.md puts a table of
them below each metric's table when there is more than one seed.

Means equal at the printed precision are bolded alike. A cell with fewer values than seeds (a
step failed or was skipped) is marked †.
"""

from __future__ import annotations

import json
import platform
import sys
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy
import torch

from ssdd_cli import __version__
from ssdd_cli.compare.differences import difference_table, differences
from ssdd_cli.compare.plan import REFERENCES
from ssdd_cli.compare.runner import CompareRun
from ssdd_cli.compare.summary import LOWER_IS_BETTER, PERCENT, Summary, decimals, fmt, summarize
from ssdd_cli.device import hardware
from ssdd_cli.io import atomic_write_bytes

RESULTS_FORMAT = "ssdd-compare/1"
CLASSIFIER = "DC ConvNet"  # the column of the protocols that train their own network (classify)


def versions() -> dict[str, str]:
    """The versions a result depends on."""
    return {"ssdd": __version__, "torch": torch.__version__, "python": sys.version.split()[0],
            "numpy": numpy.__version__, "platform": platform.platform()}


def results_document(run: CompareRun) -> dict[str, Any]:
    """Everything of a run as JSON-ready data: spec, versions, summaries, artifacts, every step."""
    artifacts = []
    for o in run.outcomes:
        if o.step.kind == "distill" and o.record is not None:
            c, m = o.step.cell, o.record.metrics
            artifacts.append({"row": c.row, "method": c.method, "budget": c.budget, "seed": c.seed,
                              "status": o.status, **{k: m.get(k) for k in
                                                      ("m", "floats_used", "floats_allowed", "final_loss",
                                                       "held_out", "error")},
                              "seconds": o.record.seconds, "peak_memory": o.record.peak_memory,
                              "peak_memory_grown": o.record.peak_memory_grown})
    steps = [{"id": o.step.id, "kind": o.step.kind, "status": o.status,
              **({"folder": str(o.record.folder.relative_to(run.output)), **o.record.to_dict()}
                 if o.record is not None else {})} for o in run.outcomes]
    return {"format": RESULTS_FORMAT, "created": datetime.now(timezone.utc).isoformat(),
            "versions": versions(), "device": run.device, "hardware": hardware(run.device),
            "seconds": run.seconds,
            "peak_memory": run.peak_memory, "peak_memory_grown": run.peak_memory_grown,
            "spec": run.plan.spec.to_dict(),
            "counts": {s: run.count(s) for s in ("ran", "reused", "failed", "skipped")},
            "results": [s.to_dict() for s in summarize(run)],
            "differences": [d.to_dict() for d in differences(summarize(run))],
            "artifacts": artifacts, "steps": steps}


def cell_text(s: Summary | None) -> str:
    if s is None or not s.values:
        return "—"
    mark = "†" if len(s.values) < s.planned else ""
    places = decimals(s.mean, s.metric)
    return f"{fmt(s.mean, s.metric, places)} ± {fmt(s.std, s.metric, places)}{mark}"


def markdown_table(summaries: list[Summary], archs: list[str], metric: str) -> str:
    """Rows target/method × columns archs for one budget, protocol and metric; best in bold."""
    lower = metric in LOWER_IS_BETTER
    by_key = {(s.target, s.row, s.arch): s for s in summaries}
    targets = list(dict.fromkeys(s.target for s in summaries))
    rows = list(dict.fromkeys(s.row for s in summaries))
    best: dict[tuple[str, str], str] = {}
    for target in targets:
        for arch in archs:
            means = [fmt(s.mean, metric) for r in rows if r not in REFERENCES
                     for s in [by_key.get((target, r, arch))] if s is not None and s.values]
            if means:
                best[target, arch] = (min if lower else max)(means, key=float)
    lines = ["| target | method | " + " | ".join(archs) + " |", "|---|---|" + "---:|" * len(archs)]
    for target in targets:
        for i, row in enumerate(rows):
            cells = []
            for arch in archs:
                s = by_key.get((target, row, arch)) or by_key.get((target, row, None))
                text = cell_text(s)
                reference = row in REFERENCES
                shown = fmt(s.mean, metric) if s is not None and s.values else None
                if not reference and shown is not None and shown == best.get((target, arch)):
                    text = f"**{text}**"
                cells.append(text)
            name = f"*{row}*" if row in REFERENCES else row
            lines.append(f"| {target if i == 0 else ''} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ran_on(run: CompareRun, here: str) -> str:
    """"; the store's steps ran on A (n steps), B (m steps)" when the records of this run's steps
    name other hardware than `here` (a comparison resumed or extended on another machine), or
    none (records written before they named it); else "". Skipped steps have no record."""
    counts = Counter(o.record.hardware or "unrecorded hardware" for o in run.outcomes if o.record is not None)
    if set(counts) <= {here}:
        return ""
    return "; the store's steps ran on " + ", ".join(f"{name} ({n} steps)"
                                                      for name, n in counts.most_common())


def results_markdown(run: CompareRun) -> str:
    spec = run.plan.spec
    summaries = summarize(run)
    diffs = differences(summaries)
    archs = list(spec.archs)
    here = hardware(run.device)
    out = [f"# ssdd compare: {spec.source}", "",
           f"Methods pretrained on each artifact, evaluated on the {spec.split} split of each target; mean "
           f"± std over {spec.seeds} seed(s) (population std). Best method per column in **bold**; *full* "
           "(every training image with its target), *random init* and *teacher* are reference lines; "
           "every backbone is probed with BatchNorm statistics recomputed on the target's training "
           "images." + (" Classify trains fresh DC ConvNets on a labelled artifact's images and labels."
                        if not all(p.on_backbone for p in spec.protocols) else "")
           + " Accuracy and CKA in percent.", "",
           f"ssdd {__version__}, torch {torch.__version__}, device {run.device} ({here})"
           + _ran_on(run, here) + "; "
           f"{run.count('ran')} steps ran, {run.count('reused')} reused"
           + (f", {run.count('failed')} failed, {run.count('skipped')} skipped"
              if run.count("failed") else "")
           + (f"; peak memory {run.peak_memory / 1e9:.2f} GB (its largest step's)" if run.peak_memory else "")
           + (f", at most {run.peak_memory_grown / 1e9:.2f} GB added by one step"
              if run.peak_memory and run.peak_memory_grown is not None else "")
           + ". Every number and setting: results.json.", ""]
    for budget in spec.budgets:
        for protocol in spec.protocols:
            group = [s for s in summaries if s.protocol == protocol.label and s.budget in (budget, None)]
            columns = archs
            if not protocol.on_backbone:  # classify: one network, DC's ConvNet
                columns, group = [CLASSIFIER], [replace(s, arch=CLASSIFIER) for s in group]
            for metric in dict.fromkeys(s.metric for s in group):
                cells = [s for s in group if s.metric == metric]
                direction = " (lower is better)" if metric in LOWER_IS_BETTER else ""
                unit = " (%)" if metric in PERCENT else ""
                out += [f"## N = {budget}: {protocol.label}, {metric}{unit}{direction}", "",
                        markdown_table(cells, columns, metric), ""]
                column = [d for d in diffs if d.budget == budget and d.protocol == protocol.label
                          and d.metric == metric]
                if column and protocol.on_backbone and spec.seeds > 1:
                    out += [f"Paired over seeds, mean and 95% interval{' (points)' if unit else ''}; "
                            "* where the interval excludes 0:", "", difference_table(column, columns), ""]
    if any(len(s.values) < s.planned for s in summaries):
        out += ["† fewer values than seeds: a step failed or was skipped (see results.json).", ""]
    failed = [f"- failed: {o.step.description}: {o.error}" for o in run.outcomes if o.status == "failed"]
    out += [*failed, ""] if failed else []
    return "\n".join([*out, *settings_lines(run)]).rstrip() + "\n"


def settings_lines(run: CompareRun) -> list[str]:
    """The comparison's settings in brief (the full configs of every step are in results.json)."""
    spec = run.plan.spec

    def given(options: Any, default: str = "the preset's") -> str:
        return ", ".join(f"{k} = {v}" for k, v in dict(options).items()) or default

    lines = ["## Settings", "",
             f"- source {spec.source}, budgets {', '.join(map(str, spec.budgets))}, "
             f"seeds 0–{spec.seeds - 1}, targets {', '.join(spec.targets)}"]
    lines += [f"- method {e.name}: {e.method}, {given(e.options)}" for e in spec.methods]
    lines += [f"- teacher: {given(spec.teacher)}", f"- pretrain: {given(spec.pretrain)}"]
    lines += [f"- eval {p.label}: {given(spec.eval.get(p.name, {}), 'its defaults')}" for p in spec.protocols]
    return lines


def write_results(run: CompareRun) -> tuple[Path, Path]:
    """Write `results.json` and `results.md` into the run's folder (atomically)."""
    doc = results_document(run)
    json_path = atomic_write_bytes(run.output / "results.json",
                                   (json.dumps(doc, indent=2, default=str) + "\n").encode())
    md_path = atomic_write_bytes(run.output / "results.md", results_markdown(run).encode())
    return json_path, md_path
