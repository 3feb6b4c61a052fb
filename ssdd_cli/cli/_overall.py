"""One overall display for a job made of many steps (`ssdd compare`).

In a terminal: two bars on stderr, the whole job (steps done of all, the step at work, how many
were reused) and the step at work (its own stage, with its metrics), and each finished step's
line above them. Redirected to a file: the plain lines of every command (`_progress.Paced`):
every notice, a line per finished step, and a line every 5% or 30 s of a long stage.
"""

from __future__ import annotations

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

from ssdd_cli.cli._common import OUTPUT, err_console
from ssdd_cli.cli._progress import mirror, progress_callback
from ssdd_cli.cli._record import RunRecord
from ssdd_cli.progress import Callback, ProgressEvent


@contextmanager
def overall_progress(stage: str, record: RunRecord | None = None) -> Iterator[Callback]:
    """A callback for a job whose events of `stage` count its steps; other events are the step's.
    Off a terminal, with --log-format json or --quiet, it is `_progress.progress_callback`'s
    (plain or JSON lines at a steady pace, or nothing); every event also goes to `record`."""
    if OUTPUT.quiet or OUTPUT.log_format == "json" or not err_console.is_terminal:
        with progress_callback(record) as callback:
            yield callback
        return
    info = Column(ratio=1, no_wrap=True, overflow="ellipsis")  # the rest of the line, cut to fit
    columns = (TextColumn("[bold]{task.description:>12}"), BarColumn(bar_width=20), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
               TextColumn("{task.fields[info]}", table_column=info))
    with Progress(*columns, console=err_console, transient=False, expand=True) as bars:
        overall: TaskID = bars.add_task(stage, total=None, info="")
        current = bars.add_task("step", total=None, info="", visible=False)

        also = mirror()  # plain lines to a redirected stdout too

        def on_event(event: ProgressEvent) -> None:
            if record is not None:
                record.event(event)
            if also is not None:
                also(event)
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
