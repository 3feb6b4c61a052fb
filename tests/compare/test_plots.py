"""Plots: per-protocol bars, metric against budget, the held-out loss; valid PNGs."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from ssdd_cli.compare import Cell
from ssdd_cli.compare.plots import write_plots
from ssdd_cli.compare.steps import held_out_curve
from tests.compare.helpers import fake_run

GOLDEN = Path(__file__).resolve().parents[2] / "formats" / "golden"
RAW = {"source": "digits", "budgets": [10, 20], "archs": ["convnet", "resnet10"], "seeds": 2,
       "methods": ["ssdd", "krr-st", "random"], "protocols": ["linear@5shot", "align"]}


def value(cell: Cell) -> dict[str, float]:
    assert cell.seed is not None and cell.protocol is not None
    base = {"ssdd": 0.7, "krr-st": 0.65, "random": 0.6, "random init": 0.5, "teacher": 0.9,
            "full": 0.8}[cell.row]
    acc = base + 0.001 * (cell.budget or 0) + 0.01 * cell.seed
    return {"cka": acc, "mse": 1 - acc} if cell.protocol.name == "align" else {"accuracy": acc}


def held_out(cell: Cell) -> list[list[float]]:
    if cell.method == "random":
        return []  # a selection baseline has no outer loop
    start = 10.0 if cell.method == "ssdd" else 12.0
    return [[step, start / (1 + step / 50) + cell.seed] for step in range(0, 201, 25)]  # type: ignore[operator]


def test_every_plot_is_a_valid_png(tmp_path: Path) -> None:
    written = write_plots(fake_run(RAW, value, tmp_path, held_out))
    names = {p.name for p in written}
    assert names == {
        *(f"bars-N{n}-digits-{p}.png" for n in (10, 20) for p in
          ("linear-5shot-accuracy", "align-cka", "align-mse")),
        "budget-digits-linear-5shot-accuracy.png", "budget-digits-align-cka.png", "budget-digits-align-mse.png",
        "held-out-N10.png", "held-out-N20.png"}
    for path in written:
        assert path.parent == tmp_path / "plots"
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200
            image.verify()


def test_no_held_out_plot_without_curves(tmp_path: Path) -> None:
    raw = {**RAW, "budgets": [20], "archs": ["convnet"]}
    written = write_plots(fake_run(raw, value, tmp_path))
    assert not any(p.name.startswith(("held-out", "budget")) for p in written) and written


def with_held_out(source: Path, target: Path, curve: list[list[float]]) -> Path:
    """A copy of an artifact whose manifest records `distill.held_out` (the lead's new field)."""
    with safe_open(str(source), framework="pt") as f:
        meta = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    doc = json.loads(meta["ssdd.manifest"])
    doc["distill"] = {**(doc.get("distill") or {"steps": 0, "seed": 0}), "held_out": curve}
    save_file(tensors, str(target), metadata={**meta, "ssdd.manifest": json.dumps(doc)})
    return target


def test_the_held_out_curve_is_read_from_the_manifest(tmp_path: Path) -> None:
    golden = GOLDEN / "v1-ssdd.ssdd"
    assert held_out_curve(golden) == []  # absent: an artifact from before the held-out loss
    curve = [[0, 3.5], [50, 2.25], [100, 2.0]]
    assert held_out_curve(with_held_out(golden, tmp_path / "a.ssdd", curve)) == curve
    assert held_out_curve(with_held_out(golden, tmp_path / "b.ssdd", [])) == []


def test_the_movement_of_each_set_is_plotted_along_the_steps(tmp_path: Path) -> None:
    from dataclasses import replace

    run = fake_run({**RAW, "budgets": [20], "archs": ["convnet"]}, value, tmp_path)
    outcomes = []
    for o in run.outcomes:
        if o.step.kind == "distill" and o.record is not None and o.step.cell.method != "random":
            moved = [[step, {"images": step / 1000, "x": step / 500}] for step in (0, 25, 50)]
            o = replace(o, record=replace(o.record, metrics={**o.record.metrics, "movement": moved}))
        outcomes.append(o)
    written = write_plots(replace(run, outcomes=tuple(outcomes)))
    assert "movement-N20.png" in {p.name for p in written}
    with Image.open(tmp_path / "plots" / "movement-N20.png") as image:
        assert image.format == "PNG"
    assert "movement-N20.png" not in {p.name for p in write_plots(run)}
