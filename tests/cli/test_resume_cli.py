"""`--resume` continues only the run it was interrupted from: changed options are refused, naming
the first difference, for each long command (teacher: tests/cli/test_teacher_cli.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssdd_cli.cli import distill as distill_cli
from ssdd_cli.cli import pretrain as pretrain_cli
from ssdd_cli.cli.main import app
from ssdd_cli.progress import Callback, ProgressEvent
from tests.distill.helpers import write_tiny_teacher

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")
GOLDEN = Path(__file__).resolve().parents[2] / "formats" / "golden" / "v1-ssdd.ssdd"


@contextmanager
def killed_at(stage: str, step: int) -> Iterator[Callback]:
    def callback(event: ProgressEvent) -> None:
        if event.stage == stage and event.step == step:
            raise KeyboardInterrupt

    yield callback


def _refused(result: object, *needles: str) -> None:
    out = result.output  # type: ignore[attr-defined]
    lines = [line for line in out.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and "Traceback" not in out, out  # type: ignore[attr-defined]
    for needle in needles:
        assert needle in lines[0], out


def test_distill_resume_refuses_changed_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    teacher = write_tiny_teacher(tmp_path / "t.safetensors")
    out = tmp_path / "d.ssdd"
    args = ["distill", "--source", "digits", "--teacher", str(teacher), "-o", str(out), "--budget", "10",
            "--U", "8", "--V", "8", "--steps", "6", "--batch-size", "32", "--pool-size", "1", "--pool-steps", "2",
            "--device", "cpu"]
    original = distill_cli.progress_callback
    monkeypatch.setattr(distill_cli, "progress_callback", lambda record=None: killed_at("distill", 3))
    assert runner.invoke(app, args).exit_code == 130
    ckpt = tmp_path / "d.ssdd.ckpt"
    assert ckpt.is_file()
    monkeypatch.setattr(distill_cli, "progress_callback", original)  # not undo(): conftest's caches stay
    _refused(runner.invoke(app, [*args, "--resume", "--pool-size", "2"]),
             "--pool-size: checkpoint", "krr.pool.size = 1, but this run has 2")
    _refused(runner.invoke(app, [*args, "--resume", "--seed", "1"]), "--seed: ", "seed = 0, but this run has 1")
    assert ckpt.is_file() and not out.exists()
    result = runner.invoke(app, [*args, "--resume"])
    assert result.exit_code == 0 and "resuming from" in result.output and out.is_file() and not ckpt.exists()


def test_pretrain_resume_refuses_changed_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "b.safetensors"
    args = ["pretrain", str(GOLDEN), "-o", str(out), "--epochs", "3", "--device", "cpu"]
    original = pretrain_cli.progress_callback
    monkeypatch.setattr(pretrain_cli, "progress_callback", lambda record=None: killed_at("pretrain", 2))
    assert runner.invoke(app, args).exit_code == 130
    monkeypatch.setattr(pretrain_cli, "progress_callback", original)  # not undo(): conftest's caches stay
    _refused(runner.invoke(app, [*args, "--resume", "--wd", "0.01"]),
             "--wd: checkpoint", "weight_decay = 0.003, but this run has 0.01")
    _refused(runner.invoke(app, [*args[:-4], "--epochs", "4", "--device", "cpu", "--resume"]),
             "--epochs: checkpoint", "epochs = 3, but this run has 4")
    result = runner.invoke(app, [*args, "--resume"])
    assert result.exit_code == 0 and "resuming from epoch 1 of 3" in result.output and out.is_file()
