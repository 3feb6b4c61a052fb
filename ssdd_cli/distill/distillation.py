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
from ssdd_cli.progress import Callback, silent


@dataclass
class Distillation:
    method: Method[Any]
    config: Any
    inputs: DistillInputs
    plan: BudgetReport
    distilled: DistilledModule
    loop: OuterLoop | None  # None: the method only selects

    @classmethod
    def create(cls, method: Method[Any], config: Any, inputs: DistillInputs) -> Distillation:
        """Plan the budget, initialise the distilled set and build the method's outer loop."""
        plan = method.plan(config, inputs.shape, inputs.d_y)
        n = inputs.images.shape[0]
        if plan.m > n:
            raise UsageError(f"the budget buys m = {plan.m} distilled images but the source has only "
                             f"{n} training images; lower the budget or use more bases.", option="budget")
        distilled = method.init(config, plan, inputs).to(inputs.device)
        optimization = method.optimization(config, inputs)
        loop = None
        if optimization is not None:
            loop = OuterLoop(distilled, optimization.objective, optimization.outer, inputs.generator,
                             _probe(config, inputs))
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


def _probe(config: Any, inputs: DistillInputs) -> TrainedProbe | None:
    """The trained-network signal of a method whose outer loss trains a pool of networks (ssdd,
    krr-st: `config.krr.pool` names the network and its recipe), when the source has
    validation images and a teacher; None otherwise."""
    krr = getattr(config, "krr", None)
    if krr is None or inputs.teacher is None or inputs.held_out is None or inputs.held_out.shape[0] < 4:
        return None
    return TrainedProbe(krr.pool, inputs)
