from __future__ import annotations

import json

from typer.testing import CliRunner

from ssdd_cli.cli.main import app

runner = CliRunner()


def test_budget_worked_example_table() -> None:
    result = runner.invoke(app, ["budget", "--U", "200", "--V", "200"])
    assert result.exit_code == 0, result.output
    assert "m = 114" in result.output
    for part in ("B^x", "C^x", "B^y", "C^y", "Q_a", "153,600", "5,412", "307,200", "spare"):
        assert part in result.output


def test_budget_json() -> None:
    result = runner.invoke(app, ["budget", "--U", "200", "--V", "200", "--budget", "100", "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["m"] == 114 and doc["total"] == 307_012 and doc["spare"] == 188


def test_budget_raw_method_counts_targets() -> None:
    result = runner.invoke(app, ["budget", "--method", "krr-st", "--count-targets", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["m"] == 85


def test_impossible_budget_is_one_line_without_traceback() -> None:
    result = runner.invoke(app, ["budget", "--U", "200", "--V", "200", "--budget", "10"])
    assert result.exit_code == 2  # an impossible budget is a bad combination of options, as in distill
    assert "Traceback" not in result.output
    assert "more than N = 10 allows" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_unknown_method_and_augmentation() -> None:
    assert runner.invoke(app, ["budget", "--method", "nope"]).exit_code == 2
    result = runner.invoke(app, ["budget", "--aug", "nope"])
    assert result.exit_code == 2 and "rotate" in result.output


def test_help_lists_every_command_and_version() -> None:
    result = runner.invoke(app, ["--help"])
    for cmd in ("teacher", "distill", "reconstruct", "pretrain", "eval", "budget", "info", "datasets"):
        assert cmd in result.output
    assert runner.invoke(app, ["--version"]).output.startswith("ssdd ")


def test_a_plan_with_fewer_images_than_n_says_so() -> None:
    # digits, N = 200 (off the preset's table): the rule's U = V = 2N capped at the bases' 64 and
    # the teacher's 128 dimensions. Floats: 200·256 = 51,200; fixed B^x 64·64 = 4,096, B^y
    # 128·128 = 16,384, Q_a 3·(128·4 + 4 + 4·128 + 128) = 3,468; per image U + V = 192;
    # m = (51,200 − 23,948) // 192 = 141 < 200.
    result = runner.invoke(app, ["budget", "--source", "digits", "--budget", "200", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["m"] == 141 and "only m = 141 images, fewer than the N = 200" in doc["note"]
    table = runner.invoke(app, ["budget", "--source", "digits", "--budget", "200"])
    assert "note: the bases leave room for only m = 141" in table.output
    # The preset's row for N = 100 (U = V = 48) holds more images than N: no note.
    fits = json.loads(runner.invoke(app, ["budget", "--source", "digits", "--budget", "100", "--json"]).output)
    assert fits["m"] == 157 and fits["note"] is None
    raw = json.loads(runner.invoke(app, ["budget", "--method", "krr-st", "--json"]).output)
    assert raw["note"] is None  # raw images: m is what N buys
