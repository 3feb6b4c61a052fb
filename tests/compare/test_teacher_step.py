"""The comparison's teacher step trains the teacher every other path trains: on the source side
(`ImageSet.source`: the train split, val held out), as `ssdd teacher` and distill's cached teacher do."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from ssdd_cli.compare import build_plan, spec_from_mapping
from ssdd_cli.compare.steps import StepContext, run_teacher, teacher_config, teacher_material
from ssdd_cli.teacher.provide import get_or_train_teacher
from ssdd_cli.teacher.store import TRAINED_ON


def test_the_compare_teacher_is_the_one_ssdd_teacher_and_distill_train(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        spec = spec_from_mapping({"source": "digits", "budgets": [10], "methods": ["random"],
                                  "teacher": {"epochs": 1, "batch_size": 512}})
        step = next(s for s in build_plan(spec) if s.kind == "teacher")
        ctx = StepContext(spec)
        assert teacher_material(step, {}, ctx)["images"] == TRAINED_ON  # teachers of other images rerun
        work = tmp_path / "step"
        work.mkdir()
        outputs, _ = run_teacher(step, {}, work, ctx)
        _, meta, cached = get_or_train_teacher("digits", cache_root=tmp_path / "cache",
                                               config=teacher_config(ctx))
    finally:
        torch.set_num_threads(before)
    ours, theirs = load_file(work / outputs["teacher"]), load_file(cached)
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
