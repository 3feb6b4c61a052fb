"""One overall display for a job made of many steps (`ssdd compare`).

In a terminal: two bars on stderr, the whole job (steps done of all, the step at work, how many
were reused) and the step at work (its own stage, with its metrics), and each finished step's
line above them. Redirected to a file: plain lines only, each finished step's, every notice, and
a line per quarter of a long stage, so a log stays short and readable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column

from ssdd_cli.cli._common import err_console
from ssdd_cli.progress import Callback, ProgressEvent


@contextmanager
def overall_progress(stage: str) -> Iterator[Callback]:
    """A callback for a job whose events of `stage` count its steps; other events are the step's."""
    if not err_console.is_terminal:
        yield _lines(stage)
        return
    info = Column(ratio=1, no_wrap=True, overflow="ellipsis")  # the rest of the line, cut to fit
    columns = (TextColumn("[bold]{task.description:>12}"), BarColumn(bar_width=20), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
               TextColumn("{task.fields[info]}", table_column=info))
    with Progress(*columns, console=err_console, transient=False, expand=True) as bars:
        overall: TaskID = bars.add_task(stage, total=None, info="")
        current = bars.add_task("step", total=None, info="", visible=False)

        def on_event(event: ProgressEvent) -> None:
            if event.message:
                bars.console.print(escape(event.message), highlight=False, soft_wrap=True)
            if event.stage == stage:
                info = escape(event.label or "")
                counts = "  ".join(f"{k} {int(v)}" for k, v in event.metrics.items())
                bars.update(overall, completed=event.step, total=event.total,
                            info=f"[dim]{counts}[/]  {info}" if counts else info)
                bars.update(current, visible=False)
                bars.reset(current, total=None, description="step", info="", visible=False)
                return
            if event.total > 0:
                metrics = "  ".join(f"{k} {v:.4g}" for k, v in event.metrics.items())
                bars.update(current, description=event.stage[:12], completed=event.step, total=event.total,
                            info=escape(metrics), visible=True)

        yield on_event


def _lines(stage: str, quiet_for: float = 10.0) -> Callback:
    """Plain lines: messages, and for a stage running longer than `quiet_for` seconds a line at
    each quarter (a probe of a second stays silent; a distillation of minutes shows its loss)."""
    quarter: dict[str, int] = {}
    started: dict[str, float] = {}

    def on_event(event: ProgressEvent) -> None:
        if event.message:
            err_console.print(escape(event.message), highlight=False, soft_wrap=True)
        if event.stage == stage or event.total <= 0:
            return
        now = time.monotonic()
        if event.stage not in quarter:
            quarter[event.stage], started[event.stage] = 0, now
        q = 4 * event.step // event.total
        if q > quarter[event.stage] and event.step < event.total and now - started[event.stage] > quiet_for:
            metrics = "  ".join(f"{k} {v:.4g}" for k, v in event.metrics.items())
            err_console.print(escape(f"          {event.stage} {event.step}/{event.total}  {metrics}"),
                              highlight=False, soft_wrap=True)
        quarter[event.stage] = max(q, quarter[event.stage])
        if event.step >= event.total:
            del quarter[event.stage], started[event.stage]

    return on_event
