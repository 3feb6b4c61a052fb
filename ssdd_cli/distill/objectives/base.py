"""The `Objective` contract: what the outer loop (`distill.engine.OuterLoop`) optimises."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from torch import Tensor

from ssdd_cli.distill.param import DistilledModule
from ssdd_cli.progress import Callback


class Objective:
    """A loss of the distilled set against real data, and what happens around it.

    Per outer step the engine draws every loss `losses` yields and takes one optimiser step on
    the distilled tensors after each (one loss for most methods; one per class for those that
    step class by class), then calls `after_step`. The objective owns whatever it needs beyond
    the distilled set: a real-batch sampler, networks (KRR's model pool), running state.
    Randomness comes from the run's generator, handed over at construction.

    sharded: under torchrun, True when each rank's loss is its share of the step's loss (the
    objective splits its real batch over the ranks: `kit.distributed.shard`) and the engine sums
    the gradients over the ranks; False (the default) when every rank computes the whole loss
    and the engine averages them. Either way every rank must draw the same random numbers.
    """

    sharded: ClassVar[bool] = False

    def prepare(self, distilled: DistilledModule, callback: Callback) -> None:
        """Before the first step of a fresh run (skipped on resume): e.g. training the pool."""

    def losses(self, distilled: DistilledModule) -> Iterator[Tensor]:
        """The scalar losses of one outer step, each with a graph to the distilled tensors."""
        raise NotImplementedError

    def after_step(self, distilled: DistilledModule) -> None:
        """After the optimiser steps of an outer step: e.g. the sampled model's inner step."""

    def held_out_loss(self, distilled: DistilledModule) -> float | None:
        """The objective on fixed held-out data (validation images, a fixed network), or None if
        the objective has none: a signal of the distilled set's progress alone."""
        return None

    def state(self) -> dict[str, Any]:
        """Everything needed to resume (a checkpoint state tree)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore `state()`."""
