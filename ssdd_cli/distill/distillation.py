"""A method set up on its inputs: the budget's plan, the distilled set and its outer loop.

    inputs = DistillInputs(images, TeacherTargets(teacher_fn, images, d_y), generator)
    run = Distillation.create(get_method("ssdd"), config, inputs)
    run.loop.run()                     # None for a selection baseline
    export = run.finalize()

`distill.run.run_distill` wraps this with data, teacher, checkpoints and the artifact's writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ssdd_cli.budget import BudgetReport
from ssdd_cli.distill.engine import OuterLoop
from ssdd_cli.distill.inputs import DistillInputs
from ssdd_cli.distill.methods.base import Export, Method
from ssdd_cli.distill.param import DistilledModule
from ssdd_cli.distill.probe import TrainedProbe
from ssdd_cli.errors import UsageError
from ssdd_cli.progress import Callback, ProgressEvent, silent

# Fewer validation images give no meaningful CKA or split-half k-NN (`TrainedProbe` asserts it).
MIN_PROBE_VAL = 4


@dataclass
class Distillation:
    method: Method[Any]
    config: Any
    inputs: DistillInputs
    plan: BudgetReport
    distilled: DistilledModule
    loop: OuterLoop | None  # None: the method only selects

    @classmethod
    def create(cls, method: Method[Any], config: Any, inputs: DistillInputs,
               callback: Callback = silent) -> Distillation:
        """Plan the budget, initialise the distilled set and build the method's outer loop;
        `callback` gets a notice when a probe was asked for but cannot run (`trained_probe`)."""
        plan = method.plan(config, inputs.shape, inputs.d_y)
        n = inputs.images.shape[0]
        if plan.m > n:
            raise UsageError(f"the budget buys m = {plan.m} distilled images but the source has only "
                             f"{n} training images; lower the budget or use more bases.", option="budget")
        distilled = method.init(config, plan, inputs).to(inputs.device)
        optimization = method.optimization(config, inputs)
        loop = None
        if optimization is not None:
            probe = (trained_probe(method, config, inputs, optimization.outer.probe_steps, callback)
                     if optimization.outer.probe_every > 0 else None)
            loop = OuterLoop(distilled, optimization.objective, optimization.outer, inputs.generator, probe)
        return cls(method, config, inputs, plan, distilled, loop)

    @property
    def probes(self) -> list[tuple[int, dict[str, float]]]:
        return self.loop.probes if self.loop is not None else []

    @property
    def losses(self) -> list[float]:
        return self.loop.losses if self.loop is not None else []

    def finalize(self, callback: Callback = silent) -> Export:
        """The artifact's tensors and layout (e.g. after fitting Q_a)."""
        return self.method.finalize(self.distilled, self.config, self.inputs.generator, callback)


def trained_probe(method: Method[Any], config: Any, inputs: DistillInputs, steps: int,
                  callback: Callback = silent) -> TrainedProbe | None:
    """The trained-network signal of a method whose outer loss trains a pool of networks (ssdd,
    krr-st: `config.krr.pool` names the network and its recipe; `steps` SGD steps a probe), when
    the source has at least 4 validation images and the run a teacher; otherwise None, and a
    one-line notice saying why through `callback` (the probe was asked for: dropping it silently
    would leave the user waiting for numbers that never come).
    """
    krr = getattr(config, "krr", None)
    n_val = 0 if inputs.held_out is None else int(inputs.held_out.shape[0])
    if krr is None:
        why = f"method {method.name} trains no pool of networks to probe with"
    elif inputs.teacher is None:
        why = "the run has no teacher to compare its features with"
    elif n_val < MIN_PROBE_VAL:
        why = f"the source has {n_val} validation images and the probe needs at least {MIN_PROBE_VAL}"
    else:
        return TrainedProbe(krr.pool, inputs, steps)
    callback(ProgressEvent("distill", message=f"note: the trained-network probe is off: {why}."))
    return None
