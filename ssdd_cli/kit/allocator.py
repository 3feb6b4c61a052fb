"""glibc's malloc tuned to keep freed memory for reuse: applied by the command line at start, by
the Python API only when asked (`ssdd.tune_allocator()`), never as a side effect of a library call.

torch's CPU tensors come from glibc's malloc, which by default hands large freed blocks back to
the kernel, so every training step faulted its activations' pages in again (the AVX2 demo: 30.8 M
minor page faults, 90 s of system time in 693 s). `tune_allocator` sets, through glibc's
`mallopt`, the mmap threshold to its 32 MB maximum, a 2 GB trim threshold and a 256 MB top pad
(the settings of the `MALLOC_*_` environment variables PyTorch's CPU tuning guides give): 1.4 M
faults and 6 s of system time. The cost is memory: the process keeps up to 2 GB it freed, so its
peak grows (the demo's 1.48 GB against 1.37, docs/performance.md). That is a process-wide change,
which a host application embedding the library decides for itself.

Nothing is changed where the user set malloc (any `MALLOC_` variable, or `GLIBC_TUNABLES` naming
a `glibc.malloc.` tunable), with `SSDD_MALLOC=default`, off Linux, or under another C library.
Imports no torch: the command line applies it before loading any.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from typing import Any

# mallopt's parameters (glibc's malloc.h) and the values set.
SETTINGS = {"M_TRIM_THRESHOLD": (-1, 2**31 - 1), "M_TOP_PAD": (-2, 256 << 20),
            "M_MMAP_THRESHOLD": (-3, 32 << 20)}
_TUNED: list[dict[str, int]] = []  # this process's one answer


def user_set_malloc() -> bool:
    """Whether the environment holds the user's own malloc settings (or `SSDD_MALLOC=default`)."""
    return (os.environ.get("SSDD_MALLOC", "").lower() == "default"
            or any(k.startswith("MALLOC_") for k in os.environ)
            or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""))


def _libc() -> Any:
    """The C library, loaded through ctypes (OSError where there is none)."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def tune_allocator() -> dict[str, int]:
    """Keep freed memory for reuse (module docstring), once per process: the settings applied,
    by mallopt name ({} where nothing was: the user's settings, another platform or C library).
    Every setting is tried, so one glibc refuses (e.g. a 2 GB threshold on 32 bits) leaves the
    others applied, and reported."""
    if _TUNED:
        return _TUNED[0]
    applied: dict[str, int] = {}
    if sys.platform.startswith("linux") and not user_set_malloc():
        try:
            mallopt = _libc().mallopt
        except (OSError, AttributeError):  # not glibc: its own defaults stay
            mallopt = None
        for name, (param, value) in SETTINGS.items() if mallopt is not None else ():
            if mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1:
                applied[name] = value
    _TUNED.append(applied)
    return applied
