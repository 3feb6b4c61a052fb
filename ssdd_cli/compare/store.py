"""The content-addressed store of a comparison's steps, under its output folder.

    {root}/steps/{kind}/{key[:24]}/            a finished step: its files and `step.json`
    {root}/steps/{kind}/{key[:24]}.partial/    a step at work (its checkpoint lives here)

A finished step's output can be deleted while its record stays (`prune`): the record keeps the
output's hash, so the steps that consumed it keep their keys and are still found, and whoever
needs the file again makes the step anew (`compare.runner`).

A step's key is the sha256 of its canonical JSON `material`: the kind, the tool and store
versions, its full config, and the sha256 of every file it consumes (so a rerun reuses every
step whose inputs and settings are unchanged, and redoes exactly those downstream of a change).
A step writes into its `.partial` folder, records `step.json` there last, and the folder is then
renamed into place, atomically: a folder without the `.partial` suffix is always complete. An
interrupted step leaves its `.partial` folder, whose checkpoint the next run resumes from.

Two comparisons writing to one folder at once are not guarded against.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ssdd_cli import __version__
from ssdd_cli.errors import OutputError
from ssdd_cli.io import atomic_write_bytes, sha256_file

# Bump when a step's meaning changes without a change of its recorded config (how a step runs,
# what it writes): every key changes, so nothing stale is reused.
STORE_VERSION = 1
RECORD = "step.json"


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no whitespace: equal data, equal text, equal hash."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str, allow_nan=True)


def step_key(material: dict[str, Any]) -> str:
    """The hex sha256 identifying a step by everything that determines its output."""
    full = {"tool": __version__, "store": STORE_VERSION, **material}
    return hashlib.sha256(canonical_json(full).encode()).hexdigest()


@dataclass
class StepRecord:
    """What a finished step left: its key and material, its output files (name → path relative to
    the step folder, and their sha256), its numbers (`metrics`), its wall time and its memory
    (bytes; None where unknown): `peak_memory`, the process's peak during the step
    (`PeakMemory.peak`), which also counts what earlier steps left resident (memory they freed but
    the allocator kept, caches), and `peak_memory_grown`, how far the step raised it above its
    level at the start (`PeakMemory.grown`): what the step itself needed; and `hardware`, what it
    ran on (`device.hardware`: the CPU's model name or the GPU's), since a store's steps may run
    on several machines and a wall time means nothing without it. Records written before a figure
    existed read it as None. `pruned`: the outputs deleted since (`StepStore.prune`)."""

    kind: str
    key: str
    material: dict[str, Any]
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    peak_memory: int | None = None
    peak_memory_grown: int | None = None
    hardware: str | None = None
    pruned: tuple[str, ...] = ()
    folder: Path = Path()

    def output(self, name: str) -> Path:
        """The absolute path of output `name`."""
        return self.folder / self.outputs[name]["file"]

    @property
    def missing(self) -> tuple[str, ...]:
        """The pruned outputs whose files are gone (a prune interrupted before the deletion
        leaves its file, which is still there to read)."""
        return tuple(name for name in self.pruned if not self.output(name).is_file())

    def sha256(self, name: str) -> str:
        return self.outputs[name]["sha256"]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "material": self.material, "outputs": self.outputs,
                "metrics": self.metrics, "seconds": self.seconds, "peak_memory": self.peak_memory,
                "peak_memory_grown": self.peak_memory_grown, "hardware": self.hardware,
                "pruned": list(self.pruned)}


class StepStore:
    """Finished and partial steps under `root/steps` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def folder(self, kind: str, key: str) -> Path:
        return self.root / "steps" / kind / key[:24]

    def partial(self, kind: str, key: str) -> Path:
        return self.root / "steps" / kind / f"{key[:24]}.partial"

    def check_writable(self) -> None:
        """Create the folder, or raise `OutputError` now if it cannot be written."""
        if self.root.exists() and not self.root.is_dir():
            raise OutputError(f"cannot write results to {self.root}: it is a file; give a folder.")
        try:
            (self.root / "steps").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create the results folder {self.root} ({e.strerror or e}); "
                              "choose another one.") from None
        if not os.access(self.root / "steps", os.W_OK):
            raise OutputError(f"the results folder {self.root} is not writable; choose another one.")

    def lookup(self, kind: str, key: str) -> StepRecord | None:
        """The finished step with this key, or None (also for a record of another key)."""
        folder = self.folder(kind, key)
        try:
            doc = json.loads((folder / RECORD).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("key") != key:
            return None
        metrics = doc["metrics"]  # older records kept a training step's peak among its metrics
        peak = doc.get("peak_memory", metrics.pop("peak_memory", None))
        record = StepRecord(kind, key, doc["material"], doc["outputs"], metrics, float(doc["seconds"]), peak,
                            doc.get("peak_memory_grown"), doc.get("hardware"), tuple(doc.get("pruned", ())),
                            folder)
        if not all(record.output(name).is_file() for name in record.outputs if name not in record.pruned):
            return None
        return record

    def prune(self, record: StepRecord, name: str) -> StepRecord:
        """Delete output `name` of a finished step and mark it so in its record, which stays (with
        the output's hash). The record is rewritten first: an interruption between the two leaves
        a record that calls a present file pruned, which is only a file too many."""
        pruned = replace(record, pruned=tuple(sorted({*record.pruned, name})))
        text = json.dumps(pruned.to_dict(), indent=2, default=str) + "\n"
        atomic_write_bytes(record.folder / RECORD, text.encode())
        record.output(name).unlink(missing_ok=True)
        return pruned

    def begin(self, kind: str, key: str) -> Path:
        """The step's work folder, kept from an interrupted run (with its checkpoint) or new."""
        work = self.partial(kind, key)
        work.mkdir(parents=True, exist_ok=True)
        return work

    def commit(self, kind: str, key: str, material: dict[str, Any], outputs: dict[str, str],
               metrics: dict[str, Any], seconds: float, peak_memory: int | None = None,
               peak_memory_grown: int | None = None, hardware: str | None = None) -> StepRecord:
        """Record the finished step in its work folder, then move the folder into place.

        outputs: name → file name inside the work folder; each is hashed here.
        """
        work, final = self.partial(kind, key), self.folder(kind, key)
        files = {name: {"file": rel, "sha256": sha256_file(work / rel)} for name, rel in outputs.items()}
        record = StepRecord(kind, key, material, files, metrics, seconds, peak_memory, peak_memory_grown,
                            hardware, folder=final)
        text = json.dumps(record.to_dict(), indent=2, default=str) + "\n"
        atomic_write_bytes(work / RECORD, text.encode())
        if final.exists():  # a stale folder lookup refused, or a pruned step made again
            shutil.rmtree(final)
        os.replace(work, final)
        return record
