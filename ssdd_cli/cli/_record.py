"""The run record: `OUTPUT.run.jsonl` beside every output of a long command.

One JSON object per line, written as the run goes (so it is also the run's log file):

    {"record": "start", "command": "distill", "argv": [...], "options": {...}, "device": "cpu",
     "hardware": "AMD EPYC 9R14 96-Core Processor", "seed": 0,
     "versions": {"ssdd": ..., "torch": ..., "python": ..., "platform": ...}, "started": "2025-...Z"}
    {"record": "progress", "stage": "distill", "step": 12, "total": 300,
     "metrics": {"loss": 0.41, "held-out": 0.52}, "elapsed": 3.2}     (every event: the loss history)
    {"record": "notice", "message": "..."}
    {"record": "end", "status": "ok", "seconds": 71.4, "config": {...resolved...}, ...}

`options` are the command's options as given (None: the preset's value); the end line's `config`
is what the run resolved them to (the preset's values filled in), where the command knows it.
`status` is "ok", "error" (with the message) or "interrupted". A resumed run appends its own
lines to the record of the run it continues; a fresh run starts a new record.

The file is created at the first event of the work (or at the end of a run without events), so
an invocation refused before any work leaves nothing behind. It is a log appended line by line
(flushed each time), not an output: the atomic-write rule of outputs does not apply to it.
Under torchrun only rank 0 writes it (`kit.distributed.is_main`; the other ranks' records are
no-ops), as only rank 0 writes the outputs and shows progress.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from ssdd_cli import __version__
from ssdd_cli.errors import SSDDError
from ssdd_cli.progress import ProgressEvent

SUFFIX = ".run.jsonl"


def record_path(output: Path) -> Path:
    """Where the record of a run writing `output` goes: beside it, `OUTPUT.run.jsonl`."""
    return output.with_name(output.name + SUFFIX)


def versions() -> dict[str, str]:
    """ssdd, torch (if loaded or importable), Python and the platform."""
    try:
        import torch

        torch_version = str(torch.__version__)
    except ImportError:  # pragma: no cover - torch is a dependency
        torch_version = "absent"
    return {"ssdd": __version__, "torch": torch_version, "python": platform.python_version(),
            "platform": platform.platform()}


class RunRecord:
    """The record of one run (module docstring). `append`: continue an existing record (a
    resumed run) instead of starting a new one."""

    def __init__(self, output: Path, command: str, options: dict[str, Any], *, device: str | None = None,
                 seed: int | None = None, append: bool = False) -> None:
        from ssdd_cli.device import hardware  # torch: only long commands, which load it anyway
        from ssdd_cli.kit.distributed import is_main

        self.path = record_path(output)
        self.append = append
        self.t0 = time.perf_counter()
        self._file: IO[str] | None = None
        self._closed = not is_main()  # torchrun's other ranks write nothing
        self._start = {"record": "start", "command": command, "argv": sys.argv, "options": options,
                       "device": device, "hardware": hardware(device) if device else None, "seed": seed,
                       "versions": versions(),
                       "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    def _write(self, doc: dict[str, Any]) -> None:
        if self._closed:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # a results folder made by the run
            self._file = open(self.path, "a" if self.append else "w", encoding="utf-8")  # noqa: SIM115
            self._file.write(json.dumps(self._start, default=str) + "\n")
        self._file.write(json.dumps(doc, default=str) + "\n")
        self._file.flush()

    def event(self, event: ProgressEvent) -> None:
        """Record a progress event: its message as a notice, its step and metrics as progress."""
        if event.message:
            self._write({"record": "notice", "message": event.message})
        if event.total > 0:
            self._write({"record": "progress", "stage": event.stage, "step": event.step,
                         "total": event.total, "metrics": event.metrics, "label": event.label,
                         "elapsed": round(time.perf_counter() - self.t0, 3)})

    def finish(self, status: str = "ok", **fields: Any) -> None:
        """Write the end line (once) and close. An error before any event writes nothing."""
        if self._closed:
            return
        if status == "ok" or self._file is not None:
            self._write({"record": "end", "status": status,
                         "seconds": round(time.perf_counter() - self.t0, 3), **fields})
        if self._file is not None:
            self._file.close()
        self._closed = True


@contextmanager
def run_record(output: Path, command: str, options: dict[str, Any], *, device: str | None = None,
               seed: int | None = None, append: bool = False) -> Iterator[RunRecord]:
    """A `RunRecord` that ends "ok" when the block completes (unless `finish` was called),
    "interrupted" on an interrupt and "error" on any failure, which propagates."""
    record = RunRecord(output, command, options, device=device, seed=seed, append=append)
    try:
        yield record
    except KeyboardInterrupt:
        record.finish("interrupted")
        raise
    except SSDDError as e:
        record.finish("error", message=str(e))
        raise
    except BaseException as e:
        record.finish("error", message=f"{type(e).__name__}: {e}")
        raise
    record.finish("ok")
