"""Render library `ProgressEvent`s as rich progress bars (step, metrics, rate, ETA)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ssdd_cli.cli._common import err_console
from ssdd_cli.kit.distributed import is_main
from ssdd_cli.progress import Callback, ProgressEvent, silent


@contextmanager
def progress_callback() -> Iterator[Callback]:
    """Yield a callback that draws one bar per stage on stderr; notices print above the bars.
    Under torchrun only rank 0 draws."""
    if not is_main():
        yield silent
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[metrics]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as bars:
        tasks: dict[str, TaskID] = {}

        def on_event(event: ProgressEvent) -> None:
            if event.message:
                bars.console.print(event.message, highlight=False)
            if event.total <= 0:
                return
            metrics = "  ".join(f"{k} {_fmt(v)}" for k, v in event.metrics.items())
            if event.stage not in tasks:
                tasks[event.stage] = bars.add_task(
                    event.stage, total=event.total, completed=event.step, metrics=metrics
                )
            bars.update(tasks[event.stage], completed=event.step, total=event.total, metrics=metrics)

        yield on_event


def _fmt(value: float) -> str:
    return f"{value:.4g}"
