"""Off a terminal: plain progress lines at a steady pace (every 5% or 30 s), `--log-format json`,
`--quiet`; and the run record written beside every output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssdd_cli.cli import _progress
from ssdd_cli.cli._common import set_output
from ssdd_cli.cli._record import run_record
from ssdd_cli.cli.main import app
from ssdd_cli.device import hardware
from ssdd_cli.kit import distributed
from ssdd_cli.progress import ProgressEvent
from tests.distill.helpers import write_tiny_teacher

runner = CliRunner()


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _paced(json_lines: bool = False) -> tuple[_progress.Paced, Clock]:
    paced, clock = _progress.Paced(json=json_lines), Clock()
    paced.now = clock
    return paced, clock


def test_a_line_every_5_percent_with_loss_held_out_rate_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    paced, clock = _paced()
    for step in range(1, 201):
        clock.t = step * 0.5
        paced(ProgressEvent("distill", step, 200, {"loss": 1 / step, "held-out": 2 / step, "steps/s": 2.0}))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 21  # the first step, then at 5%, 10%, ..., 100%
    assert lines[0].startswith("distill      1/200   0%")
    assert lines[1].startswith("distill     10/200   5%")
    middle = lines[10]
    assert "100/200  50%" in middle and "loss 0.01" in middle and "held-out 0.02" in middle
    assert "2 it/s" in middle and "ETA 0:00:50" in middle and "steps/s" not in middle
    assert lines[-1].startswith("distill    200/200 100%") and "ETA" not in lines[-1]


def test_a_line_every_30_seconds_when_5_percent_takes_longer(capsys: pytest.CaptureFixture[str]) -> None:
    paced, clock = _paced()
    for step in range(1, 11):  # 10 s a step, 1,000 steps: 5% would take 500 s
        clock.t = 10.0 * step
        paced(ProgressEvent("teacher", step, 1000, {"loss": 3.0}))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[1] for line in lines] == ["1/1000", "4/1000", "7/1000", "10/1000"]
    assert "s/it" in lines[-1]  # slower than a step a second: seconds per step


def test_json_lines_and_notices(capsys: pytest.CaptureFixture[str]) -> None:
    set_output(log_format="json")
    try:
        paced, clock = _paced(json_lines=True)
        paced(ProgressEvent("distill", message="training the model pool"))
        clock.t = 1.0
        paced(ProgressEvent("distill", 1, 10, {"loss": 0.5}))
    finally:
        set_output()
    docs = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert docs[0] == {"event": "notice", "message": "training the model pool"}
    assert docs[1]["event"] == "progress" and docs[1]["step"] == 1 and docs[1]["metrics"] == {"loss": 0.5}


DISTILL = ["distill", "--source", "digits", "--budget", "10", "--U", "8", "--V", "8", "--steps", "20",
           "--batch-size", "32", "--pool-size", "1", "--pool-steps", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_teacher(tmp_path_factory.mktemp("teacher") / "t.safetensors")


def test_redirected_distill_prints_paced_lines_and_writes_its_record(tmp_path: Path, teacher: Path,
                                                                      one_thread: None) -> None:
    out = tmp_path / "d.ssdd"
    result = runner.invoke(app, [*DISTILL, "--teacher", str(teacher), "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("distill ")]
    assert 10 <= len(lines) <= 25, result.stderr  # steady: the first step, every 5%, the last
    assert "20/20 100%" in lines[-1] and "loss " in lines[-1] and "held-out " in lines[-1]
    assert any("ETA" in line for line in lines[:-1])
    assert "training the model pool before the first outer step" in result.stderr
    assert len(result.stdout.splitlines()) == 2  # the summary, each on one line however long
    record = [json.loads(line) for line in out.with_name("d.ssdd.run.jsonl").read_text().splitlines()]
    start, end = record[0], record[-1]
    assert start["record"] == "start" and start["command"] == "distill" and start["seed"] == 0
    assert start["device"] == "cpu" and set(start["versions"]) >= {"ssdd", "torch", "python"}
    assert start["hardware"] == hardware("cpu") != ""
    assert start["options"]["steps"] == 20 and start["options"]["lr"] is None  # as given
    steps = [r["step"] for r in record if r["record"] == "progress" and r["stage"] == "distill"]
    assert steps == list(range(1, 21))  # the whole loss history, unpaced
    assert end["record"] == "end" and end["status"] == "ok" and end["seconds"] > 0
    assert end["config"]["distill"]["steps"] == 20 and end["config"]["distill"]["lr"] > 0  # resolved


def test_quiet_and_json_log_format(tmp_path: Path, teacher: Path, one_thread: None) -> None:
    quiet = runner.invoke(app, [*DISTILL, "--steps", "3", "--teacher", str(teacher), "-o", str(tmp_path / "q.ssdd"),
                                "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == "" and "wrote" in quiet.stdout
    logged = runner.invoke(app, [*DISTILL, "--steps", "3", "--teacher", str(teacher), "-o",
                                 str(tmp_path / "j.ssdd"), "--log-format", "json"])
    assert logged.exit_code == 0, logged.output
    docs = [json.loads(line) for line in logged.stderr.splitlines()]
    assert {d["event"] for d in docs} <= {"progress", "notice"} and docs[-1]["event"] == "progress"
    bad = runner.invoke(app, [*DISTILL, "--steps", "3", "--teacher", str(teacher), "-o", str(tmp_path / "b.ssdd"),
                              "--log-format", "json", "--budget", "1"])
    assert bad.exit_code == 2
    error = json.loads(bad.stderr)
    assert error["event"] == "error" and error["option"] == "--budget" and error["exit_code"] == 2


def test_stdout_redirected_beside_a_terminal_gets_the_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    # `ssdd distill ... > log` at a terminal: bars on stderr (the terminal), plain lines in the log
    import io

    from rich.console import Console

    from ssdd_cli.cli import _common

    terminal, log = io.StringIO(), io.StringIO()
    err = Console(file=terminal, force_terminal=True, width=100)
    out = Console(file=log, soft_wrap=True, width=240)
    for module in (_common, _progress):
        monkeypatch.setattr(module, "err_console", err)
        monkeypatch.setattr(module, "console", out)
    set_output()
    with _progress.progress_callback() as callback:
        callback(ProgressEvent("distill", message="training the model pool"))
        for step in range(1, 21):
            callback(ProgressEvent("distill", step, 20, {"loss": 1.0 / step}))
    lines = log.getvalue().splitlines()
    assert lines[0] == "training the model pool"
    assert len(lines) == 21 and lines[-1].startswith("distill    20/20 100%  loss 0.05")
    assert "\x1b[" not in log.getvalue() and "\x1b[" in terminal.getvalue()  # plain log, bars on the terminal


@pytest.mark.parametrize("rank", ["0", "1"])
def test_under_torchrun_only_rank_0_writes_the_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      rank: str) -> None:
    monkeypatch.setattr(distributed, "rank", lambda: int(rank))  # as under torchrun, after joining the group
    out = tmp_path / "d.ssdd"
    with run_record(out, "distill", {}) as record:
        record.event(ProgressEvent("distill", 1, 2, {"loss": 1.0}))
    written = out.with_name("d.ssdd.run.jsonl")
    assert written.exists() == (rank == "0")
