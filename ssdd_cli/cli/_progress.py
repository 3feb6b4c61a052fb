"""Render library `ProgressEvent`s: bars on a terminal, plain lines off one, JSON for clusters.

- On a terminal: one rich bar per stage on stderr (step, metrics, elapsed, ETA); notices above.
- Off a terminal (redirected to a file, a pipe, CI): a plain line per stage at a steady pace,
  at its first event, every 5% of it or every 30 s, whichever comes first, and at its end:

      distill     45/300  15%  loss 0.2231  held-out 0.2418  3.1 it/s  elapsed 0:00:14  ETA 0:01:22

  written and flushed at once, so `ssdd distill ... > log 2>&1` shows the run while it runs.
- stdout redirected while stderr is a terminal (`ssdd distill ... > log`): the bars on the
  terminal and the plain lines, notices included, in the log (`_common.mirrors_to_stdout`).
- `--log-format json`: the same lines at the same pace as JSON objects, one per line.
- `--quiet`: nothing (errors and the result still print).

Every event also goes to the run record, unpaced: it keeps the whole loss history.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
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

from ssdd_cli.cli._common import OUTPUT, console, emit_json, err_console, mirrors_to_stdout, notice
from ssdd_cli.cli._record import RunRecord
from ssdd_cli.progress import Callback, ProgressEvent, silent

EVERY_PERCENT = 5  # a plain line at least every 5% of a stage ...
EVERY_SECONDS = 30.0  # ... or every 30 s, whichever comes first


@contextmanager
def progress_callback(record: RunRecord | None = None) -> Iterator[Callback]:
    """The callback of a long command (module docstring); every event also goes to `record`.
    Under torchrun only rank 0 shows progress."""
    from ssdd_cli.kit.distributed import is_main  # torch: only long commands, which load it anyway

    if not is_main():
        yield silent
        return
    if OUTPUT.quiet:
        show: Callback | None = None
    elif OUTPUT.log_format == "json" or not err_console.is_terminal:
        show = Paced(json=OUTPUT.log_format == "json")
    else:
        show = None
    if not OUTPUT.quiet and show is None:
        with _bars() as bars:
            yield _tee(bars, record, mirror())
        return
    yield _tee(show, record)


def mirror() -> Paced | None:
    """Plain lines on stdout beside the bars, when stdout is redirected (module docstring)."""
    return Paced(out=console) if mirrors_to_stdout() else None


def _tee(show: Callback | None, record: RunRecord | None, also: Callback | None = None) -> Callback:
    def on_event(event: ProgressEvent) -> None:
        if record is not None:
            record.event(event)
        if show is not None:
            show(event)
        if also is not None:
            also(event)

    return on_event


@contextmanager
def _bars() -> Iterator[Callback]:
    """One rich bar per stage on stderr; notices print above the bars."""
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
                bars.console.print(escape(event.message), highlight=False, soft_wrap=True)
            if event.total <= 0:
                return
            metrics = escape(format_metrics(event.metrics))
            if event.stage not in tasks:
                tasks[event.stage] = bars.add_task(event.stage, total=event.total, completed=event.step,
                                                   metrics=metrics)
            bars.update(tasks[event.stage], completed=event.step, total=event.total, metrics=metrics)

        yield on_event


@dataclass
class _Stage:
    t0: float
    step0: int
    last_time: float
    last_bucket: int


class Paced:
    """Plain (or JSON) progress lines at a steady pace, per stage (module docstring).

    out: the console of the lines and notices (None: stderr's, notices through `notice`).
    """

    def __init__(self, json: bool = False, out: Console | None = None) -> None:
        self.json = json
        self.out = out
        self.stages: dict[str, _Stage] = {}
        self.now = time.monotonic  # the clock (a test replaces it)

    def __call__(self, event: ProgressEvent) -> None:
        if event.message:
            if self.out is None:
                notice(event.message)
            else:
                self._print(event.message)
        if event.total <= 0:
            return
        now = self.now()
        state = self.stages.get(event.stage)
        bucket = event.step * 100 // (event.total * EVERY_PERCENT)  # integers: 3/20 is 15%, not 14.99
        if state is None or event.step < state.step0:  # a new stage, or the stage restarted
            state = self.stages[event.stage] = _Stage(now, max(0, event.step - 1), now, bucket)
            self._line(event, state, now)
            return
        done = event.step >= event.total
        if bucket > state.last_bucket or now - state.last_time >= EVERY_SECONDS or done:
            state.last_time, state.last_bucket = now, bucket
            self._line(event, state, now)
        if done:
            del self.stages[event.stage]

    def _line(self, event: ProgressEvent, state: _Stage, now: float) -> None:
        elapsed = now - state.t0
        rate = (event.step - state.step0) / elapsed if elapsed > 0 else None
        eta = (event.total - event.step) / rate if rate else None
        metrics = {k: v for k, v in event.metrics.items() if not k.endswith("/s")}
        if self.json:
            emit_json("progress", stage=event.stage, step=event.step, total=event.total, metrics=metrics,
                      label=event.label, rate=rate, elapsed=round(elapsed, 3),
                      eta=None if eta is None else round(eta, 1))
            return
        width = len(str(event.total))
        percent = 100 * event.step // event.total
        parts = [f"{event.stage:<10} {event.step:>{width}}/{event.total} {percent:>3}%"]
        if event.label:
            parts.append(event.label)
        if metrics:
            parts.append(format_metrics(metrics))
        if rate:
            parts.append(_rate(rate))
        parts.append(f"elapsed {_clock(elapsed)}")
        if eta is not None and event.step < event.total:
            parts.append(f"ETA {_clock(eta)}")
        self._print("  ".join(parts))

    def _print(self, text: str) -> None:
        out = self.out or err_console
        out.print(escape(text), highlight=False, soft_wrap=True)
        out.file.flush()  # a log shows the line now, not when a buffer fills


def format_metrics(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())


def _rate(rate: float) -> str:
    """Steps per second, or seconds per step below one a second: "3.1 it/s", "1,250 it/s", "4.2 s/it"."""
    if rate >= 100:
        return f"{rate:,.0f} it/s"
    return f"{rate:.3g} it/s" if rate >= 1 else f"{1 / rate:.3g} s/it"


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
