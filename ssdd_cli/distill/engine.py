"""The outer loop (SSDD Algorithm 1 lines 7–20) for any `Objective`.

The engine owns what every method shares: the optimiser of the distilled tensors (AdamW or SGD)
and its schedule, the divergence guard, checkpoints and progress events. The objective owns the loss.

Reading a loss to the host waits for the device. On the CPU that costs nothing, so each loss is
checked before its update, as always. On an accelerator the step losses stay on the device and
are read together every `held_out_every` steps (when the held-out signal syncs anyway), at
checkpoints and at the end; a NaN/Inf found then still stops the run before the next checkpoint,
so the last checkpoint on disk is good, and the progress line shows the loss last read.

Under torchrun (`kit.distributed`) every rank runs the loop on the same distilled set; after each
backward the distilled tensors' gradients are all-reduced, summed when the objective shards its
data over the ranks (`Objective.sharded`: each rank's loss is its share of the step's loss) and
averaged otherwise (every rank computed the whole loss), so every rank takes the same update.
Only rank 0 writes checkpoints (`kit.checkpoint`) and its callback is the one the CLI renders.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ssdd_cli.distill.movement import IMAGES, movement, snapshot
from ssdd_cli.distill.objectives.base import Objective
from ssdd_cli.distill.param import DistilledModule
from ssdd_cli.distill.probe import PROBE_STEPS
from ssdd_cli.errors import DivergedError, UsageError
from ssdd_cli.kit import distributed
from ssdd_cli.kit.checkpoint import KEYED_WHEN_SET, Checkpointer
from ssdd_cli.kit.schedules import SCHEDULES, set_lr
from ssdd_cli.progress import Callback, ProgressEvent, silent

STAGE = "distill"


OPTIMIZERS = ("adamw", "sgd")


@dataclass(frozen=True)
class OuterConfig:
    """The optimiser of the distilled tensors: AdamW with its lr decayed linearly to 0 over
    `steps` (SSDD, KRR-ST), or SGD with `momentum` (the DM family: lr 1, momentum 0.5, constant).

    weight_decay: 0, as KRR-ST's official code (`--outer_wd 0`); the papers name only "AdamW".
    held_out_every: steps between two evaluations of the objective's held-out signal (also at
    the start and at the end).
    schedule: a name in `kit.schedules.SCHEDULES`, a factor of `lr` per outer step.
    momentum: SGD's momentum (AdamW ignores it).
    probe_every: steps between two measurements of the trained-network signal (`distill.probe`;
    also at the start and at the end); 0: never.
    probe_steps: the SGD steps of each probe's pretraining (`distill.probe.TrainedProbe`): 200
    by default, a fifth of the presets' 1,000 pretraining epochs on a set of one minibatch. A set
    of several minibatches pretrains for more steps (Fashion-MNIST N = 10's 860 rows: 4,000); a
    probe as long as that (still with the pool's recipe) sets its length here (issue 33).
    lr_images, lr_targets: the learning rate of the tensors that make the images, and of those
    that make the targets (`DistilledModule.image_side`); None: `lr`. The papers use one rate for
    every tensor; with standardised targets and normalised images the two kinds live on other
    scales, so a study can set each (issue 33). Both follow `schedule`.
    """

    steps: int
    lr: float = 1e-3
    weight_decay: float = 0.0
    checkpoint_every: int = 50
    held_out_every: int = 25
    optimizer: str = "adamw"
    momentum: float = 0.0
    schedule: str = "linear"
    probe_every: int = 0
    probe_steps: int = field(default=PROBE_STEPS, metadata=KEYED_WHEN_SET)
    lr_images: float | None = None
    lr_targets: float | None = None

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise UsageError(f"the number of outer steps cannot be negative, got {self.steps}.",
                             option="steps")
        if not self.lr > 0:
            raise UsageError(f"the outer learning rate must be positive, got {self.lr}.", option="lr")
        if self.weight_decay < 0:
            raise UsageError(f"the outer weight decay cannot be negative, got {self.weight_decay}.",
                             option="weight_decay")
        if self.checkpoint_every < 1:
            raise UsageError("checkpoints must be at least one step apart.", option="checkpoint_every")
        if self.held_out_every < 1:
            raise UsageError("held-out evaluations must be at least one step apart.", option="held_out_every")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown outer optimiser {self.optimizer!r}; choose one of: "
                             f"{', '.join(OPTIMIZERS)}.", option="optimizer")
        if not 0 <= self.momentum < 1:
            raise UsageError(f"the outer momentum must be in [0, 1), got {self.momentum}.", option="momentum")
        for name in ("lr_images", "lr_targets"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise UsageError(f"the outer learning rate {name} must be positive, got {value}.",
                                 option=name)
        if self.probe_every < 0:
            raise UsageError(f"the probe's interval cannot be negative, got {self.probe_every}.",
                             option="probe_every")
        if self.probe_steps < 1:
            raise UsageError(f"the probe pretrains for at least one step, got {self.probe_steps}.",
                             option="probe_steps")
        SCHEDULES.get(self.schedule)

    def build(self, parameters: Iterable[tuple[str, Tensor]],
              image_side: tuple[str, ...] = ()) -> torch.optim.Optimizer:
        """The optimiser over the named `parameters` (its lr is set before every step): one
        group, or, with `lr_images` or `lr_targets` set, a group per kind (`image_side` names the
        image tensors), each with its own base rate (`base_lr`)."""
        named = list(parameters)
        groups: list[dict[str, Any]] = [{"params": [p for _, p in named]}]
        if self.lr_images is not None or self.lr_targets is not None:
            kinds = ((True, self.lr_images), (False, self.lr_targets))
            groups = [{"params": [p for n, p in named if (n in image_side) == images],
                       "base_lr": self.lr if lr is None else lr} for images, lr in kinds]
            groups = [g for g in groups if g["params"]]
        if self.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=self.lr, momentum=self.momentum,
                                   weight_decay=self.weight_decay)
        return torch.optim.AdamW(groups, lr=self.lr, weight_decay=self.weight_decay)


Probe = Callable[[DistilledModule], dict[str, float]]


class OuterLoop:
    def __init__(self, distilled: DistilledModule, objective: Objective, config: OuterConfig,
                 generator: torch.Generator, probe: Probe | None = None) -> None:
        self.distilled = distilled
        self.objective = objective
        self.config = config
        self.generator = generator
        self.optimizer = config.build(distilled.named_parameters(), distilled.image_side)
        self.schedule = SCHEDULES.get(config.schedule)
        self.step = 0
        self.losses: list[float] = []
        self.held_out: list[tuple[int, float]] = []  # (step, the objective's held-out loss)
        self.probe = probe if config.probe_every > 0 else None
        self.probes: list[tuple[int, dict[str, float]]] = []  # (step, the trained network's signals)
        # The set as it started (`distill.movement`), and (step, ‖Δ‖/‖initial‖ per tensor) with
        # every held-out evaluation.
        self.start_state: dict[str, Tensor] | None = None
        self.movement: list[tuple[int, dict[str, float]]] = []
        self._unread: list[Tensor] = []  # step losses still on the device (module docstring)
        # Steps between host reads of the losses: every step on the CPU, else with the held-out signal.
        device = next(iter(distilled.parameters()), torch.empty(0)).device
        self.read_every = 1 if device.type == "cpu" else config.held_out_every

    def record_held_out(self) -> float | None:
        """Evaluate the objective's held-out signal now, keep (step, value), return the value."""
        value = self.objective.held_out_loss(self.distilled)
        if value is not None:
            self.held_out = [*(p for p in self.held_out if p[0] != self.step), (self.step, value)]
        return value

    def record_movement(self) -> None:
        """Measure how far the set has moved from its start now (`distill.movement`)."""
        if self.start_state is not None:
            moved = movement(self.distilled, self.start_state)
            self.movement = [*(p for p in self.movement if p[0] != self.step), (self.step, moved)]

    def record_probe(self) -> None:
        """Measure the trained-network signal now (`distill.probe`), if the run has one."""
        if self.probe is not None and (not self.probes or self.probes[-1][0] != self.step):
            self.probes.append((self.step, self.probe(self.distilled)))

    def outer_step(self) -> Tensor:
        """One outer step: an optimiser step per loss the objective yields, then its
        `after_step`. Returns the step's loss (summed over its losses and, under torchrun,
        over the ranks' shares) as a 0-d tensor on the device; `losses` gets it once read."""
        reduce = "sum" if self.objective.sharded else "mean"
        total: Tensor | None = None
        for loss in self.objective.losses(self.distilled):
            value = distributed.all_reduce(loss.detach().clone(), reduce)
            if self.read_every == 1:
                _check_finite(float(value), self.step + 1)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            distributed.all_reduce_grads(self.distilled.parameters(), reduce)
            set_lr(self.optimizer, self.config.lr, self.schedule(self.step, self.config.steps))
            self.optimizer.step()
            total = value if total is None else total + value
        self.objective.after_step(self.distilled)
        self.step += 1
        total = torch.zeros(()) if total is None else total
        self._unread.append(total)
        if self.step % self.read_every == 0:
            self.read_losses()
        return total

    def read_losses(self) -> None:
        """Move the step losses still on the device to `losses` (one synchronisation), raising
        `DivergedError` at the first that is NaN/Inf."""
        if not self._unread:
            return
        values = torch.stack([t.reshape(()).float() for t in self._unread]).tolist()
        first = self.step - len(values) + 1
        self._unread = []
        for i, value in enumerate(values):
            _check_finite(value, first + i)
        self.losses.extend(values)

    def state(self) -> dict[str, Any]:
        return {"distilled": self.distilled.state_dict(), "optimizer": self.optimizer.state_dict(),
                "objective": self.objective.state(), "generator": self.generator.get_state(),
                "start": self.start_state}

    def load_state(self, state: dict[str, Any], progress: dict[str, Any]) -> None:
        self.distilled.load_state_dict(state["distilled"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.objective.load_state(state["objective"])
        self.generator.set_state(state["generator"])  # after the objective: rebuilding draws seeds
        self.step = int(progress["step"])
        self.losses = [float(v) for v in progress["losses"]]
        self.held_out = [(int(s), float(v)) for s, v in progress["held_out"]]
        self.probes = _step_signals(progress.get("probes", []))
        self.start_state = state.get("start")  # None in a checkpoint written before movement was kept
        self.movement = _step_signals(progress.get("movement", []))

    def save(self, checkpoint: Checkpointer) -> None:
        self.read_losses()
        checkpoint.save(self.state(), {"step": self.step, "losses": self.losses, "held_out": self.held_out,
                                       "probes": self.probes, "movement": self.movement})

    def start(self, checkpoint: Checkpointer, resume: bool, callback: Callback = silent) -> None:
        """Resume from `checkpoint` when asked and possible; else prepare the objective (the
        pool's initial training) and checkpoint step 0."""
        if resume and checkpoint.exists():
            self.load_state(*checkpoint.load())
            callback(ProgressEvent(STAGE, message=f"resuming from {checkpoint.path} at step {self.step}"))
            return
        if resume:
            callback(ProgressEvent(STAGE, message=f"no checkpoint at {checkpoint.path}: starting afresh"))
        self.objective.prepare(self.distilled, callback)
        self.start_state = snapshot(self.distilled)
        self.record_held_out()
        self.record_probe()
        self.save(checkpoint)

    def run(self, callback: Callback = silent, checkpoint: Checkpointer | None = None) -> list[float]:
        """Run to `config.steps`, checkpointing every `checkpoint_every` steps and at the end.

        On a NaN/Inf loss, stop without updating and raise `DivergedError`; the checkpoint on
        disk is the last good state.
        """
        start, t0 = self.step, time.perf_counter()
        total = self.config.steps
        if self.start_state is None and self.step == 0:  # run without `start`
            self.start_state = snapshot(self.distilled)
        while self.step < total:
            due = self.step + 1 == total or (self.step + 1) % self.config.checkpoint_every == 0
            try:
                self.outer_step()
                if due:
                    self.read_losses()
            except DivergedError as e:
                where = f"; the last good checkpoint is {checkpoint.path}" if checkpoint else ""
                raise DivergedError(f"{e}{where}; resume with a lower learning rate.", option="lr") from None
            if self.step % self.config.held_out_every == 0 or self.step == total:
                self.record_held_out()
                self.record_movement()
            if self.probe is not None and (self.step % self.config.probe_every == 0 or self.step == total):
                self.record_probe()
            rate = (self.step - start) / max(1e-9, time.perf_counter() - t0)
            metrics = {**({"loss": self.losses[-1]} if self.losses else {}),
                       **({"held-out": self.held_out[-1][1]} if self.held_out else {}),
                       **(self.probes[-1][1] if self.probes else {}),
                       **({"moved": self.movement[-1][1][IMAGES]} if self.movement else {}), "steps/s": rate}
            callback(ProgressEvent(STAGE, self.step, total, metrics))
            if checkpoint is not None and due:
                self.save(checkpoint)
        self.read_losses()
        return self.losses


def _step_signals(pairs: Iterable[Any]) -> list[tuple[int, dict[str, float]]]:
    """[(step, {name: value}), ...] as a checkpoint's JSON progress holds them."""
    return [(int(s), {k: float(v) for k, v in d.items()}) for s, d in pairs]


def _check_finite(value: float, step: int) -> None:
    if not math.isfinite(value):
        raise DivergedError(f"the outer loss became {value} at step {step}")
