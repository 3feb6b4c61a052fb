from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssdd_cli.cli.info import _flat
from ssdd_cli.cli.main import app

runner = CliRunner()
GOLDEN = Path(__file__).resolve().parents[2] / "formats" / "golden"


def test_info_prints_manifest_and_budget() -> None:
    result = runner.invoke(app, ["info", str(GOLDEN / "v1-ssdd.ssdd")])
    assert result.exit_code == 0, result.output
    for part in ("ssdd", "digits", "rotate", "B^x", "C^y", "Q_a", "allowed", "m = 5"):
        assert part in result.output


def test_info_summarises_a_long_list_of_numbers() -> None:
    """A teacher's 128 target means are one line (their count and range), not a wall of numbers;
    a short list, such as an image's per-channel mean, is shown whole."""
    assert _flat([0.5, 0.25]) == "0.5, 0.25"
    assert _flat({"target_mean": [0.1 * i for i in range(128)], "mean": [0.2861]}) == (
        "target_mean=128 values in [0, 12.7] (--json: all)  mean=0.2861")


def test_info_json() -> None:
    result = runner.invoke(app, ["info", str(GOLDEN / "v1-raw.ssdd"), "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["method"] == "krr-st" and doc["raw"]["m"] == 3


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"not an artifact at all", "not a .ssdd artifact"),
        (b"", "not a .ssdd artifact"),
    ],
)
def test_info_bad_files_give_one_line(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "bad.ssdd"
    path.write_bytes(content)
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 1
    assert fragment in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2


def test_info_truncated_and_missing(tmp_path: Path) -> None:
    data = (GOLDEN / "v1-ssdd.ssdd").read_bytes()
    path = tmp_path / "cut.ssdd"
    path.write_bytes(data[:100])
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 1 and "truncated" in result.output
    result = runner.invoke(app, ["info", str(tmp_path / "nope.ssdd")])
    assert result.exit_code == 2 and "does not exist" in result.output  # a path that must exist: a bad option
    result = runner.invoke(app, ["info", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.output and "does not exist" not in result.output

