"""`ssdd bench` at toy size (the digits preset's shapes): every case runs and is measured.

No timed assertions: only that steps ran, FLOPs were counted and memory was read.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ssdd_cli.bench import BenchConfig, probe_throughput, run_bench
from ssdd_cli.cli.main import app
from ssdd_cli.errors import UsageError

TOY = BenchConfig(preset="digits", budgets=(10,), steps=2, source_size=300, batch_size=32, chunk=64,
                  precisions=("fp32",), device="cpu", isolate=False)


@pytest.mark.usefixtures("one_thread")
def test_runs_cached_recomputed_and_banked_cases_in_this_process() -> None:
    report = run_bench(replace(TOY, real_augs=("none", "crop-flip", "bank")))
    assert [(r.targets, r.error) for r in report.rows] == [("cached", None), ("recomputed", None),
                                                          ("banked", None)]
    for r in report.rows:
        # digits N = 10: U = V = 8 buy m = 49 images, 4 views: M = 196 > chunk 64, d = 2,049
        assert (r.N, r.m, r.M, r.form, r.chunks, r.precision) == (10, 49, 196, "dual", 4, "fp32")
        assert r.seconds is not None and r.seconds > 0 and r.gflops is not None and r.gflops > 0
        if sys.platform == "linux":
            assert r.step_peak is not None and r.process_peak is not None and r.process_peak > r.step_peak
    assert report.to_json()["rows"][0]["M"] == 196


@pytest.mark.usefixtures("one_thread")
def test_isolated_case_reports_back_from_its_own_process() -> None:
    config = BenchConfig(preset="digits", budgets=(4,), steps=1, method="krr-st", source_size=100, batch_size=16,
                         real_augs=("crop-flip",), precisions=("bf16",), device="cpu", threads=1)
    (row,) = run_bench(config).rows
    assert row.error is None and (row.m, row.M, row.precision, row.targets) == (4, 4, "bf16", "recomputed")


def test_cli_writes_table_and_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--preset", "digits", "--budget", "10", "--source-size", "200",
                                      "--batch-size", "16", "--real-aug", "none", "--precision", "fp32",
                                      "--device", "cpu", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "196" in result.output and f"wrote {out}" in result.output.replace("\n", "")
    doc = json.loads(out.read_text())
    assert doc["environment"]["preset"] == "digits" and doc["rows"][0]["M"] == 196


def test_refusals_name_the_option() -> None:
    with pytest.raises(UsageError) as e:
        BenchConfig(method="dm")
    assert e.value.option == "method"
    with pytest.raises(UsageError) as e:
        BenchConfig(real_augs=("flip",))
    assert e.value.option == "real_aug"


def test_probe_measures_both_precisions_and_layouts() -> None:
    rows = probe_throughput(torch.device("cpu"), repeats=1, matmul_n=64, conv=(2, 8, 8))
    assert [(r.op, r.dtype, r.layout) for r in rows] == [
        ("matmul", "fp32", "-"), ("matmul", "bf16", "-"), ("conv3x3", "fp32", "nchw"),
        ("conv3x3", "fp32", "channels_last"), ("conv3x3", "bf16", "nchw"), ("conv3x3", "bf16", "channels_last")]
    assert all(r.gflops > 0 for r in rows)
    said: list[str] = []
    fp32 = probe_throughput(torch.device("cpu"), repeats=1, matmul_n=64, conv=(2, 8, 8), bf16=False,
                            callback=said.append)
    assert [r.dtype for r in fp32] == ["fp32"] * 3 and said == ["matmul fp32", "conv3x3 fp32 nchw",
                                                                 "conv3x3 fp32 channels_last"]
