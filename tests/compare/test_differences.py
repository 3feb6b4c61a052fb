"""Paired differences in results.json and results.md: each row against its baselines, seed by
seed, with the 95% interval of the paired t."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssdd_cli.compare import Cell, results_markdown, summarize, write_results
from ssdd_cli.compare.differences import differences, pairs
from tests.compare.helpers import fake_run

RAW = {"source": "digits", "budgets": [20], "archs": ["convnet"], "seeds": 3,
       "methods": {"ssdd": {}, "ssdd@init": {"method": "ssdd", "steps": 0}, "random": {}},
       "protocols": ["linear"]}
# The seeds differ by 10 points, each row by a constant: paired, the differences are exact.
SEED = {0: 0.50, 1: 0.60, 2: 0.70}
ROW = {"ssdd": 0.05, "ssdd@init": 0.02, "random": 0.0, "random init": -0.20, "full": 0.15, "teacher": 0.3}
# ...except ssdd against random on seed 2, where it is 2 points behind instead of 5 ahead.
NOISE = {("ssdd", 2): -0.07}


def value(cell: Cell) -> dict[str, float]:
    assert cell.seed is not None
    return {"accuracy": SEED[cell.seed] + ROW[cell.row] + NOISE.get((cell.row, cell.seed), 0.0)}


def test_each_method_is_paired_with_random_random_init_its_variant_and_the_full_row() -> None:
    rows = ["ssdd", "ssdd@init", "random", "full", "random init", "teacher"]
    assert set(pairs(rows)) == {("ssdd", "random"), ("ssdd", "random init"), ("ssdd@init", "random"),
                                ("ssdd@init", "random init"), ("random", "random init"), ("full", "ssdd"),
                                ("full", "ssdd@init"), ("full", "random"), ("ssdd", "ssdd@init")}


def test_the_differences_are_paired_by_seed(tmp_path: Path) -> None:
    found = {(d.row, d.baseline): d for d in differences(summarize(fake_run(RAW, value, tmp_path)))}
    exact = found["ssdd@init", "random"].paired
    assert exact.mean == pytest.approx(0.02) and exact.low == pytest.approx(0.02)
    assert exact.high == pytest.approx(0.02) and exact.excludes_zero  # unpaired, 0.02 is noise
    noisy = found["ssdd", "random"].paired  # d = (0.05, 0.05, −0.02): mean 0.0267, sd 0.0404
    assert noisy.mean == pytest.approx(0.08 / 3)
    assert noisy.low == pytest.approx(0.08 / 3 - 4.302653 * 0.0404145 / 3 ** 0.5, abs=1e-5)
    assert not noisy.excludes_zero
    assert found["full", "ssdd@init"].paired.mean == pytest.approx(0.13)
    assert found["random", "random init"].seeds == (0, 1, 2)


def test_results_carry_the_differences(tmp_path: Path) -> None:
    run = fake_run(RAW, value, tmp_path)
    json_path, _ = write_results(run)
    doc = json.loads(json_path.read_text())
    got = {(d["row"], d["baseline"]): d for d in doc["differences"]}
    assert got["ssdd@init", "random"]["excludes_zero"] and not got["ssdd", "random"]["excludes_zero"]
    assert got["ssdd", "ssdd@init"]["n"] == 3 and got["ssdd", "ssdd@init"]["level"] == 0.95
    text = results_markdown(run)
    assert "| ssdd@init − random | +2.00 [+2.00, +2.00]* |" in text
    assert "| ssdd − random | +2.67 [" in text and "* where the interval excludes 0" in text
