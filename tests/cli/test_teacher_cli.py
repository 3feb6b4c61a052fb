"""`ssdd teacher` end to end through Typer's CliRunner, and its user errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssdd_cli.cli import teacher as teacher_cli
from ssdd_cli.cli.main import app
from ssdd_cli.progress import Callback, ProgressEvent
from ssdd_cli.teacher import load_teacher

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")


def _one_line_error(result: object) -> str:
    out = result.output  # type: ignore[attr-defined]
    assert result.exit_code != 0, out  # type: ignore[attr-defined]
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert lines[0].startswith("error:")
    return lines[0]


def test_tiny_digits_run_writes_a_teacher(tmp_path: Path) -> None:
    out = tmp_path / "teacher.safetensors"
    result = runner.invoke(app, ["teacher", "--source", "digits", "--epochs", "1", "--device", "cpu",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and not (tmp_path / "teacher.safetensors.ckpt").exists()
    model, meta = load_teacher(out)
    assert meta["ssdd.source"] == "digits" and meta["ssdd.epochs"] == "1"
    assert meta["ssdd.arch"] == "resnet10" and model.in_channels == 1 and model.image_size == 16
    assert "saved to" in result.output


def test_interrupt_then_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "t.safetensors"
    ckpt = tmp_path / "t.safetensors.ckpt"
    args = ["teacher", "--source", "digits", "--epochs", "2", "--device", "cpu", "-o", str(out)]

    @contextmanager
    def killed_after_epoch_1(record: object = None) -> Iterator[Callback]:
        def callback(event: ProgressEvent) -> None:
            if event.metrics.get("epoch") == 1.0:
                raise KeyboardInterrupt

        yield callback

    real_progress = teacher_cli.progress_callback
    monkeypatch.setattr(teacher_cli, "progress_callback", killed_after_epoch_1)
    result = runner.invoke(app, args)
    assert result.exit_code == 130 and "--resume" in result.output
    assert ckpt.is_file() and not out.exists()

    monkeypatch.setattr(teacher_cli, "progress_callback", real_progress)
    changed = runner.invoke(app, [*args, "--resume", "--lr", "0.01"])
    assert changed.exit_code == 1 and ckpt.is_file() and not out.exists()
    assert "--lr: checkpoint" in _one_line_error(changed) and "lr = 0.002, but this run has 0.01" in changed.output
    result = runner.invoke(app, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert "resuming the teacher from epoch 1 of 2" in result.output
    assert out.is_file() and not ckpt.exists()
    assert load_teacher(out)[1]["ssdd.epochs"] == "2"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--source", "nosuchsource"], "unknown source"),
        (["--source", "digits", "--arch", "nosucharch"], "'nosucharch' is not one of"),
    ],
)
def test_unknown_source_or_arch(tmp_path: Path, args: list[str], needle: str) -> None:
    result = runner.invoke(app, ["teacher", *args, "-o", str(tmp_path / "t.safetensors")])
    assert needle in _one_line_error(result)
    assert result.exit_code == 2


def test_unwritable_output_fails_before_training(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "t.safetensors"
    result = runner.invoke(app, ["teacher", "--source", "digits", "-o", str(out)])
    assert "does not exist" in _one_line_error(result)


def test_corrupt_teacher_file_in_a_later_command(tmp_path: Path) -> None:
    bad = tmp_path / "teacher.safetensors"
    bad.write_bytes(b"\x00" * 64)
    result = runner.invoke(app, ["eval", "teacher", "--teacher", str(bad), "--target", "digits"])
    line = _one_line_error(result)
    assert "teacher.safetensors" in line
