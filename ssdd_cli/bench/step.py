"""The outer step's time, achieved FLOP/s and peak memory at a preset's shape (`ssdd bench`).

Built on the public API (`Distillation.create`), as a user would time their own setting: random
tensors stand in for the source (n images of the preset's shape, 50,000 like CIFAR-100's train
split) and a randomly initialised teacher of the preset's architecture (ResNet18, d_y = 512, at
CIFAR-100 shape) for a trained one; a step's cost does not depend on the values. U and V are the
preset's Table-5 rows for each budget, the pool is the preset's inner ConvNet (one model, fresh,
never reset: only the step is measured, not the pool's initial training), the real batch is the
preset's (1,024).

Targets: "cached" draws the real batch's teacher targets from the precomputed cache
(`real_aug` none; random features stand in for the cache), "recomputed" runs the teacher on every
real batch (`real_aug` crop-flip, KRR-ST's code), "banked" takes crop-flip views from a bank of
their targets built before the timed steps (`real_bank`, `distill.real`; BENCH_BANK views per
image: a step's cost does not depend on how many).

Each case runs in a fresh process (`isolate`), so its peak memory is its own (`kit.memory`):
"step peak" is the peak growth of the process's memory during the outer steps above its level
after setup (the source, the teacher, the distilled set and the pool built); "process peak" is
the absolute peak. Time per step is the median over `steps` steps (the first includes one-off
costs such as oneDNN's kernel selection); FLOPs are counted by `torch.utils.flop_counter` on the
first step (matrix products and convolutions, forward and backward), and achieved GFLOP/s is
that count over the median time.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from ssdd_cli.distill.distillation import Distillation
from ssdd_cli.distill.inputs import DistillInputs, TeacherTargets
from ssdd_cli.distill.krr import cheaper_form
from ssdd_cli.distill.methods import get_method
from ssdd_cli.distill.objectives.krr import KRRObjective
from ssdd_cli.errors import SSDDError, UsageError, check_whole
from ssdd_cli.kit.memory import PeakMemory
from ssdd_cli.kit.precision import resolve_precision
from ssdd_cli.models import create_backbone, extract_features
from ssdd_cli.presets import get_preset
from ssdd_cli.progress import Callback, ProgressEvent, silent

TARGETS = {"none": "cached", "crop-flip": "recomputed", "bank": "banked"}
BENCH_BANK = 2  # views per image of the "bank" case
METHODS = ("ssdd", "krr-st")


@dataclass(frozen=True)
class BenchConfig:
    """What `run_bench` measures: every (budget, real_aug, precision) combination.

    budgets: N in images. method: "ssdd" or "krr-st". real_augs: "none" (cached targets) and/or
    "crop-flip" (recomputed). precisions: "auto", "fp32", "bf16" (`kit.precision`).
    device: a torch device name. preset: the shapes, networks and budget rows (cifar100).
    source_size: random source images. batch_size, chunk: None for the method's defaults.
    threads: torch's intra-op threads in each case (None: this process's).
    isolate: run each case in a fresh process (clean peak memory; module docstring).
    """

    budgets: tuple[int, ...] = (100, 1000, 5000)
    steps: int = 1
    method: str = "ssdd"
    real_augs: tuple[str, ...] = ("none", "crop-flip")
    precisions: tuple[str, ...] = ("auto",)
    device: str = "cpu"
    preset: str = "cifar100"
    source_size: int = 50_000
    batch_size: int | None = None
    chunk: int | None = None
    threads: int | None = None
    isolate: bool = True

    def __post_init__(self) -> None:
        check_whole(self.steps, "the number of benchmark steps", option="steps")
        check_whole(self.source_size, "the source size", option="source_size")
        for n in self.budgets:
            check_whole(n, "every budget", option="budget")
        if self.method not in METHODS:
            raise UsageError(f"the benchmark runs {' or '.join(METHODS)}, not {self.method!r}.",
                             option="method")
        for aug in self.real_augs:
            if aug not in TARGETS:
                raise UsageError(f"the benchmark's real side is none (cached targets), crop-flip "
                                 f"(recomputed) or bank (banked), not {aug!r}.", option="real_aug")
        get_preset(self.preset)


@dataclass(frozen=True)
class BenchCase:
    N: int
    real_aug: str
    precision: str


@dataclass(frozen=True)
class BenchRow:
    """One measured case. form: the solve's side ("dual"/"primal"); chunks: network passes over
    the support set per forward (1: one graph). Sizes in bytes, None where unknown; error: why
    the case did not complete (e.g. the process was killed for lack of memory)."""

    method: str
    N: int
    targets: str
    precision: str
    m: int = 0
    M: int = 0
    form: str = ""
    chunks: int = 0
    seconds: float | None = None
    gflops: float | None = None
    step_peak: int | None = None
    process_peak: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class BenchReport:
    rows: list[BenchRow]
    environment: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "rows": [asdict(r) for r in self.rows]}


def build_case(config: BenchConfig, case: BenchCase) -> tuple[Distillation, str]:
    """One case set up on random data, its pool fresh; and the resolved precision's name."""
    device = torch.device(config.device)
    precision = resolve_precision(case.precision, device)
    preset = get_preset(config.preset)
    c, r = preset.channels, preset.resolution
    g = torch.Generator().manual_seed(0)
    source = torch.randn(config.source_size, c, r, r, generator=g).to(device)
    teacher = create_backbone(preset.teacher.arch, c, r, **preset.teacher.arch_kwargs).to(device).eval()
    teacher = precision.module(teacher)
    d_y = teacher.feature_dim
    cache = torch.randn(config.source_size, d_y, generator=g).to(device)
    targets = TeacherTargets(lambda x: extract_features(teacher, x, device=device), source, d_y,
                             compute=lambda view: cache, precision=precision)
    inputs = DistillInputs(source, targets, g, precision=precision)
    method = get_method(config.method)
    bank = case.real_aug == "bank"
    settings = method.configure(preset, case.N, d_y, steps=10**6,
                                real_aug="crop-flip" if bank else case.real_aug,
                                real_bank=BENCH_BANK if bank else None, batch_size=config.batch_size,
                                pool_size=1, pool_steps=10**9, chunk=config.chunk)
    run = Distillation.create(method, settings, inputs)
    assert run.loop is not None and isinstance(run.loop.objective, KRRObjective)
    run.loop.objective.pool.build()
    run.loop.objective.real.build_bank()
    return run, precision.name


def measure(config: BenchConfig, case: BenchCase) -> BenchRow:
    """Build and measure one case in this process."""
    device = torch.device(config.device)
    row = BenchRow(config.method, case.N, TARGETS[case.real_aug], case.precision)
    try:
        run, precision = build_case(config, case)
    except SSDDError as e:
        return _replace(row, error=str(e))
    loop, objective = run.loop, run.loop.objective if run.loop is not None else None
    assert loop is not None and isinstance(objective, KRRObjective)
    with torch.no_grad():
        M = loop.distilled.support()[0].shape[0]
    d = objective.pool.models[0].backbone.feature_dim + 1
    chunk = objective.config.chunk
    times: list[float] = []
    flops = 0
    with PeakMemory(device) as peak:
        for i in range(config.steps):
            _sync(device)
            t0 = time.perf_counter()
            if i == 0:
                with FlopCounterMode(display=False) as counter:
                    loop.outer_step()
                flops = counter.get_total_flops()
            else:
                loop.outer_step()
            _sync(device)
            times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    return _replace(row, precision=precision, m=run.plan.m, M=M, form=cheaper_form(M, d),
                    chunks=math.ceil(M / chunk) if M > chunk else 1, seconds=seconds,
                    gflops=flops / seconds / 1e9, step_peak=peak.grown, process_peak=peak.peak)


def run_bench(config: BenchConfig, callback: Callback = silent) -> BenchReport:
    """Measure every case of `config`, each in a fresh process unless `config.isolate` is False."""
    cases = [BenchCase(n, aug, p)
             for n in config.budgets for aug in config.real_augs for p in config.precisions]
    threads = config.threads or torch.get_num_threads()
    rows = []
    for i, case in enumerate(cases):
        callback(ProgressEvent("bench", i, len(cases), message=(
            f"{config.method} N = {case.N}, {TARGETS[case.real_aug]} targets, precision {case.precision}")))
        rows.append(_in_child(config, case, threads) if config.isolate else measure(config, case))
    callback(ProgressEvent("bench", len(cases), len(cases)))
    environment = {"torch": torch.__version__, "threads": threads, "device": config.device,
                   "preset": config.preset, "steps": config.steps, "source_size": config.source_size}
    return BenchReport(rows, environment)


def _child(config: BenchConfig, case: BenchCase, threads: int, conn: Any) -> None:
    torch.set_num_threads(threads)
    try:
        conn.send(measure(config, case))
    finally:
        conn.close()


def _in_child(config: BenchConfig, case: BenchCase, threads: int) -> BenchRow:
    """`measure` in a fresh spawned process; a case whose process dies becomes a row with its error."""
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(config, case, threads, send))
    process.start()
    send.close()
    try:
        row: BenchRow = receive.recv()
    except EOFError:
        process.join()
        code = process.exitcode
        why = "killed (out of memory?)" if code == -9 else f"ended with exit code {code}"
        row = BenchRow(config.method, case.N, TARGETS[case.real_aug], case.precision,
                       error=f"the benchmark process was {why}")
    process.join()
    return row


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _replace(row: BenchRow, **changes: Any) -> BenchRow:
    return BenchRow(**{**asdict(row), **changes})
