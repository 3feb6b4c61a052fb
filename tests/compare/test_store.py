"""The step store: keys follow content, a step appears whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

from ssdd_cli.compare import StepStore, step_key


def test_the_key_follows_content_not_order() -> None:
    a = step_key({"kind": "eval", "config": {"epochs": 2, "lr": 0.2}, "backbone": "ab"})
    b = step_key({"backbone": "ab", "config": {"lr": 0.2, "epochs": 2}, "kind": "eval"})
    assert a == b and len(a) == 64
    assert step_key({"kind": "eval", "config": {"epochs": 3, "lr": 0.2}, "backbone": "ab"}) != a
    assert step_key({"kind": "eval", "config": {"epochs": 2, "lr": 0.2}, "backbone": "ac"}) != a


def test_a_step_is_committed_whole_and_found_by_its_key(tmp_path: Path) -> None:
    store = StepStore(tmp_path)
    store.check_writable()
    key = step_key({"kind": "pretrain", "x": 1})
    assert store.lookup("pretrain", key) is None
    work = store.begin("pretrain", key)
    (work / "backbone.safetensors").write_bytes(b"weights")
    (work / "backbone.safetensors.ckpt").write_bytes(b"checkpoint")
    assert store.lookup("pretrain", key) is None  # a partial step is not a result
    assert store.begin("pretrain", key) == work and (work / "backbone.safetensors.ckpt").exists()
    record = store.commit("pretrain", key, {"x": 1}, {"backbone": "backbone.safetensors"}, {"loss": 0.5}, 1.5,
                          peak_memory=123_456_789, peak_memory_grown=23_456_789, hardware="AMD EPYC 9R14")
    assert not work.exists() and record.output("backbone").read_bytes() == b"weights"
    found = store.lookup("pretrain", key)
    assert found is not None and found.metrics == {"loss": 0.5} and found.material == {"x": 1}
    assert (found.seconds, found.peak_memory, found.peak_memory_grown) == (1.5, 123_456_789, 23_456_789)
    assert found.hardware == "AMD EPYC 9R14"
    assert found.sha256("backbone") == record.sha256("backbone")
    assert json.loads((found.folder / "step.json").read_text())["key"] == key


def test_a_damaged_step_is_not_reused(tmp_path: Path) -> None:
    store = StepStore(tmp_path)
    key = step_key({"kind": "eval"})
    store.begin("eval", key)
    (store.partial("eval", key) / "result.json").write_text("{}")
    record = store.commit("eval", key, {}, {"result": "result.json"}, {}, 0.0)
    record.output("result").unlink()
    assert store.lookup("eval", key) is None
    other = step_key({"kind": "eval", "other": True})
    (store.folder("eval", key) / "step.json").write_text(json.dumps({"key": other}))
    assert store.lookup("eval", key) is None


def test_an_older_record_keeps_its_peak_memory(tmp_path: Path) -> None:
    """Records written before the peak had a field of its own kept it among a step's metrics."""
    store = StepStore(tmp_path)
    key = step_key({"kind": "distill", "old": True})
    store.begin("distill", key)
    store.commit("distill", key, {}, {}, {"final_loss": 0.25}, 2.0)
    path = store.folder("distill", key) / "step.json"
    doc = json.loads(path.read_text())
    del doc["peak_memory"]
    doc["metrics"]["peak_memory"] = 987_654
    path.write_text(json.dumps(doc))
    found = store.lookup("distill", key)
    assert found is not None and found.peak_memory == 987_654 and found.metrics == {"final_loss": 0.25}
    assert found.peak_memory_grown is None and found.hardware is None  # not recorded then
    fresh = step_key({"kind": "distill", "new": True})
    store.begin("distill", fresh)
    assert store.commit("distill", fresh, {}, {}, {}, 0.0).peak_memory is None


def test_a_pruned_output_leaves_its_record_and_hash(tmp_path: Path) -> None:
    """`prune` deletes an output and marks it in the record: the step is still found (the record
    keeps the hash its consumers' keys name), but not if an output it kept is missing."""
    store = StepStore(tmp_path)
    key = step_key({"kind": "pretrain", "pruned": True})
    work = store.begin("pretrain", key)
    (work / "backbone.safetensors").write_bytes(b"weights")
    (work / "log.txt").write_text("kept")
    record = store.commit("pretrain", key, {}, {"backbone": "backbone.safetensors", "log": "log.txt"}, {}, 1.0)
    pruned = store.prune(record, "backbone")
    assert pruned.pruned == ("backbone",) and not record.output("backbone").exists()
    found = store.lookup("pretrain", key)
    assert found is not None and found.pruned == ("backbone",) and found.sha256("backbone") == record.sha256("backbone")
    record.output("log").unlink()
    assert store.lookup("pretrain", key) is None
