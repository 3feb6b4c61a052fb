"""Each kind of step: the settings it is keyed by (`material`) and how it runs (`run`).

Every step calls the library (teacher trainer, `run_distill`, `pretrain`, `evaluate`), never a
subprocess. A long step checkpoints inside its work folder and resumes from it when the work
folder survives an interruption. A step's material holds its full resolved config (the method's
config dataclass after its preset, `PretrainConfig`, the protocol's config, `TeacherConfig`)
and the sha256 of every file it consumes; the source's data enters as a hash of its tensors.

One module per kind: `context` (what the steps of a comparison share), `teacher`, `distill`,
`backbone` (random init, full row, pretraining) and `evaluate`.
"""

from ssdd_cli.compare.steps.backbone import (
    FullLength,
    full_length,
    full_material,
    init_material,
    pretrain_config,
    pretrain_material,
    run_full,
    run_init,
    run_pretrain,
)
from ssdd_cli.compare.steps.context import Outputs, StepContext, file_metadata, in_entry
from ssdd_cli.compare.steps.distill import (
    distill_config,
    distill_curves,
    distill_material,
    entry_of,
    held_out_curve,
    run_distill_step,
)
from ssdd_cli.compare.steps.evaluate import eval_material, probed, protocol_config, run_eval
from ssdd_cli.compare.steps.teacher import run_teacher, teacher_config, teacher_material

__all__ = ["FullLength", "Outputs", "StepContext", "distill_config", "distill_curves", "distill_material",
           "entry_of", "eval_material", "file_metadata", "full_length", "full_material", "held_out_curve",
           "in_entry", "init_material", "pretrain_config", "pretrain_material", "probed",
           "protocol_config", "run_distill_step", "run_eval", "run_full", "run_init", "run_pretrain",
           "run_teacher", "teacher_config", "teacher_material"]
