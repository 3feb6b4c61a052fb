"""`run_compare` end to end on digits at toy size: it completes, an interrupted run resumes
reusing every finished step, and a changed setting reruns only the steps that depend on it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ssdd_cli.cli.main import app
from ssdd_cli.compare import (
    CompareRun,
    apply_setting,
    build_plan,
    run_compare,
    spec_from_mapping,
    write_results,
)
from ssdd_cli.compare.plots import write_plots
from ssdd_cli.compare.runner import BACKBONES
from ssdd_cli.errors import UsageError
from ssdd_cli.progress import ProgressEvent

# Toy sizes: every step takes well under a second on one core (the teacher a few seconds).
FAST = {"steps": 2, "pool_size": 2, "pool_steps": 2, "batch_size": 64, "approx_steps": 5}
RAW: dict[str, Any] = {
    "source": "digits", "budgets": [10], "archs": ["convnet"], "seeds": 2,
    "protocols": ["knn@1shot", "linear"],
    "methods": {"ssdd": FAST, "ssdd@init": {"method": "ssdd", **FAST, "steps": 0}, "random": {}},
    "teacher": {"epochs": 1}, "pretrain": {"epochs": 3}, "eval": {"linear": {"epochs": 2}},
    "full_steps": 12,  # 2 epochs of digits' 1,294 training images (6 minibatches each)
}
PNG = b"\x89PNG\r\n\x1a\n"


EVENTS: dict[int, list[ProgressEvent]] = {}


def compare(raw: dict[str, Any], out: Path, callback: Any = None) -> CompareRun:
    events: list[ProgressEvent] = []
    run = run_compare(build_plan(spec_from_mapping(raw)), out, device="cpu",
                      callback=callback or events.append)
    EVENTS[id(run)] = events
    return run


def events(run: CompareRun) -> list[ProgressEvent]:
    return EVENTS[id(run)]


def statuses(run: CompareRun) -> dict[str, str]:
    return {o.step.id: o.status for o in run.outcomes}


def ran(run: CompareRun) -> set[str]:
    return {i for i, s in statuses(run).items() if s == "ran"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, CompareRun]]:
    """One complete comparison, copied by each test that changes it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("compare") / "results"
    yield out, compare(RAW, out)
    torch.set_num_threads(before)


def copy(finished: tuple[Path, CompareRun], tmp_path: Path) -> Path:
    out = tmp_path / "results"
    shutil.copytree(finished[0], out)
    return out


def test_a_comparison_runs_every_step_then_reuses_them_all(finished: tuple[Path, CompareRun],
                                                            tmp_path: Path) -> None:
    out, first = finished
    assert set(statuses(first).values()) == {"ran"}
    # every step reported before and after, with the global count
    overall = [e for e in events(first) if e.stage == "compare"]
    assert overall[-1].step == overall[-1].total == len(first.plan)
    assert any(e.stage == "pretrain" for e in events(first))
    again = compare(RAW, copy(finished, tmp_path))
    assert set(statuses(again).values()) == {"reused"}
    assert [o.record.metrics for o in again.outcomes] == [o.record.metrics for o in first.outcomes]  # type: ignore[union-attr]
    assert any(e.message and e.message.startswith(" reused  pretrain ssdd@init N=10 convnet seed 1")
               for e in events(again))


def test_the_full_row_is_planned_run_on_every_training_image_and_reused(
        finished: tuple[Path, CompareRun], tmp_path: Path) -> None:
    out, first = finished
    full = [o for o in first.outcomes if o.step.kind == "full"]
    assert [o.step.id for o in full] == ["full/convnet/seed0", "full/convnet/seed1"]
    assert all(o.step.inputs == (("teacher", "teacher/digits"),) for o in full)
    record = full[0].record
    assert record is not None and record.metrics["images"] == 1294  # digits: its train split, val held out
    assert record.metrics["steps"] == 12 and record.material["config"]["epochs"] == 2
    assert "moved" in record.metrics["drift"]
    assert record.material["precision"] == "fp32"  # the default; part of every training step's key
    evals = [o for o in first.outcomes if o.step.kind == "eval" and o.step.cell.row == "full"]
    assert len(evals) == 2 * 2 and all(o.usable for o in evals)
    # keyed by content: a run without the other rows still reuses the full row
    again = compare({**RAW, "methods": {"random": {}}}, copy(finished, tmp_path))
    assert {statuses(again)[o.step.id] for o in full} == {"reused"}


def test_an_interrupted_comparison_resumes_reusing_finished_steps(tmp_path: Path) -> None:
    out = tmp_path / "results"
    raw = {**RAW, "methods": {"random": {}}, "seeds": 1, "teacher": {"epochs": 1}, "full": False}
    seen: list[ProgressEvent] = []

    def interrupt(event: ProgressEvent) -> None:
        seen.append(event)
        if event.stage == "pretrain" and event.step == 2:  # epoch 1's checkpoint is on disk
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compare(raw, out, interrupt)
    finished = [e.label for e in seen if e.stage == "compare" and e.message and e.label]
    partial = list((out / "steps" / "pretrain").glob("*.partial"))
    assert len(partial) == 1 and (partial[0] / "backbone.safetensors.ckpt").exists()
    rerun = compare(raw, out)
    reused = [o.step.description for o in rerun.outcomes if o.status == "reused"]
    assert reused == finished and len(reused) == 1 + 1 + 2 + 2 + 1  # teacher, init + 2 evals, teacher's, distill
    assert statuses(rerun)["pretrain/random/N10/convnet/seed0"] == "ran"
    assert any(e.message and "resuming from epoch 1 of 3" in e.message for e in events(rerun))
    assert not list((out / "steps").rglob("*.partial"))


def test_a_changed_pretrain_setting_reruns_only_pretraining_and_its_evals(
        finished: tuple[Path, CompareRun], tmp_path: Path) -> None:
    """`[pretrain] epochs` is the artifacts' length: the full row, whose length is its own
    (`full_steps`), is reused."""
    run = compare(apply_setting(RAW, "pretrain.epochs=4"), copy(finished, tmp_path))
    assert ran(run) == {s.id for s in run.plan if s.kind == "pretrain" or
                        (s.kind == "eval" and s.id.startswith("eval/pretrain/"))}


def test_without_kept_backbones_the_results_stay_and_a_new_protocol_remakes_the_weights(
        finished: tuple[Path, CompareRun], tmp_path: Path) -> None:
    """keep_backbones = false: a run deletes each backbone's weights once its evaluations are done
    and keeps its record; the next run reuses every step from the records alone; a protocol added
    then makes each backbone again when it is reached, so all its evaluations key on one set of
    weights (reused where the weights came out the same, rerun where not), and deletes them after."""
    out = copy(finished, tmp_path)
    raw = {**RAW, "keep_backbones": False}
    first = compare(raw, out)
    assert set(statuses(first).values()) == {"reused"}
    backbones = [o.record for o in first.outcomes if o.step.kind in BACKBONES]
    assert len(backbones) == 2 + 2 + 2 * 3  # init, full, and a pretraining per artifact, per seed
    assert all(r is not None and r.pruned == ("backbone",) and not r.output("backbone").exists()
               and (r.folder / "step.json").exists() for r in backbones)
    assert all(o.record is not None and o.record.output("teacher").exists()
               for o in first.outcomes if o.step.kind == "teacher")  # only backbones are deleted
    again = compare(raw, out)
    assert set(statuses(again).values()) == {"reused"}
    assert [o.record.metrics for o in again.outcomes] == [o.record.metrics for o in first.outcomes]  # type: ignore[union-attr]
    more = compare({**raw, "protocols": [*RAW["protocols"], "knn"]}, out)
    assert {s.id for s in more.plan if s.kind in BACKBONES or s.id.endswith("/knn")} <= ran(more)
    assert all(o.usable for o in more.outcomes)
    assert any(e.message and e.message.startswith("making pretrain ssdd N=10 convnet seed 0 again")
               for e in events(more))
    old = {o.step.id: o.record.sha256("backbone") for o in first.outcomes if o.step.kind in BACKBONES}  # type: ignore[union-attr]
    # a file's bytes are its weights' and metadata's: a random-init backbone (no training to differ
    # in its last bits) made again has its old hash, so its old evaluations are reused below
    inits = [sid for sid in old if sid.startswith("init/")]
    assert inits and all(more.outcome(sid).record.sha256("backbone") == old[sid] for sid in inits)  # type: ignore[union-attr]
    for o in more.outcomes:
        if o.step.kind == "eval" and not o.step.id.endswith("/knn") and o.step.input("backbone") in old:
            sid = o.step.input("backbone")
            same = more.outcome(sid).record.sha256("backbone") == old[sid]  # type: ignore[union-attr]
            assert o.status == ("reused" if same else "ran"), o.step.id
    assert all(o.record is not None and o.record.missing == ("backbone",)
               for o in more.outcomes if o.step.kind in BACKBONES)


def test_a_backbone_made_again_that_diverges_keeps_its_record(finished: tuple[Path, CompareRun], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Making deleted weights again can fail (another machine's bf16 diverging): the step fails in
    that run, but the record it was made from stays, and so do its evaluations' results."""
    from ssdd_cli.compare import runner
    from ssdd_cli.errors import DivergedError

    out = copy(finished, tmp_path)
    raw = {**RAW, "keep_backbones": False}
    compare(raw, out)

    def diverge(*_: Any) -> Any:
        raise DivergedError("the loss diverged")

    monkeypatch.setitem(runner.KIND, "pretrain", (runner.KIND["pretrain"][0], diverge))
    more = compare({**raw, "protocols": [*RAW["protocols"], "knn"]}, out)
    pretrains = [o for o in more.outcomes if o.step.kind == "pretrain"]
    assert pretrains and {o.status for o in pretrains} == {"failed"}
    assert not list((out / "steps").rglob("*.partial"))
    monkeypatch.undo()
    assert set(statuses(compare(raw, out)).values()) == {"reused"}


@pytest.mark.slow  # the pretraining case above covers reuse in the default suite
def test_a_changed_probe_setting_reruns_only_those_probes(finished: tuple[Path, CompareRun], tmp_path: Path) -> None:
    run = compare(apply_setting(RAW, "eval.linear.epochs=3"), copy(finished, tmp_path))
    assert ran(run) == {s.id for s in run.plan if s.kind == "eval" and s.id.endswith("/linear")}
    assert len(ran(run)) == (6 + 2 + 2 + 2)  # 6 pretrained backbones, 2 full, 2 random inits, the teacher at 2 seeds


@pytest.mark.slow
def test_a_changed_method_setting_reruns_only_that_method(finished: tuple[Path, CompareRun], tmp_path: Path) -> None:
    run = compare(apply_setting(RAW, "methods.ssdd.steps=3"), copy(finished, tmp_path))
    assert ran(run) == {s.id for s in run.plan if s.cell.row == "ssdd"} and len(ran(run)) == 2 * (1 + 1 + 2)


def test_results_and_plots_are_written(finished: tuple[Path, CompareRun], tmp_path: Path) -> None:
    out, first = finished
    json_path, md_path = write_results(first)
    text = md_path.read_text()
    assert "## N = 10: knn@1shot, accuracy (%)" in text and "| digits | ssdd |" in text
    assert "| *random init* |" in text and "| *teacher* |" in text and "**" in text
    plots = write_plots(first)
    # the held-out plot appears when the artifacts record `manifest.distill.held_out`
    curves = [o.record.metrics["held_out"] for o in first.outcomes if o.step.kind == "distill" and o.record]
    assert not any(curves[i] for i, o in enumerate(o for o in first.outcomes if o.step.kind == "distill")
                   if o.step.cell.method == "random")
    held_out = {"held-out-N10.png"} if any(curves) else set()
    # and the movement plot when they record `manifest.distill.movement` (ssdd's outer steps do)
    moved = [o.record.metrics.get("movement") for o in first.outcomes if o.step.kind == "distill" and o.record]
    movement = {"movement-N10.png"} if any(moved) else set()
    assert movement and {p.name for p in plots} == {"bars-N10-digits-knn-1shot-accuracy.png",
                                                    "bars-N10-digits-linear-accuracy.png", *held_out, *movement}
    assert all(p.read_bytes().startswith(PNG) for p in plots)
    assert '"counts"' in json_path.read_text()


def test_cli_compare_reuses_and_writes_the_table(finished: tuple[Path, CompareRun], tmp_path: Path) -> None:
    out = copy(finished, tmp_path)
    config = tmp_path / "c.toml"
    config.write_text('source = "digits"\nbudgets = [10]\nseeds = 2\nprotocols = ["knn@1shot", "linear"]\n'
                      'methods = ["random"]\nfull_steps = 12\n[teacher]\nepochs = 1\n[pretrain]\nepochs = 3\n'
                      '[eval.linear]\nepochs = 2\n')
    result = CliRunner().invoke(app, ["compare", "-c", str(config), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "0 steps ran, 25 reused" in result.output.replace("\n", " ")
    assert (out / "results.md").read_text().count("| digits | random |") == 2
    assert (out / "plots" / "bars-N10-digits-linear-accuracy.png").read_bytes().startswith(PNG)


def test_a_diverged_training_fails_its_cells_not_the_comparison(finished: tuple[Path, CompareRun],
                                                                tmp_path: Path) -> None:
    run = compare(apply_setting(RAW, "pretrain.lr=1e6"), copy(finished, tmp_path))
    status = statuses(run)
    assert {status[s.id] for s in run.plan if s.kind == "pretrain"} == {"failed"}
    assert {status[s.id] for s in run.plan if s.id.startswith("eval/pretrain/")} == {"skipped"}
    assert {status[s.id] for s in run.plan if s.kind in ("teacher", "distill", "init")} == {"reused"}
    text = write_results(run)[1].read_text()
    assert "| digits | ssdd | — |" in text and "- failed: pretrain ssdd N=10 convnet seed 0: pretraining diverged" in text
    again = compare(apply_setting(RAW, "pretrain.lr=1e6"), run.output)  # the failure is a result too
    assert {statuses(again)[s.id] for s in run.plan if s.kind == "pretrain"} == {"failed"}
    assert not ran(again)


def test_cli_ctrl_c_says_how_to_resume(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> CompareRun:
        raise KeyboardInterrupt

    monkeypatch.setattr("ssdd_cli.cli.compare.run_compare", interrupted)
    result = CliRunner().invoke(app, ["compare", "--source", "digits", "-o", str(tmp_path / "r")])
    assert result.exit_code == 130 and "rerun the same command: finished steps are reused" in result.output
    assert "Traceback" not in result.output


def test_a_comparison_under_torchrun_is_refused_before_any_work(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setattr("ssdd_cli.kit.distributed.is_distributed", lambda: True)
    monkeypatch.setattr("ssdd_cli.kit.distributed.world_size", lambda: 2)
    with pytest.raises(UsageError, match="runs in one process, not 2"):
        compare(RAW, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_classify_trains_on_labelled_artifacts_and_has_its_own_column(tmp_path: Path) -> None:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        raw = {"source": "digits", "budgets": [20], "archs": ["convnet"], "seeds": 1, "full": False,
               "references": False, "protocols": ["classify"],
               "methods": {"random": {"per_class": True}, "dm": {"steps": 1, "width": 8, "batch_size": 16}},
               "teacher": {"epochs": 1}, "pretrain": {"epochs": 1}, "eval": {"classify": {"epochs": 2, "width": 8}}}
        run = compare(raw, tmp_path / "results")
    finally:
        torch.set_num_threads(before)
    assert {o.step.id: o.status for o in run.outcomes if o.step.kind == "eval"} == {
        "eval/distill/random/N20/seed0/digits/classify": "ran", "eval/distill/dm/N20/seed0/digits/classify": "ran"}
    write_results(run)
    table = (tmp_path / "results" / "results.md").read_text()
    assert "## N = 20: classify, accuracy (%)" in table and "| target | method | DC ConvNet |" in table


def test_every_step_records_its_peak_memory_and_the_run_reports_the_largest(
        finished: tuple[Path, CompareRun]) -> None:
    import json
    import sys

    out, run = finished
    records = [o.record for o in run.outcomes if o.status == "ran" and o.record is not None]
    kinds = {r.kind for r in records}
    assert {"distill", "pretrain", "eval"} <= kinds
    assert not any("peak_memory" in r.metrics for r in records)  # an eval's metrics are its protocol's
    if sys.platform == "linux":  # the process's resident peak during the step (kit.memory)
        assert all(r.peak_memory is not None and r.peak_memory > 10**7 for r in records)
        assert run.peak_memory == max(r.peak_memory for r in records if r.peak_memory is not None)
        write_results(run)
        doc = json.loads((out / "results.json").read_text())
        assert doc["peak_memory"] == run.peak_memory
        assert all(a["peak_memory"] for a in doc["artifacts"] if a["status"] == "ran")
        assert all("peak_memory" in s for s in doc["steps"] if s["status"] in ("ran", "reused"))
        assert f"peak memory {run.peak_memory / 1e9:.2f} GB" in (out / "results.md").read_text()


def test_a_step_records_the_memory_it_added_beside_the_process_peak(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    """A cheap step after an expensive one: its absolute peak counts what the expensive one left
    resident (memory the allocator kept, a cache), what it added counts only its own."""
    import json
    import mmap
    import sys

    from ssdd_cli.compare import runner
    from ssdd_cli.compare.report import results_document
    from ssdd_cli.compare.steps import StepContext
    from ssdd_cli.compare.store import StepStore

    if sys.platform != "linux":
        pytest.skip("the CPU peak is read from /proc")
    mb = 2**20
    left: list[mmap.mmap] = []

    def resident(size: int) -> mmap.mmap:
        """`size` bytes of fresh anonymous memory, every page touched (the allocator's cache,
        which earlier tests fill, cannot serve it)."""
        block = mmap.mmap(-1, size)
        for i in range(0, size, mmap.PAGESIZE):
            block[i] = 1
        return block

    def expensive(*args: Any) -> tuple[dict[str, str], dict[str, Any]]:
        left.append(resident(256 * mb))  # still resident after the step, as the allocator keeps memory
        return {}, {}

    def cheap(*args: Any) -> tuple[dict[str, str], dict[str, Any]]:
        resident(64 * mb).close()  # 64 MB, given back at the end of the step
        return {}, {}

    plan = build_plan(spec_from_mapping({"source": "digits", "budgets": [10], "seeds": 1,
                                         "methods": ["random"], "full": False}))
    first, second = plan.steps[0], next(s for s in plan if s.kind == "init")
    kinds = {first.kind: (lambda *a: {"which": "expensive"}, expensive),
             second.kind: (lambda *a: {"which": "cheap"}, cheap)}
    monkeypatch.setattr(runner, "KIND", kinds)
    store, ctx = StepStore(tmp_path), StepContext(plan.spec)
    store.check_writable()
    done = {first.id: runner._run_step(first, {}, store, ctx)}
    done[second.id] = outcome = runner._run_step(second, done, store, ctx)
    record = outcome.record
    assert record is not None and record.peak_memory is not None and record.peak_memory_grown is not None
    assert 60 * mb <= record.peak_memory_grown < 100 * mb  # its own 64 MB (and a little slack)
    assert record.peak_memory > 256 * mb  # the process's peak: the earlier step's memory too
    found = store.lookup(second.kind, record.key)
    assert found is not None and found.peak_memory_grown == record.peak_memory_grown
    run = runner.CompareRun(plan, tuple(done.values()), tmp_path, "cpu", 0.0)
    doc = json.loads(json.dumps(results_document(run), default=str))
    assert {s["id"]: s["peak_memory_grown"] for s in doc["steps"]}[second.id] == record.peak_memory_grown
    assert doc["peak_memory_grown"] == max(o.record.peak_memory_grown for o in done.values()
                                           if o.record is not None and o.record.peak_memory_grown)
    left.pop().close()


def test_a_pretrained_backbone_names_the_teacher_of_its_artifact(finished: tuple[Path, CompareRun]) -> None:
    """As `ssdd pretrain` does (`train.recorded`), so `align` can find that teacher by provenance."""
    from safetensors import safe_open

    def meta(path: Path) -> dict[str, str]:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})

    _, run = finished
    teacher = run.outcome("teacher/digits").record
    assert teacher is not None
    sha = meta(teacher.output("teacher"))["ssdd.sha256"]
    for step_id in ("pretrain/ssdd/N10/convnet/seed0", "full/convnet/seed0"):
        record = run.outcome(step_id).record
        assert record is not None and meta(record.output("backbone"))["ssdd.teacher_sha256"] == sha


def test_a_few_shot_probe_averages_its_draws_the_same_for_every_backbone_of_a_seed(
        finished: tuple[Path, CompareRun]) -> None:
    import json
    import statistics

    evals = [o for o in finished[1].outcomes if o.step.kind == "eval" and o.record is not None]
    few = [o for o in evals if o.step.cell.protocol is not None and o.step.cell.protocol.shots == 1]
    assert few
    for o in few:
        assert o.record is not None and o.step.cell.seed is not None
        doc = json.loads(o.record.output("result").read_text())
        seed = o.step.cell.seed
        assert doc["seeds"] == list(range(20 * seed, 20 * seed + 20))  # 20 draws, the seed's own
        assert o.record.metrics["accuracy"] == pytest.approx(statistics.fmean(doc["metrics"]["accuracy"]["values"]))
    full = [o for o in evals if o.step.cell.protocol is not None and o.step.cell.protocol.name == "linear"]
    assert all(len(json.loads(o.record.output("result").read_text())["seeds"]) == 1
               for o in full if o.record is not None)
