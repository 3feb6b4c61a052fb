"""`ssdd bench --training`: the teacher's and pretraining's steps timed through their own loops,
beside a bare step, with FLOPs and the fraction of the probe's rate."""

from __future__ import annotations

import math

import torch
from typer.testing import CliRunner

from ssdd_cli.bench.training import TrainingBenchConfig, run_training_bench
from ssdd_cli.cli.main import app

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
