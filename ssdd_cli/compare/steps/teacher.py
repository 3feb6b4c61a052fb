"""The teacher step: the source's Barlow Twins teacher, trained on the source side
(`ImageSet.source`: the train split, val held out) as `ssdd teacher` and distill's cached teacher
train it, or a given teacher file."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssdd_cli.compare.plan import Step
from ssdd_cli.compare.steps.context import Outputs, StepContext
from ssdd_cli.compare.store import StepRecord
from ssdd_cli.data import source_preset
from ssdd_cli.io import sha256_file
from ssdd_cli.kit.checkpoint import flat_settings
from ssdd_cli.teacher import TeacherConfig, load_teacher, save_teacher, train_teacher
from ssdd_cli.teacher.store import TRAINED_ON


def teacher_config(ctx: StepContext) -> TeacherConfig:
    opts = {k: v for k, v in ctx.spec.teacher.items() if k not in ("file", "seed")}
    return TeacherConfig.from_preset(source_preset(ctx.spec.source).teacher,
                                     seed=int(ctx.spec.teacher.get("seed", 0)), **opts)


def teacher_material(step: Step, inputs: Mapping[str, StepRecord], ctx: StepContext) -> dict[str, Any]:
    given = ctx.spec.teacher.get("file")
    if given is not None:
        return {"kind": "teacher", "file": sha256_file(given)}
    # "images": the images the teacher trains on (`ImageSet.source`), as `ssdd teacher` and
    # distill's cached teacher do; records of teachers trained on other images rerun.
    return {"kind": "teacher", "source": ctx.spec.source, "data": ctx.data_sha256(ctx.spec.source),
            "images": TRAINED_ON, "config": flat_settings(teacher_config(ctx)),
            "precision": ctx.precision.name}


def run_teacher(step: Step, inputs: Mapping[str, StepRecord], work: Path,
                ctx: StepContext) -> tuple[Outputs, dict[str, Any]]:
    out = work / "teacher.safetensors"
    given = ctx.spec.teacher.get("file")
    if given is not None:
        load_teacher(given)  # refuses a file that is not a teacher, naming why
        shutil.copyfile(given, out)
        return {"teacher": out.name}, {"given": str(given)}
    data, config = ctx.data(ctx.spec.source), teacher_config(ctx)
    ckpt = work / "teacher.safetensors.ckpt"
    result = train_teacher(data.source, data.mean, data.std, config, device=ctx.device, callback=ctx.callback,
                           checkpoint_path=ckpt, resume=ckpt.exists(), precision=ctx.precision)
    save_teacher(out, result, source=ctx.spec.source, mean=data.mean, std=data.std)
    ckpt.unlink(missing_ok=True)
    return {"teacher": out.name}, {"losses": result.losses, "final_loss": result.final_loss}
