"""`ssdd bench --training`: the teacher's and pretraining's steps timed through their own loops,
beside a bare step, with FLOPs and the fraction of the probe's rate."""

from __future__ import annotations

import importlib
import math

import pytest
import torch
from typer.testing import CliRunner

from ssdd_cli.bench import BenchConfig
from ssdd_cli.bench.training import TrainingBenchConfig, _stamper, run_training_bench
from ssdd_cli.cli import bench as bench_cli
from ssdd_cli.cli.main import app
from ssdd_cli.progress import ProgressEvent
from ssdd_cli.train.pretrain import fit
from ssdd_cli.train.recipe import PretrainConfig

pretrain_module = importlib.import_module("ssdd_cli.train.pretrain")  # the package exports the function
TINY = TrainingBenchConfig(preset="digits", precision="fp32", steps=2, warmup=1, pretrain_sizes=(8,),
                           source_size=256)


def test_every_case_is_timed_with_its_flops(one_thread: None) -> None:
    rows = run_training_bench(TINY)
    assert [r.case for r in rows] == ["teacher (resnet10)", "pretrain m=8 (convnet 64-128)", "bare step m=8"]
    assert [r.batch for r in rows] == [128, 8, 8]
    for r in rows:
        assert r.seconds > 0 and math.isfinite(r.seconds) and r.gflop > 0 and r.precision == "fp32"
        assert r.peak_fraction is not None and r.peak_fraction > 0
    # A pretraining step and a bare one do the same arithmetic.
    assert rows[1].gflop == rows[2].gflop
    # The teacher's step passes two views of 128 images through a ResNet-10 and its projector.
    assert rows[0].gflop > rows[1].gflop


def test_the_cli_prints_one_table(one_thread: None) -> None:
    torch.manual_seed(0)
    result = CliRunner().invoke(app, ["bench", "--training", "--preset", "digits", "--precision", "fp32",
                                      "--steps", "5", "--device", "cpu"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "training steps" in result.output and "bare step m=20" in result.output and "of peak" in result.output


def test_intra_epoch_progress_adds_no_step_stamps(monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    """A long epoch also reports its progress (train.pretrain's EVERY_SECONDS, here after every
    batch); only the epoch's end is a step of the timed loop (one minibatch an epoch when m fits)."""
    monkeypatch.setattr(pretrain_module, "EVERY_SECONDS", 0.0)
    g = torch.Generator().manual_seed(0)
    images, targets = torch.randn(12, 1, 8, 8, generator=g), torch.randn(12, 4, generator=g)
    config = PretrainConfig(arch="convnet", arch_kwargs={"widths": (4, 4)}, epochs=3, batch_size=4)
    events: list[ProgressEvent] = []
    stamps: list[float] = []
    stamp = _stamper("pretrain", stamps)

    def both(event: ProgressEvent) -> None:
        events.append(event)
        stamp(event)

    fit(images, targets, None, config, in_channels=1, image_size=8, device=torch.device("cpu"), callback=both)
    assert any("epoch" in e.metrics and e.step for e in events)  # progress within an epoch was reported
    assert len(stamps) == 3


class _Captured(Exception):
    pass


@pytest.mark.parametrize(("args", "preset"), [([], "digits-nuisance"), (["--preset", "cifar100"], "cifar100"),
                                              (["--preset", "digits"], "digits")])
def test_training_bench_times_the_preset_asked_for(monkeypatch: pytest.MonkeyPatch, args: list[str],
                                                   preset: str) -> None:
    seen: list[TrainingBenchConfig] = []

    def capture(config: TrainingBenchConfig, callback: object) -> list[object]:
        seen.append(config)
        return []

    monkeypatch.setattr(bench_cli, "run_training_bench", capture)
    result = CliRunner().invoke(app, ["bench", "--training", *args, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert seen[0].preset == preset and f"training steps · {preset}" in result.output


def test_the_outer_step_bench_keeps_cifar100_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    def capture(config: BenchConfig, callback: object) -> None:
        raise _Captured(config.preset)

    monkeypatch.setattr(bench_cli, "run_bench", capture)
    with pytest.raises(_Captured, match="^cifar100$"):
        CliRunner().invoke(app, ["bench", "--device", "cpu"], catch_exceptions=False)
