"""The plan of a comparison: a DAG of steps, in an order that runs each step after its inputs.

    teacher (per source)
      → distill (per method entry × budget × seed)
          → pretrain (per artifact × arch, with the artifact's seed)
              → eval (per backbone × target × protocol, with the backbone's seed)
    init (random init, per arch × seed) → eval          the lower reference line
    teacher → full (per arch × seed) → eval             all training images with their targets
    teacher → eval (per target × protocol × seed)       the upper reference line
    distill → eval (per protocol that trains on labels)  `classify`, on a labelled artifact, on
                                                         the source; no arch (DC's ConvNet)

A step names what it is for (`Cell`: row, method, budget, arch, seed, target, protocol) and the
steps it consumes (`inputs`, by role). It says nothing of settings: the runner derives each
step's full config from the spec and the cell, and the store keys the step by it.

Order: the teacher, the reference lines (cheap), then one artifact at a time with everything
that depends on it, so an interrupted comparison has whole cells to show.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ssdd_cli.compare.protocol import ProtocolSpec
from ssdd_cli.compare.spec import CompareSpec, MethodEntry
from ssdd_cli.distill.methods import get_method
from ssdd_cli.train.full import FULL  # every training image of the source with its teacher target
from ssdd_cli.train.protocols import get_protocol

KINDS = ("teacher", "init", "full", "distill", "pretrain", "eval")
RANDOM_INIT = "random init"
TEACHER = "teacher"
REFERENCES = (FULL, RANDOM_INIT, TEACHER)  # the reference rows (tables show them after the methods)


@dataclass(frozen=True)
class Cell:
    """What a step is for. row: the table row (a method entry, or one of `REFERENCES`)."""

    row: str
    method: str | None = None
    budget: int | None = None
    arch: str | None = None
    seed: int | None = None
    target: str | None = None
    protocol: ProtocolSpec | None = None


@dataclass(frozen=True)
class Step:
    """One unit of work. id: unique and readable (`pretrain/ssdd/N20/convnet/seed0`).
    inputs: (role, step id) pairs: `teacher`, `artifact`, `backbone`."""

    id: str
    kind: str
    cell: Cell
    inputs: tuple[tuple[str, str], ...] = ()

    def input(self, role: str) -> str:
        return dict(self.inputs)[role]

    @property
    def description(self) -> str:
        """A short human label: `pretrain ssdd N=20 convnet seed 0`."""
        c = self.cell
        parts = [self.kind, c.row if self.kind in ("distill", "pretrain", "eval") else None,
                 f"N={c.budget}" if c.budget is not None else None, c.arch,
                 f"seed {c.seed}" if c.seed is not None else None,
                 f"on {c.target}" if c.target is not None else None,
                 c.protocol.label if c.protocol is not None else None]
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class Plan:
    spec: CompareSpec
    steps: tuple[Step, ...]

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def get(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def count(self, kind: str) -> int:
        return sum(1 for s in self.steps if s.kind == kind)


def build_plan(spec: CompareSpec) -> Plan:
    """Every step of the comparison, each after the steps it consumes."""
    teacher = Step(f"teacher/{spec.source}", "teacher", Cell(TEACHER))
    steps = [teacher]
    # Whether any protocol probes a backbone: a comparison of protocols that train their own
    # network only (classify) pretrains nothing and has no reference rows.
    probes = any(p.on_backbone for p in spec.protocols)
    if spec.references and probes:
        for arch in spec.archs:
            for seed in range(spec.seeds):
                init = Step(f"init/{arch}/seed{seed}", "init", Cell(RANDOM_INIT, arch=arch, seed=seed))
                steps += [init, *_evals(spec, init, teacher.id)]
        for seed in range(spec.seeds):
            steps += _evals(spec, teacher, teacher.id, Cell(TEACHER, seed=seed))
    if spec.full and probes:
        for arch in spec.archs:
            for seed in range(spec.seeds):
                full = Step(f"full/{arch}/seed{seed}", "full", Cell(FULL, arch=arch, seed=seed),
                            (("teacher", teacher.id),))
                steps += [full, *_evals(spec, full, teacher.id)]
    for budget in spec.budgets:
        for entry in spec.methods:
            for seed in range(spec.seeds):
                steps += _artifact_steps(spec, entry, budget, seed, teacher.id, spec.archs if probes else ())
    return Plan(spec, tuple(steps))


def _artifact_steps(spec: CompareSpec, entry: MethodEntry, budget: int, seed: int,
                    teacher: str, archs: tuple[str, ...]) -> list[Step]:
    cell = Cell(entry.name, entry.method, budget, seed=seed)
    distill = Step(f"distill/{entry.name}/N{budget}/seed{seed}", "distill", cell, (("teacher", teacher),))
    steps = [distill]
    if get_method(entry.method).keeps_labels:  # protocols that train on the artifact's labels
        steps += [Step(f"eval/{distill.id}/{spec.source}/{p.label}", "eval",
                       Cell(entry.name, entry.method, budget, None, seed, spec.source, p),
                       (("artifact", distill.id),))
                  for p in spec.protocols if not p.on_backbone]
    for arch in archs:
        pretrain = Step(f"pretrain/{entry.name}/N{budget}/{arch}/seed{seed}", "pretrain",
                        Cell(entry.name, entry.method, budget, arch, seed), (("artifact", distill.id),))
        steps += [pretrain, *_evals(spec, pretrain, teacher)]
    return steps


def _evals(spec: CompareSpec, backbone: Step, teacher: str, cell: Cell | None = None) -> list[Step]:
    """The evaluations of `backbone` on every target with every protocol, at its cell's seed."""
    base = cell or backbone.cell
    out = []
    for target in spec.targets:
        for protocol in spec.protocols:
            if not protocol.on_backbone:
                continue
            inputs = [("backbone", backbone.id)]
            if get_protocol(protocol.name).needs_teacher:
                inputs.append(("teacher", teacher))
            seed = f"/seed{base.seed}" if backbone.kind == "teacher" else ""
            out.append(Step(f"eval/{backbone.id}{seed}/{target}/{protocol.label}", "eval",
                            Cell(base.row, base.method, base.budget, base.arch, base.seed, target, protocol),
                            tuple(inputs)))
    return out
