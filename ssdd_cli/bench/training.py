"""The teacher's and pretraining's steps as `ssdd teacher` and `ssdd pretrain` take them (`ssdd
bench --training`), beside a bare step of the same network on the same batch.

Each case runs the library's own loop (`teacher.train_teacher`, `train.pretrain.fit`) on random
tensors of the preset's shape (a step's cost does not depend on the values) and times every step
from the loop's progress events, so a step's time includes the loop's own work (views, minibatch
indexing, schedules, the epoch's bookkeeping) as a user's run pays it; the median over the steps
after `warmup` is reported. The bare step is forward, loss, backward and SGD of the pretraining
network on one fixed batch in a tight loop: the loop's overhead is the difference. FLOPs are
counted by `torch.utils.flop_counter` on one forward and backward; the fraction of peak is the
achieved rate over the probe's best 3×3 convolution rate at the same precision and memory format
(`bench.probe`), the machine's measured ceiling for these networks.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from ssdd_cli.bench.probe import probe_throughput
from ssdd_cli.errors import check_whole
from ssdd_cli.kit.precision import Precision, resolve_precision
from ssdd_cli.presets import get_preset
from ssdd_cli.progress import Callback, ProgressEvent, silent
from ssdd_cli.teacher import TeacherConfig, train_teacher
from ssdd_cli.teacher.loss import barlow_twins_loss
from ssdd_cli.teacher.trainer import TwinNetwork, build_teacher
from ssdd_cli.train.pretrain import Regressor, build_backbone, fit
from ssdd_cli.train.recipe import PretrainConfig


@dataclass(frozen=True)
class TrainingBenchConfig:
    """preset: the shapes and networks (the teacher's, and the pretraining ConvNet of the
    preset's pool). pretrain_sizes: the sets' sizes m (one pretraining step an epoch up to 256).
    steps: timed steps per case after `warmup` untimed ones. source_size: random source images.
    memory_formats: every case runs in each ("auto": this machine's measured choice, `kit.fastpath`),
    so ("nchw", "channels_last") times both layouts side by side."""

    preset: str = "digits-nuisance"
    precision: str = "auto"
    memory_formats: tuple[str, ...] = ("auto",)
    device: str = "cpu"
    steps: int = 20
    warmup: int = 5
    pretrain_sizes: tuple[int, ...] = (20, 200)
    source_size: int = 2048

    def __post_init__(self) -> None:
        check_whole(self.steps, "the number of benchmark steps", option="steps")
        check_whole(self.source_size, "the source size", option="source_size")
        for m in self.pretrain_sizes:
            check_whole(m, "every pretraining set size", option="pretrain_sizes")


@dataclass(frozen=True)
class TrainingRow:
    """One case: its name, minibatch, median seconds per step, GFLOP per step, precision and
    memory format, and the fraction of the probe's convolution rate it reaches."""

    case: str
    batch: int
    seconds: float
    gflop: float
    precision: str
    layout: str
    peak_fraction: float | None = None

    @property
    def gflops(self) -> float:
        return self.gflop / self.seconds if self.seconds > 0 else math.nan


def _step_times(stamps: list[float], warmup: int) -> float:
    """Median of the gaps between consecutive step stamps, after the first `warmup` steps."""
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)][warmup:]
    return statistics.median(gaps) if gaps else math.nan


def _counted_gflop(fn: Callable[[], Tensor]) -> float:
    """GFLOP of one call of `fn` (forward) and the backward of what it returns."""
    with FlopCounterMode(display=False) as counter:
        fn().backward()
    return counter.get_total_flops() / 1e9


def _stamper(stage: str, stamps: list[float]) -> Callback:
    """A callback that stamps the time of every unit of `stage`'s progress: an event whose step
    passed the last one stamped. The teacher reports each optimiser step, pretraining each
    epoch's end; a long epoch's progress events within it repeat the epochs done and add none."""
    last = [0]

    def callback(event: ProgressEvent) -> None:
        if event.stage == stage and event.step > last[0]:
            last[0] = event.step
            stamps.append(time.perf_counter())
    return callback


def bench_teacher(config: TrainingBenchConfig, precision: Precision) -> TrainingRow:
    """The teacher's step: two views, the twin network, the Barlow Twins loss, the optimiser."""
    preset = get_preset(config.preset)
    c, r = preset.channels, preset.resolution
    device = torch.device(config.device)
    teacher = TeacherConfig.from_preset(preset.teacher)
    batch = min(teacher.batch_size, config.source_size)
    per_epoch = config.source_size // batch
    epochs = math.ceil((config.steps + config.warmup + 1) / per_epoch)
    images = torch.rand(config.source_size, c, r, r, generator=torch.Generator().manual_seed(0))
    stamps: list[float] = []
    train_teacher(images, [0.5] * c, [0.25] * c, replace(teacher, epochs=epochs), device=device,
                  callback=_stamper("teacher", stamps), precision=precision)
    backbone, projector = build_teacher(teacher, c, r)
    twins = TwinNetwork(backbone, projector).to(device).train()
    views = [torch.randn(batch, c, r, r, device=device) for _ in range(2)]

    def step() -> Tensor:
        with precision.autocast():
            z1, z2 = twins(*(precision.images(v) for v in views))
        return barlow_twins_loss(z1.float(), z2.float(), teacher.lambd)

    return TrainingRow(f"teacher ({teacher.arch})", batch, _step_times(stamps, config.warmup),
                       _counted_gflop(step), precision.name, _layout(precision))


def bench_pretrain(config: TrainingBenchConfig, m: int,
                   precision: Precision) -> tuple[TrainingRow, TrainingRow]:
    """Pretraining on m images (the loop of `ssdd pretrain`) and a bare step of its network."""
    preset = get_preset(config.preset)
    c, r, d_y = preset.channels, preset.resolution, preset.teacher.feature_dim
    device = torch.device(config.device)
    recipe = PretrainConfig.from_preset(preset)
    per_epoch = math.ceil(m / recipe.batch_size)
    epochs = math.ceil((config.steps + config.warmup + 1) / per_epoch)
    g = torch.Generator().manual_seed(0)
    images, targets = torch.randn(m, c, r, r, generator=g), torch.randn(m, d_y, generator=g)
    stamps: list[float] = []
    fit(images, targets, None, replace(recipe, epochs=epochs), in_channels=c, image_size=r, device=device,
        callback=_stamper("pretrain", stamps), precision=precision)
    loop = _step_times(stamps, config.warmup) / per_epoch

    backbone = build_backbone(recipe, in_channels=c, image_size=r, device=device)
    head = torch.nn.Linear(backbone.feature_dim, d_y).to(device)
    model = precision.module(Regressor(backbone, head).train())
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay)
    batch = min(m, recipe.batch_size)
    x = precision.images(images[:batch].to(device))
    y = targets[:batch].to(device)

    def forward() -> Tensor:
        with precision.autocast():
            out = model(x)
        return F.mse_loss(out.float(), y)

    def bare() -> None:
        loss = forward()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    bare_stamps = []
    for _ in range(config.warmup + config.steps + 1):
        bare()
        bare_stamps.append(time.perf_counter())
    gflop = _counted_gflop(forward)
    layout = _layout(precision)
    arch = f"{recipe.arch} {'-'.join(map(str, recipe.arch_kwargs.get('widths', ())))}".strip()
    return (TrainingRow(f"pretrain m={m} ({arch})", batch, loop, gflop, precision.name, layout),
            TrainingRow(f"bare step m={m}", batch, _step_times(bare_stamps, config.warmup), gflop,
                        precision.name, layout))


def _layout(precision: Precision) -> str:
    return "channels_last" if precision.channels_last else "nchw"


def run_training_bench(config: TrainingBenchConfig, callback: Callback = silent) -> list[TrainingRow]:
    """Every case of `config` in each memory format, then each row's fraction of the probe's
    convolution rate in its own precision and layout."""
    device = torch.device(config.device)
    rows = []
    for fmt in config.memory_formats:
        precision = resolve_precision(config.precision, device, fmt)
        what = f"{precision.name}, {_layout(precision)}"
        callback(ProgressEvent("bench", message=f"teacher step ({what})"))
        rows.append(bench_teacher(config, precision))
        for m in config.pretrain_sizes:
            callback(ProgressEvent("bench", message=f"pretraining step, m = {m} ({what})"))
            rows += bench_pretrain(config, m, precision)
    callback(ProgressEvent("bench", message="the probe's convolution rate"))
    probe = probe_throughput(device, repeats=3, bf16=any(r.precision == "bf16" for r in rows))
    peaks = {(p.dtype, p.layout): p.gflops for p in probe if p.op == "conv3x3"}
    return [replace(r, peak_fraction=r.gflops / peaks[(r.precision, r.layout)]
                    if (r.precision, r.layout) in peaks else None) for r in rows]
