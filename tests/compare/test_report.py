"""results.md: the papers' layout, mean ± std over seeds, the best method per column in bold."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from ssdd_cli.compare import Cell, results_markdown, summarize, write_results
from ssdd_cli.compare.report import markdown_table, results_document
from ssdd_cli.compare.runner import Outcome
from ssdd_cli.device import hardware
from tests.compare.helpers import fake_run

RAW = {"source": "digits", "budgets": [20], "archs": ["convnet", "resnet10"], "seeds": 2,
       "methods": ["ssdd", "krr-st", "random"], "protocols": ["linear", "align"]}
# accuracy per (row, arch): ssdd wins on convnet, krr-st on resnet10; the references score higher
# than every method, and must still not be bolded.
ACC = {("ssdd", "convnet"): 0.80, ("krr-st", "convnet"): 0.70, ("random", "convnet"): 0.60,
       ("ssdd", "resnet10"): 0.50, ("krr-st", "resnet10"): 0.55, ("random", "resnet10"): 0.40,
       ("random init", "convnet"): 0.90, ("random init", "resnet10"): 0.90, ("teacher", None): 0.95,
       ("full", "convnet"): 0.92, ("full", "resnet10"): 0.92}


def value(cell: Cell) -> dict[str, float]:
    assert cell.seed is not None and cell.protocol is not None
    acc = ACC[cell.row, cell.arch] + 0.01 * cell.seed  # seeds 0, 1: mean +0.005, std 0.005
    if cell.protocol.name == "align":  # mse: lower is better, so random is best on both archs
        return {"cka": acc, "mse": {"ssdd": 0.3, "krr-st": 0.2, "random": 0.1}.get(cell.row, 0.05)}
    return {"accuracy": acc}


def rows(text: str, heading: str) -> dict[str, list[str]]:
    """{method: cells} of the table under `heading`."""
    block = text.split(heading, 1)[1].split("\n## ", 1)[0].split("\nPaired over seeds", 1)[0]
    out = {}
    for line in block.splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if len(parts) > 2 and parts[1] not in ("method", "---"):
            out[parts[1]] = parts[2:]
    return out


def test_the_table_bolds_the_best_method_per_column(tmp_path: Path) -> None:
    text = results_markdown(fake_run(RAW, value, tmp_path))
    table = rows(text, "## N = 20: linear, accuracy (%)")
    assert table == {
        "ssdd": ["**80.50 ± 0.50**", "50.50 ± 0.50"],
        "krr-st": ["70.50 ± 0.50", "**55.50 ± 0.50**"],
        "random": ["60.50 ± 0.50", "40.50 ± 0.50"],
        "*full*": ["92.50 ± 0.50", "92.50 ± 0.50"],
        "*random init*": ["90.50 ± 0.50", "90.50 ± 0.50"],
        "*teacher*": ["95.50 ± 0.50", "95.50 ± 0.50"],
    }
    mse = rows(text, "## N = 20: align, mse (lower is better)")
    assert mse["random"] == ["**0.100 ± 0.000**", "**0.100 ± 0.000**"] and "**" not in "".join(mse["ssdd"])
    assert "| digits | ssdd |" in text and text.index("## N = 20: linear") < text.index("## N = 20: align, cka")


def test_ties_at_the_printed_precision_are_bolded_alike() -> None:
    run_rows = {"a": 0.81231, "b": 0.81234, "c": 0.5}
    from ssdd_cli.compare.report import Summary

    cells = [Summary(r, 20, "convnet", "digits", "linear", "accuracy", (0,), (v,), 1) for r, v in run_rows.items()]
    table = markdown_table(cells, ["convnet"], "accuracy")
    assert table.count("**81.23 ± 0.00**") == 2 and "| c | 50.00 ± 0.00 |" in table


def test_a_failed_step_leaves_a_marked_cell(tmp_path: Path) -> None:
    def flaky(cell: Cell) -> dict[str, float] | None:
        return None if (cell.row, cell.arch, cell.seed) == ("ssdd", "resnet10", 1) else value(cell)

    run = fake_run(RAW, flaky, tmp_path)
    text = results_markdown(run)
    assert rows(text, "## N = 20: linear, accuracy (%)")["ssdd"][1] == "50.00 ± 0.00†"
    assert "† fewer values than seeds" in text and "- failed: eval ssdd N=20 resnet10 seed 1" in text
    summary = next(s for s in summarize(run) if (s.row, s.arch, s.metric) == ("ssdd", "resnet10", "accuracy"))
    assert summary.seeds == (0,) and summary.planned == 2


def test_results_json_holds_every_number_and_setting(tmp_path: Path) -> None:
    run = fake_run(RAW, value, tmp_path)
    json_path, md_path = write_results(run)
    doc = json.loads(json_path.read_text())
    assert doc["format"] == "ssdd-compare/1" and set(doc["versions"]) >= {"ssdd", "torch", "python"}
    assert doc["spec"]["protocols"] == ["linear", "align"] and doc["spec"]["archs"] == ["convnet", "resnet10"]
    cell = next(r for r in doc["results"] if (r["row"], r["arch"], r["protocol"], r["metric"])
                == ("krr-st", "resnet10", "linear", "accuracy"))
    assert cell["values"] == [0.55, 0.56] and cell["seeds"] == [0, 1] and abs(cell["mean"] - 0.555) < 1e-12
    assert len(doc["steps"]) == len(run.plan) and {s["status"] for s in doc["steps"]} == {"ran"}
    assert md_path.read_text() == results_markdown(run)


def test_results_name_the_hardware_each_step_ran_on(tmp_path: Path) -> None:
    """A store resumed on another machine: results.md names every CPU its steps ran on, with how
    many steps each (a skipped step has no record, so it is not counted); a run whose steps all
    ran here names only this machine."""
    here = hardware("cpu")
    run = fake_run(RAW, value, tmp_path)
    doc = results_document(run)
    assert doc["hardware"] == here and all(s["hardware"] is None for s in doc["steps"])
    assert (f"device cpu ({here}); the store's steps ran on unrecorded hardware ({len(run.plan)} steps); "
            in results_markdown(run))
    same = replace(run, outcomes=tuple(replace(o, record=replace(o.record, hardware=here)) for o in run.outcomes
                                       if o.record is not None))
    assert f"device cpu ({here}); {len(run.plan)} steps ran" in results_markdown(same)
    evals = [o.step.id for o in same.outcomes if o.step.kind == "eval"]

    def elsewhere(o: Outcome) -> Outcome:
        if o.step.id == evals[0]:
            return replace(o, status="skipped", record=None)
        if o.step.kind == "eval" and o.record is not None:
            return replace(o, record=replace(o.record, hardware="Other CPU"))
        return o

    text = results_markdown(replace(same, outcomes=tuple(map(elsewhere, same.outcomes))))
    assert (f"the store's steps ran on Other CPU ({len(evals) - 1} steps), {here} "
            f"({len(run.plan) - len(evals)} steps); " in text)
