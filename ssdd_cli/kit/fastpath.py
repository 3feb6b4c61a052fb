"""The memory format and thread count of network passes, chosen by measuring this machine once.

The faster memory format differs between machines (issue 22): channels_last made a float32
ConvNet step 1.3× faster on an AVX2-only EPYC and was slower in one of two runs on an AVX-512
one; under bf16 it was the faster on both CPUs measured. So `auto` does not assume. `measure`
times the project's own training step (a ConvNet 64-128 with BatchNorm on 3×32×32 images, batch
64: forward, MSE through a linear head, backward, SGD: a pretraining step, and the teacher's and
the distillation pool's network) in every candidate, NCHW and channels_last at each thread
count on offer, interleaved over rounds so that a passing load touches every candidate alike;
the candidate with the lowest median wins, unless it beats NCHW at torch's default thread count
by less than `MARGIN` (then that default: no layout copies, no surprise). It stops after
`BUDGET_SECONDS` (at least `MIN_ROUNDS` rounds), so the measurement takes seconds even where a
precision is emulated.

Thread counts on offer: torch's default and every CPU this process may run on, when they differ
(e.g. physical cores against SMT threads); one candidate when they agree, as on 2-core VMs. A
thread count set by the user (`OMP_NUM_THREADS`, or `SSDD_THREADS`) is kept and not measured.

The decision is cached in `$SSDD_CACHE/fastpath.json` (default `~/.cache/ssdd/`, beside the
teachers' cache), one entry per key: the CPU's model name (or the GPU's), the kernels' ISA
restriction (`ATEN_CPU_CAPABILITY`, `ONEDNN_MAX_CPU_ISA`), the torch version, the device type,
the precision and the thread candidates; another torch, CPU or restriction measures again.
`ssdd bench --probe` shows the decision and measures it again. Under torchrun, ranks without a
cached decision each measure at once (interleaving keeps the comparison fair under their shared
load) and the last to finish writes the cache.

Overrides, strongest first: a command's `--memory-format nchw|channels_last` (`auto`, the
default, defers), then `SSDD_MEMORY_FORMAT`. Either skips the measurement and leaves the thread
count as it is.

The allocator: torch's CPU tensors come from glibc's malloc, which by default hands large freed
blocks back to the kernel, so every training step faulted its activations' pages in again (the
AVX2 demo: 30.8 M minor page faults, 90 s of system time in 693 s). `tune_allocator` (applied
with the first CPU fast path of a process) keeps freed memory for reuse: glibc's `mallopt` with
the mmap threshold at its 32 MB maximum, a 2 GB trim threshold and a 256 MB top pad, the
settings of the `MALLOC_*_` environment variables PyTorch's CPU tuning guides give. Nothing is
changed where the user set any `MALLOC_` variable, under another C library, or with
`SSDD_MALLOC=default`. The process keeps up to 2 GB it freed (its peak is unchanged).

`torch.compile` is not among the candidates: docs/performance.md has the measurement (compiling
a step took longer than it saves over the demo's loops on 2 cores).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ssdd_cli.errors import OutputError, UsageError
from ssdd_cli.io import atomic_write_bytes

MEMORY_FORMATS = ("auto", "nchw", "channels_last")
_DECIDED: dict[tuple[str, str], FastPath] = {}  # this process's decisions, by (cache file, key)
FORMAT_ENV = "SSDD_MEMORY_FORMAT"
THREADS_ENV = "SSDD_THREADS"
CACHE_ENV = "SSDD_CACHE"  # the teachers' cache root (teacher.provide), restated to stay torch-light
FILE_NAME = "fastpath.json"
MARGIN = 0.05  # a candidate must beat NCHW at the default threads by 5% to be chosen
MIN_ROUNDS, MAX_ROUNDS, BUDGET_SECONDS = 3, 7, 8.0
STEP_SHAPE = (64, 3, 32)  # batch, channels, side of the measured step
ISA_ENVS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")


@dataclass(frozen=True)
class FastPath:
    """What network passes use: channels_last or NCHW, and the intra-op thread count.
    source: "measured" (this call), "cached", "option", "environment" or "default".
    timings: median milliseconds per measured step, by candidate ("nchw/2", ...)."""

    channels_last: bool
    threads: int
    source: str = "default"
    timings: dict[str, float] | None = None

    @property
    def memory_format(self) -> str:
        return "channels_last" if self.channels_last else "nchw"

    def describe(self) -> str:
        """One line: the decision and where it came from."""
        return f"{self.memory_format}, {self.threads} thread(s) ({self.source})"


def cache_file() -> Path:
    """`$SSDD_CACHE/fastpath.json`, else `~/.cache/ssdd/fastpath.json`."""
    root = os.environ.get(CACHE_ENV)
    return (Path(root) if root else Path("~/.cache/ssdd")).expanduser() / FILE_NAME


def check_memory_format(name: str | None) -> str:
    """`name` (None: `$SSDD_MEMORY_FORMAT`, else "auto") lower-cased, or one UsageError sentence."""
    where = "option"
    if name is None:
        name, where = os.environ.get(FORMAT_ENV) or "auto", "environment"
    name = name.strip().lower().replace("-", "_")
    if name not in MEMORY_FORMATS:
        said = f"--memory-format {name!r}" if where == "option" else f"{FORMAT_ENV}={name!r}"
        raise UsageError(f"{said} is not a memory format; choose one of: {', '.join(MEMORY_FORMATS)}.",
                         option="memory_format")
    return name


def thread_candidates() -> list[int]:
    """The thread counts worth measuring (module docstring); one when the user set it."""
    fixed = os.environ.get(THREADS_ENV) or os.environ.get("OMP_NUM_THREADS")
    if fixed:
        try:
            return [max(1, int(fixed))]
        except ValueError:
            name = THREADS_ENV if os.environ.get(THREADS_ENV) else "OMP_NUM_THREADS"
            raise UsageError(f"{name}={fixed!r} is not a whole number of threads; set a number such as 2.",
                             option="threads") from None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return sorted({torch.get_num_threads(), usable})


def machine_key(device: torch.device, precision: str, threads: list[int]) -> str:
    """What the decision depends on (module docstring), as one string."""
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = _cpu_model() or platform.processor() or platform.machine()
    isa = ",".join(f"{name}={os.environ.get(name, '')}" for name in ISA_ENVS)
    return f"{hardware} | {isa} | torch {torch.__version__} | {device.type} | {precision} | threads {threads}"


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    line = next((ln for ln in text.splitlines() if ln.startswith("model name")), "")
    return line.partition(":")[2].strip()


def load_cache() -> dict[str, Any]:
    """The cached decisions by key; an unreadable or foreign file counts as empty (it is only
    a cache: the next decision rewrites it)."""
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store(key: str, path: FastPath, say: Callable[[str], None]) -> None:
    cache = load_cache()
    cache[key] = {"channels_last": path.channels_last, "threads": path.threads, "timings": path.timings}
    try:
        cache_file().parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cache_file(), json.dumps(cache, indent=2, sort_keys=True).encode())
    except (OSError, OutputError) as error:  # a read-only home must not stop a run
        say(f"could not cache the fast path ({error}); it holds for this run and is measured again next time")


def decide(device: torch.device, precision: str, memory_format: str | None = None,
           *, remeasure: bool = False, say: Callable[[str], None] | None = None) -> FastPath:
    """The fast path for `precision` ("fp32" or "bf16") on `device`: an override, else this
    process's earlier decision, else the cached measurement, else a new one (announced through
    `say`, the caller's channel: the CLI's notices, compare's progress; silent by default), then
    cached."""
    say = say or (lambda _: None)
    if device.type == "cpu":
        tune_allocator()
    fmt = check_memory_format(memory_format)
    if fmt != "auto":  # an override: nothing is measured, the thread count stays as it is
        source = "option" if memory_format is not None else "environment"
        return FastPath(fmt == "channels_last", torch.get_num_threads(), source)
    threads = thread_candidates() if device.type == "cpu" else [torch.get_num_threads()]
    key = machine_key(device, precision, threads)
    known = (str(cache_file()), key)
    if not remeasure and known in _DECIDED:  # one read of the cache file per process and key
        return _DECIDED[known]
    entry = None if remeasure else load_cache().get(key)
    if isinstance(entry, dict) and {"channels_last", "threads"} <= entry.keys():
        timings = entry.get("timings")
        path = FastPath(bool(entry["channels_last"]), int(entry["threads"]), "cached",
                        timings if isinstance(timings, dict) else None)
    else:
        say(f"measuring this machine's fastest memory format for {precision} network passes "
            f"(once; cached in {cache_file()})…")
        path = measure(device, precision, threads)
        _store(key, path, say)
        say(f"fast path: {path.describe()}; {_timings(path)}")
    _DECIDED[known] = replace(path, source="cached")
    return path


def _timings(path: FastPath) -> str:
    return ", ".join(f"{name} {ms:.1f} ms" for name, ms in (path.timings or {}).items())


def measure(device: torch.device, precision: str, threads: list[int], *,
            budget: float = BUDGET_SECONDS) -> FastPath:
    """Time the training step of the module docstring in every candidate; the decision."""
    before = torch.get_num_threads()
    candidates = [(cl, n) for n in threads for cl in (False, True)]
    times: dict[tuple[bool, int], list[float]] = {c: [] for c in candidates}
    try:
        steps = {c: _training_step(device, precision, channels_last=c[0]) for c in candidates}
        for cl, n in candidates:  # warm-up: oneDNN builds its kernels on first use
            torch.set_num_threads(n)
            steps[(cl, n)]()
        start = time.perf_counter()
        for done in range(MAX_ROUNDS):
            if done >= MIN_ROUNDS and time.perf_counter() - start > budget:
                break
            for cl, n in candidates:
                torch.set_num_threads(n)
                t0 = time.perf_counter()
                steps[(cl, n)]()
                times[(cl, n)].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    median = {c: statistics.median(t) for c, t in times.items()}
    default = (False, before if before in threads else threads[0])
    best = min(median, key=median.__getitem__)
    if median[best] > (1 - MARGIN) * median[default]:
        best = default
    timings = {f"{'channels_last' if cl else 'nchw'}/{n}": 1000 * s for (cl, n), s in median.items()}
    return FastPath(best[0], best[1], "measured", timings)


def _training_step(device: torch.device, precision: str, *, channels_last: bool) -> Callable[[], None]:
    """One SGD step of a ConvNet 64-128 (conv-BN-ReLU-avgpool twice, linear head) on a fixed
    batch, in `precision` and the memory format; built here so the probe does not import the
    model registry (the same layers as `models.convnet`)."""
    batch, c, side = STEP_SHAPE
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, c, side, side, generator=g).to(device)
    y = torch.randn(batch, 128, generator=g).to(device)
    layers: list[nn.Module] = []
    for cin, cout in ((c, 64), (64, 128)):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                   nn.AvgPool2d(2)]
    net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(128 * (side // 4) ** 2, 128)).to(device)
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    bf16 = precision == "bf16"

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
        loss = F.mse_loss(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


_TUNED: list[bool] = []
# mallopt's parameters (glibc's malloc.h): M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD.
_MALLOPT = ((-1, 2**31 - 1), (-2, 256 << 20), (-3, 32 << 20))


def tune_allocator() -> bool:
    """Keep freed memory for reuse (module docstring), once per process; whether it applied."""
    if _TUNED:
        return _TUNED[0]
    applied = False
    if os.environ.get("SSDD_MALLOC", "").lower() != "default" and \
            not any(k.startswith("MALLOC_") for k in os.environ) and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            applied = all(libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1
                          for param, value in _MALLOPT)
        except (OSError, AttributeError):  # not glibc: its own defaults stay
            applied = False
    _TUNED.append(applied)
    return applied


def as_dict(path: FastPath) -> dict[str, object]:
    """The decision as JSON-ready data (run records, bench --json)."""
    return {**asdict(path), "memory_format": path.memory_format}
