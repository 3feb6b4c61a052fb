"""Peak memory of a block of work, on the CPU or a CUDA device.

CUDA: `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`, minus what was
allocated before: the peak of tensor memory the block added (the caching allocator's reserve
and the CUDA context are left out).

CPU: the process's peak resident set size (Linux's VmHWM), reset at the start of the block by
writing "5" to /proc/self/clear_refs (proc(5), Linux 4.0 and later), minus the resident size
then: the peak growth of the whole process's memory during the block. It counts everything
(tensors, allocator slack, libraries' buffers), costs nothing while the block runs and, unlike
tracemalloc, sees memory that C++ allocates. Memory the C allocator kept from earlier work and
reuses is not counted again, so a measurement is cleanest in a fresh process (`ssdd bench` runs
each case in one). Elsewhere (no /proc) the CPU peak is unknown: None.

The reset is the kernel's own high-water mark, which `getrusage` also reads: after a block, the
process's maximum resident size as a parent sees it (`/usr/bin/time -v`, a scheduler's rusage
accounting) covers only the time since the last reset (measured: a process that touched 1 GB,
freed it and reset, reported 13.7 MB to `time -v` against 990 MB without the reset). So what
`time -v` reports for an `ssdd compare` run is its last step's peak and the report's, not the
run's; the log and the step records keep each step's own, evaluations included, and the run's
report its largest (`CompareRun.peak_memory`).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+)\s+kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def resident_bytes() -> int | None:
    """The process's resident set size now (None where /proc is missing)."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


class PeakMemory:
    """`with PeakMemory(device) as peak: ...` then `peak.grown` (bytes, or None if unknown).

    grown: the peak memory during the block above the level at its start (module docstring).
    peak: the absolute peak during the block (CPU: resident set; CUDA: allocated tensors).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.grown: int | None = None
        self.peak: int | None = None
        self._start: int | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        else:
            try:
                _CLEAR_REFS.write_text("5")
                self._start = resident_bytes()
            except OSError:
                self._start = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            kib = _status_kib("VmHWM")
            self.peak = None if kib is None or self._start is None else kib * 1024
        if self.peak is not None and self._start is not None:
            self.grown = self.peak - self._start
