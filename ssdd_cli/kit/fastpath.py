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

Thread counts on offer: the physical cores this process may run on (torch's default) and every
CPU it may run on, when they differ (SMT threads); one candidate when they agree, as on 2-core
VMs. They are read from the machine, never from the current setting, which the decision itself
changes: a second decision in the process (compare resolves the precision for every step) finds
the first under the same key. A thread count set by the user (`OMP_NUM_THREADS`, or
`SSDD_THREADS`) is kept and not measured.

The decision is cached in `$SSDD_CACHE/fastpath.json` (default `~/.cache/ssdd/`, beside the
teachers' cache), one entry per key: the CPU's model name (or the GPU's), the kernels' ISA
restriction (`ATEN_CPU_CAPABILITY`, `ONEDNN_MAX_CPU_ISA`), the torch version, the device type,
the precision and the thread candidates; another torch, CPU or restriction measures again.
An entry is used only when it is what this module writes (`channels_last` a JSON boolean,
`threads` a whole number among the key's candidates); anything else, like an unreadable or
foreign file, counts as absent and is measured again. `ssdd bench --probe` shows the decision
and measures it again.

Under torchrun every rank must lay its networks out alike (DistributedDataParallel wraps them),
so rank 0 alone decides (its cache, else its measurement, while the others wait) and broadcasts
the decision; a rank takes rank 0's thread count when it is among its own candidates, else its
first. The first decision per precision in a process is therefore collective: every rank makes
it, as every command does at its start; later ones are this process's memo.

Overrides, strongest first: a command's `--memory-format nchw|channels_last` (`auto`, the
default, defers), then `SSDD_MEMORY_FORMAT`. Either skips the measurement and leaves the thread
count as it is.

The allocator's tuning, the other half of issue 22's CPU speed-up, is `kit.allocator`'s: a
process-wide setting, so the command line applies it and the library never does by itself.

`torch.compile` is not among the candidates: docs/performance.md has the measurement (compiling
a step took longer than it saves over the demo's loops on 2 cores).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ssdd_cli.device import hardware
from ssdd_cli.errors import OutputError, UsageError
from ssdd_cli.io import atomic_write_bytes
from ssdd_cli.kit import cpu, distributed

MEMORY_FORMATS = ("auto", "nchw", "channels_last")
_DECIDED: dict[tuple[str, str], FastPath] = {}  # this process's decisions, by (cache file, key)
FORMAT_ENV = "SSDD_MEMORY_FORMAT"
THREADS_ENV = "SSDD_THREADS"
CACHE_ENV = "SSDD_CACHE"  # the cache root, the teachers' too (teacher.provide)
FILE_NAME = "fastpath.json"
MARGIN = 0.05  # a candidate must beat NCHW at the default threads by 5% to be chosen
MIN_ROUNDS, MAX_ROUNDS, BUDGET_SECONDS = 3, 7, 8.0
STEP_SHAPE = (64, 3, 32)  # batch, channels, side of the measured step
ISA_ENVS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")


@dataclass(frozen=True)
class FastPath:
    """What network passes use: channels_last or NCHW, and the intra-op thread count.
    source: "measured" (this call), "cached", "option", "environment", "default" or "rank 0"
        (under torchrun, rank 0's decision on another rank).
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
    usable = cpu.usable_cpus()
    return sorted({cpu.physical_cores(usable), len(usable)})


def machine_key(device: torch.device, precision: str, threads: list[int]) -> str:
    """What the decision depends on (module docstring), as one string."""
    isa = ",".join(f"{name}={os.environ.get(name, '')}" for name in ISA_ENVS)
    return (f"{hardware(device)} | {isa} | torch {torch.__version__} | {device.type} | {precision} "
            f"| threads {threads}")


def load_cache() -> dict[str, Any]:
    """The cached decisions by key; an unreadable or foreign file counts as empty (it is only
    a cache: the next decision rewrites it)."""
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cached_entry(entry: object, threads: list[int]) -> FastPath | None:
    """A cache entry as a decision, or None unless it is what `_store` writes for the candidates
    `threads` (module docstring): JSON booleans and numbers are checked, never coerced."""
    if not isinstance(entry, dict):
        return None
    channels_last, n = entry.get("channels_last"), entry.get("threads")
    if not isinstance(channels_last, bool) or type(n) is not int or n not in threads:
        return None
    timings = entry.get("timings")
    shown = isinstance(timings, dict) and all(
        isinstance(k, str) and type(v) in (int, float) and math.isfinite(v) for k, v in timings.items())
    return FastPath(channels_last, n, "cached", timings if shown else None)


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
    fmt = check_memory_format(memory_format)
    if fmt != "auto":  # an override: nothing is measured, the thread count stays as it is
        source = "option" if memory_format is not None else "environment"
        return FastPath(fmt == "channels_last", torch.get_num_threads(), source)
    threads = thread_candidates() if device.type == "cpu" else [torch.get_num_threads()]
    key = machine_key(device, precision, threads)
    known = (str(cache_file()), key)
    if not remeasure and known in _DECIDED:  # one read of the cache file per process and key
        return _DECIDED[known]
    path = _cached_or_measured(device, precision, threads, key, remeasure, say) if distributed.is_main() \
        else None
    path = _from_rank_0(path, threads)
    _DECIDED[known] = replace(path, source="cached")
    return path


def _cached_or_measured(device: torch.device, precision: str, threads: list[int], key: str, remeasure: bool,
                        say: Callable[[str], None]) -> FastPath:
    path = None if remeasure else cached_entry(load_cache().get(key), threads)
    if path is None:
        say(f"measuring this machine's fastest memory format for {precision} network passes "
            f"(once; cached in {cache_file()})…")
        path = measure(device, precision, threads)
        _store(key, path, say)
        say(f"fast path: {path.describe()}; {_timings(path)}")
    return path


def _from_rank_0(path: FastPath | None, threads: list[int]) -> FastPath:
    """`path` on rank 0 (and in a single process); rank 0's decision on the other ranks, with
    their own thread count where rank 0's is not among their candidates (module docstring)."""
    if not distributed.is_distributed():
        assert path is not None
        return path
    box: list[FastPath | None] = [path]
    dist.broadcast_object_list(box, src=0)
    chosen = box[0]
    assert chosen is not None
    if distributed.is_main():
        return chosen
    mine = chosen.threads if chosen.threads in threads else threads[0]
    return replace(chosen, threads=mine, source="rank 0")


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
    default = (False, threads[0])  # NCHW at the first candidate, the physical cores: torch's default
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


def as_dict(path: FastPath) -> dict[str, object]:
    """The decision as JSON-ready data (run records, bench --json)."""
    return {**asdict(path), "memory_format": path.memory_format}
