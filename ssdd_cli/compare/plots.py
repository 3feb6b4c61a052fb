"""A comparison's PNG plots (matplotlib, Agg, no pyplot state), under `{output}/plots/`.

- `bars-N{budget}-{target}-{protocol}-{metric}.png`: per protocol and metric, one group of bars
  per architecture, one bar per method and for the random-init reference, error bars = std over
  seeds, the teacher as a dashed line. The y axis is zoomed to the data (noted on the plot):
  differences of a point or two must be visible.
- `budget-{target}-{protocol}-{metric}.png` (two budgets or more): the metric against the budget,
  one panel per architecture, one line per method with error bars, references as horizontal lines.
- `held-out-N{budget}.png`: the held-out outer loss during distillation (`manifest.distill.held_out`),
  one colour per method and one line per seed; written when some artifact recorded it.
- `probe-N{budget}-{signal}.png`: the trained-network signal along the outer steps (`distill.probe`).
- `movement-N{budget}.png`: ‖X − X₀‖/‖X₀‖ of each method's images along the outer steps
  (`distill.movement`): whether the set moved at all.

matplotlib is imported inside the functions so that no other command loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssdd_cli.compare.plan import FULL, RANDOM_INIT, REFERENCES, TEACHER
from ssdd_cli.compare.runner import CompareRun
from ssdd_cli.compare.summary import LOWER_IS_BETTER, PERCENT, Summary, summarize
from ssdd_cli.distill.movement import IMAGES
from ssdd_cli.io import atomic_write
from ssdd_cli.teacher.cache import slug as _slug

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def write_plots(run: CompareRun) -> list[Path]:
    """Write every plot of the run (see the module docstring); returns the files written."""
    spec = run.plan.spec
    folder = run.output / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    summaries = summarize(run)
    rows = list(dict.fromkeys(s.row for s in summaries if s.row not in REFERENCES))
    written = []
    groups = dict.fromkeys((s.target, s.protocol, s.metric) for s in summaries)
    for target, protocol, metric in groups:
        cells = [s for s in summaries if (s.target, s.protocol, s.metric) == (target, protocol, metric)]
        for budget in spec.budgets:
            fig = bar_chart([s for s in cells if s.budget in (budget, None)], rows, list(spec.archs),
                            f"{spec.source} → {target}, N = {budget}: {protocol}", metric)
            name = f"bars-N{budget}-{slug(target)}-{slug(protocol)}-{metric}.png"
            written.append(_save(fig, folder / name))
        if len(spec.budgets) > 1:
            fig = budget_chart(cells, rows, list(spec.archs), list(spec.budgets),
                               f"{spec.source} → {target}: {protocol}", metric)
            written.append(_save(fig, folder / f"budget-{slug(target)}-{slug(protocol)}-{metric}.png"))
    for budget in spec.budgets:
        curves = held_out_curves(run, budget)
        if curves:
            fig = held_out_chart(curves, f"{spec.source}, N = {budget}: held-out loss during distillation")
            written.append(_save(fig, folder / f"held-out-N{budget}.png"))
        for signal, signal_curves in step_curves(run, budget, "probe").items():
            fig = probe_chart(signal_curves, signal, f"{spec.source}, N = {budget}: {signal} of a network "
                              "pretrained on the set during distillation")
            written.append(_save(fig, folder / f"probe-N{budget}-{slug(signal)}.png"))
        moved = step_curves(run, budget, "movement").get(IMAGES)
        if moved:
            fig = probe_chart(moved, "‖X − X₀‖ / ‖X₀‖ of the images", f"{spec.source}, N = {budget}: how far "
                              "each set moved from its initialisation", percent=False)
            written.append(_save(fig, folder / f"movement-N{budget}.png"))
    return written


def slug(text: str) -> str:
    """A file-name-safe form of a target or protocol label (`linear@5shot` → `linear-5shot`)."""
    return _slug(text.replace("@", "-"))


def held_out_curves(run: CompareRun, budget: int) -> dict[str, list[list[list[float]]]]:
    """Method entry → one [[step, loss], ...] curve per seed, for the artifacts of `budget`."""
    out: dict[str, list[list[list[float]]]] = {}
    for o in run.outcomes:
        if o.step.kind == "distill" and o.step.cell.budget == budget and o.usable and o.record is not None:
            curve = o.record.metrics.get("held_out") or []
            if curve:
                out.setdefault(o.step.cell.row, []).append(curve)
    return out


def step_curves(run: CompareRun, budget: int, record: str) -> dict[str, dict[str, list[list[list[float]]]]]:
    """Signal → method entry → one [[step, value], ...] curve per seed, from the distillations'
    `record` of (step, {signal: value}) points: "probe" (val-knn, val-cka) or "movement" (a
    tensor's ‖Δ‖/‖initial‖)."""
    out: dict[str, dict[str, list[list[list[float]]]]] = {}
    for o in run.outcomes:
        if o.step.kind == "distill" and o.step.cell.budget == budget and o.usable and o.record is not None:
            points = o.record.metrics.get(record) or []
            for signal in dict.fromkeys(k for _, d in points for k in d):
                curve = [[step, d[signal]] for step, d in points if signal in d]
                out.setdefault(signal, {}).setdefault(o.step.cell.row, []).append(curve)
    return out


def _scale(metric: str) -> float:
    return 100.0 if metric in PERCENT else 1.0


def _ylabel(metric: str) -> str:
    unit = " (%)" if metric in PERCENT else ""
    return f"{metric}{unit}" + (", lower is better" if metric in LOWER_IS_BETTER else "")


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=120, layout="constrained")


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def bar_chart(cells: Sequence[Summary], rows: list[str], archs: list[str], title: str, metric: str) -> Figure:
    """Grouped bars (architectures × methods, then random init), the teacher as a dashed line."""
    k = _scale(metric)
    by = {(s.row, s.arch): s for s in cells}
    bars = [r for r in [*rows, FULL, RANDOM_INIT] if any((r, a) in by for a in archs)]
    fig = _figure(max(5.0, 1.2 + 0.5 * len(archs) * max(1, len(bars))), 4.0)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(bars))
    colors = _colors(len(rows))
    seen: list[float] = []
    for j, row in enumerate(bars):
        xs, means, stds = [], [], []
        for i, arch in enumerate(archs):
            s = by.get((row, arch))
            if s is not None and s.values:
                xs.append(i - 0.4 + width * (j + 0.5))
                means.append(k * s.mean)
                stds.append(k * s.std)
        reference = row in REFERENCES
        ax.bar(xs, means, width * 0.92, yerr=stds, capsize=3, label=row,
               color=("0.45" if row == FULL else "0.75") if reference else colors[j],
               hatch="//" if reference else None,
               edgecolor="0.35" if reference else None)
        seen += [m + sign * e for m, e in zip(means, stds, strict=True) for sign in (-1, 1)]
    teacher = next((s for s in cells if s.row == TEACHER and s.values), None)
    if teacher is not None:
        ax.axhline(k * teacher.mean, color="black", linestyle="--", linewidth=1.2, label="teacher")
        seen += [k * teacher.mean]
    ax.set_xticks(range(len(archs)), archs)
    ax.set_ylabel(_ylabel(metric))
    ax.set_title(title)
    if seen:
        lo, hi = min(seen), max(seen)
        pad = max(0.15 * (hi - lo), 0.01 * max(abs(hi), 1e-9))
        floor = lo - pad if lo - pad > 0 or lo < 0 else 0.0
        ax.set_ylim(floor, hi + pad)
        ax.set_xlabel("pretrained architecture" + ("  (y axis zoomed: not from 0)" if floor > 0 else ""))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return fig


def budget_chart(cells: Sequence[Summary], rows: list[str], archs: list[str], budgets: list[int],
                 title: str, metric: str) -> Figure:
    """The metric against the budget, a panel per architecture, references as horizontal lines."""
    k = _scale(metric)
    fig = _figure(3.6 * len(archs) + 1.6, 3.6)
    axes: list[Axes] = list(fig.subplots(1, len(archs), sharey=True, squeeze=False)[0])
    colors = _colors(len(rows))
    for ax, arch in zip(axes, archs, strict=True):
        for j, row in enumerate(rows):
            points = sorted((s.budget, k * s.mean, k * s.std) for s in cells
                            if s.row == row and s.arch == arch and s.values and s.budget is not None)
            if points:
                b, m, e = zip(*points, strict=True)
                ax.errorbar(b, m, yerr=e, marker="o", capsize=3, color=colors[j], label=row)
        for row, style in ((RANDOM_INIT, ":"), (TEACHER, "--")):
            ref = next((s for s in cells if s.row == row and s.arch in (arch, None) and s.values), None)
            if ref is not None:
                ax.axhline(k * ref.mean, color="0.5" if row == RANDOM_INIT else "black", linestyle=style,
                           linewidth=1.2, label=row)
        ax.set_xscale("log")
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.minorticks_off()
        ax.set_xlabel("budget N (images)")
        ax.set_title(arch)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(_ylabel(metric))
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title)
    return fig


def held_out_chart(curves: dict[str, list[list[list[float]]]], title: str) -> Figure:
    """The held-out loss against the outer step: a colour per method entry, a line per seed.

    Each method's curve is its own objective (eq. 3 for SSDD and KRR-ST, the matching loss for
    the DM family), so levels compare only within one objective; the axis is logarithmic so
    curves orders of magnitude apart (a Gaussian initialisation, a fixed-network matching loss)
    all show their fall."""
    fig = _figure(6.5, 4.0)
    ax = fig.add_subplot()
    for color, (row, per_seed) in zip(_colors(len(curves)), curves.items(), strict=True):
        for i, curve in enumerate(per_seed):
            steps, losses = zip(*curve, strict=True)
            ax.plot(steps, losses, marker="." if len(curve) < 30 else None, color=color, alpha=0.85,
                    linewidth=1.3, label=row if i == 0 else None)
    ax.set_xlabel("outer step")
    ax.set_yscale("log")
    ax.set_ylabel("held-out loss (the method's own objective)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="a line per seed", title_fontsize=7)
    return fig


def probe_chart(curves: dict[str, list[list[list[float]]]], signal: str, title: str,
                percent: bool = True) -> Figure:
    """A signal along the outer steps (`distill.probe`'s, in percent, or the set's movement): a
    colour per method entry, a line per seed; the same measurement for every method, so levels
    compare."""
    k = 100 if percent else 1
    fig = _figure(6.5, 4.0)
    ax = fig.add_subplot()
    for color, (row, per_seed) in zip(_colors(len(curves)), curves.items(), strict=True):
        for i, curve in enumerate(per_seed):
            steps, values = zip(*curve, strict=True)
            ax.plot(steps, [k * v for v in values], marker=".", color=color, alpha=0.85, linewidth=1.3,
                    label=row if i == 0 else None)
    ax.set_xlabel("outer step")
    ax.set_ylabel(f"{signal} (%), validation images" if percent else signal)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="a line per seed", title_fontsize=7)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
