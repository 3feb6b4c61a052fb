"""What this CPU is, read once from Linux's `/proc/cpuinfo`: its model name, its feature flags,
and how many physical cores the CPUs this process may run on belong to. Elsewhere (no such file,
or fields it lacks) the answers are empty, and every usable CPU counts as a core."""

from __future__ import annotations

import functools
import os
from pathlib import Path


@functools.cache
def _processors() -> tuple[dict[str, str], ...]:
    """One {field: value} per logical CPU listed in /proc/cpuinfo (empty where it is unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except (OSError, ValueError):
        return ()
    found = []
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            name, colon, value = line.partition(":")
            if colon:
                fields[name.strip()] = value.strip()
        if fields:
            found.append(fields)
    return tuple(found)


def model_name() -> str:
    """The CPU's model name ("AMD EPYC 9R14 96-Core Processor"), or ""."""
    return next((p["model name"] for p in _processors() if "model name" in p), "")


def flags() -> set[str]:
    """The kernel's CPU feature flags (avx512_bf16, amx_tile, ...), or an empty set."""
    return set(next((p["flags"] for p in _processors() if "flags" in p), "").split())


def usable_cpus() -> set[int]:
    """The logical CPUs this process may run on (its affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def physical_cores(cpus: set[int]) -> int:
    """How many physical cores `cpus` (logical CPU numbers) belong to: SMT siblings count once.
    len(cpus) where /proc/cpuinfo does not say which core a CPU is."""
    cores = set()
    for p in _processors():
        number, package, core = p.get("processor", ""), p.get("physical id"), p.get("core id")
        if not number.isdigit() or package is None or core is None:
            return len(cpus)
        if int(number) in cpus:
            cores.add((package, core))
    return len(cores) if cores else len(cpus)
