"""What a comparison asks for: the user's file or options (pydantic, strict) → a typed `CompareSpec`.

A comparison is written as a mapping, the same whether it comes from a TOML or YAML file or from
the command line's options (which build the mapping the file would hold):

    source = "digits"
    budgets = [20]                      # N, in images (default: the source preset's)
    methods = ["ssdd", "krr-st"]        # or tables with each method's options:
    archs = ["convnet", "resnet10"]     # backbones pretrained on every artifact
    seeds = 3                           # seeds 0, 1, 2 run through the whole chain
    protocols = ["linear", "linear@5shot", "knn", "align"]
    targets = ["digits"]                # default: the source itself
    references = true                   # the random-init and teacher lines
    full = true                         # the "full" row: pretraining on every training image
    full_steps = 1000                   # its SGD steps (default: the preset's, about an artifact's
                                        # pretraining; `[pretrain] epochs` does not change it)
    draws = 20                          # labelled draws a few-shot probe averages per backbone
    split = "test"                      # the split probes score: "val" to choose settings
    precision = "fp32"                  # of the training passes: fp32, bf16 or auto
    keep_backbones = true               # false: delete a backbone's weights once it is evaluated
    [arch_options.resnet10]             # an architecture's options (`ssdd models`), e.g. its width
    width = 16

    [methods.ssdd]
    steps = 300
    [methods."ssdd@init"]               # a named entry: its own row in the table
    method = "ssdd"
    steps = 0
    [methods."krr-st@raw"]
    method = "krr-st"
    target_scaling = "raw"              # the teacher's raw features as targets (default: standardized)
    [teacher]                           # TeacherConfig options (or `file`: a teacher to use)
    epochs = 20
    [pretrain]                          # PretrainConfig options
    epochs = 50
    decay_norm_bias = false             # no weight decay on BatchNorm weights and biases
    augment = "dsa"                     # augment the set's images in every minibatch
    [eval.linear]                       # the protocol's own config (LinearProbeConfig)
    epochs = 50

A method entry's options are the method's own (`Method.options`, the keywords of
`DistillRequest.options`); `None` or an absent key means the preset's value. A protocol is a
registered name, `name@Kshot` for its few-shot form with K labelled images per class, or
`name@P%` for its limited-label form on a stratified P% of the labelled train images.

Choices where the issue is silent: `seeds` is a count, and seed s is used by every step of its
chain (distillation, pretraining, probe), so mean ± std spans the whole pipeline's randomness;
the defaults are the issue's example (ssdd, krr-st, random, kmeans; convnet; 3 seeds; linear).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ssdd_cli.compare.protocol import ProtocolSpec
from ssdd_cli.data import source_preset
from ssdd_cli.distill.methods import get_method
from ssdd_cli.errors import UsageError
from ssdd_cli.models import backbone_options
from ssdd_cli.teacher.targets import DEFAULT_TARGETS, TARGET_SCALINGS
from ssdd_cli.train.protocols import get_protocol

DEFAULT_METHODS = ("ssdd", "krr-st", "random", "kmeans")
DEFAULT_ARCHS = ("convnet",)
DEFAULT_PROTOCOLS = ("linear",)
DRAWS = 20  # few-shot draws per backbone (CompareSpec.draws)
_ENTRY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_@+-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TeacherSection(_Strict):
    """The teacher of the source: trained with these `TeacherConfig` options, or taken from `file`."""

    file: str | None = None
    arch: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0


class PretrainSection(_Strict):
    """`PretrainConfig` options for every pretraining (None: the preset's, as `ssdd pretrain`)."""

    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    decay_norm_bias: bool | None = None
    schedule: str | None = None
    augment: str | None = None  # "dsa": each minibatch's images augmented, their targets kept


class CompareFile(_Strict):
    """The comparison as written in a file (or built from options); see the module docstring."""

    source: str
    budgets: list[int] | int | None = None
    methods: list[str] | dict[str, dict[str, Any]] | None = None
    archs: list[str] | None = None
    seeds: int = Field(3, ge=1)
    protocols: list[str] | None = None
    targets: list[str] | None = None
    references: bool = True
    full: bool = True
    full_steps: int | None = Field(None, ge=1)
    draws: int = Field(DRAWS, ge=1)
    split: Literal["test", "val"] = "test"
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    keep_backbones: bool = True
    arch_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    teacher: TeacherSection = TeacherSection()
    pretrain: PretrainSection = PretrainSection()
    eval: dict[str, dict[str, Any]] = Field(default_factory=dict)


@dataclass(frozen=True)
class MethodEntry:
    """One row of the comparison: a registered method under a name, with its options and the
    scaling of its teacher targets (`DistillRequest.target_scaling`)."""

    name: str
    method: str
    options: Mapping[str, Any] = field(default_factory=dict)
    target_scaling: str = DEFAULT_TARGETS


@dataclass(frozen=True)
class CompareSpec:
    """A validated comparison: every name checked against its registry, defaults filled in.

    full: whether to plan the "full" reference row (`compare.plan`); full_steps: its SGD steps
    (None: the preset's `full_steps`; `train.full.full_config`). draws: how many labelled draws
    a few-shot probe (`name@Kshot`) averages for one backbone, seeds seed·draws … seed·draws +
    draws − 1, so every backbone of one seed sees the same draws (paired); one draw of K images
    per class is too noisy to rank sets (issue 33). split: the split every
    probe scores, "test", or "val" to choose settings (`ImageSet.validation`). precision: of the
    teacher's, distillation's and pretraining's network passes (`kit.precision`; "fp32" by
    default, so the numbers do not depend on the hardware's bf16 units). keep_backbones: False
    deletes each backbone's weights once every evaluation of it in the plan is done, keeping its
    record (`compare.runner`): the store keeps its results in kilobytes, not a network per cell,
    and a later run that needs the weights makes them anew. arch_options: an
    architecture's own options (`create_backbone` keywords) for every network of that
    architecture the comparison builds, e.g. {"resnet10": {"width": 16}}. teacher, pretrain: the
    options given (None: the preset's). eval: protocol name → options of
    its config type. Validation of values (e.g. a negative epoch count) happens when the configs
    are built, before any work (`compare.runner.check`).
    """

    source: str
    budgets: tuple[int, ...]
    methods: tuple[MethodEntry, ...]
    archs: tuple[str, ...]
    seeds: int
    protocols: tuple[ProtocolSpec, ...]
    targets: tuple[str, ...]
    references: bool = True
    full: bool = True
    full_steps: int | None = None
    draws: int = DRAWS
    split: str = "test"
    precision: str = "fp32"
    keep_backbones: bool = True
    arch_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    teacher: Mapping[str, Any] = field(default_factory=dict)
    pretrain: Mapping[str, Any] = field(default_factory=dict)
    eval: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data (for results.json)."""
        out = dataclasses.asdict(self)
        out["protocols"] = [p.label for p in self.protocols]
        return out


def spec_from_mapping(raw: Mapping[str, Any]) -> CompareSpec:
    """Validate a comparison written as a mapping (a parsed file, or `options_mapping`)."""
    try:
        doc = CompareFile.model_validate(dict(raw))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if not isinstance(p, int)) or "comparison"
        option = str(first["loc"][0]) if first["loc"] else None
        raise UsageError(f"the comparison's {where} is invalid: {first['msg']}.", option=option) from None
    preset = source_preset(doc.source)
    budgets = doc.budgets if doc.budgets is not None else preset.budgets.default
    budgets = [budgets] if isinstance(budgets, int) else budgets
    archs = tuple(doc.archs or DEFAULT_ARCHS)
    for arch in archs:
        backbone_options(arch)
    targets = tuple(doc.targets or (doc.source,))
    for target in targets:
        source_preset(target)
    if doc.teacher.arch is not None:
        backbone_options(doc.teacher.arch)
    protocols = tuple(ProtocolSpec.parse(p) for p in (doc.protocols or DEFAULT_PROTOCOLS))
    for what, values in (("budgets", budgets), ("archs", archs), ("targets", targets),
                         ("protocols", [p.label for p in protocols])):
        _unique(values, what)
    if any(not isinstance(n, int) or n < 1 for n in budgets):
        raise UsageError(f"every budget must be a positive number of images, got {budgets}.",
                         option="budgets")
    eval_options = {name: dict(options) for name, options in doc.eval.items()}
    for name in eval_options:
        get_protocol(name)
    return CompareSpec(
        source=doc.source, budgets=tuple(budgets), methods=_method_entries(doc.methods), archs=archs,
        seeds=doc.seeds, protocols=protocols, targets=targets, references=doc.references, full=doc.full,
        full_steps=doc.full_steps, draws=doc.draws, split=doc.split, precision=doc.precision,
        keep_backbones=doc.keep_backbones, arch_options=_arch_options(doc.arch_options, archs),
        teacher=doc.teacher.model_dump(exclude_none=True),
        pretrain=doc.pretrain.model_dump(exclude_none=True), eval=eval_options)


def _arch_options(given: dict[str, dict[str, Any]], archs: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Each architecture's options, for architectures of the comparison and options they take."""
    for arch, options in given.items():
        if arch not in archs:
            raise UsageError(f"arch_options names {arch!r}, which is not among the comparison's archs "
                             f"({', '.join(archs)}).", option="arch_options")
        unknown = [o for o in options if o not in backbone_options(arch)]
        if unknown:
            raise UsageError(f"arch_options.{arch} sets {unknown[0]!r}, which {arch} does not take; it "
                             f"takes: {', '.join(backbone_options(arch)) or 'none'}.", option="arch_options")
    return {arch: dict(options) for arch, options in given.items()}


def _method_entries(methods: list[str] | dict[str, dict[str, Any]] | None) -> tuple[MethodEntry, ...]:
    if methods is None:
        methods = list(DEFAULT_METHODS)
    if isinstance(methods, list):
        _unique(methods, "methods")
        methods = {name: {} for name in methods}
    entries = []
    for name, options in methods.items():
        if not _ENTRY.match(name):
            raise UsageError(f"method entry {name!r} needs a name of letters, digits and _ @ + - "
                             "(no dots or slashes).", option="methods")
        options = dict(options)
        method = get_method(str(options.pop("method", name)))
        scaling = str(options.pop("target_scaling", DEFAULT_TARGETS))
        if scaling not in TARGET_SCALINGS or not method.needs_teacher and "target_scaling" in methods[name]:
            why = (f"method {method.name!r} regresses no teacher targets" if scaling in TARGET_SCALINGS
                   else f"choose one of: {', '.join(TARGET_SCALINGS)}")
            raise UsageError(f"method entry {name!r} sets target_scaling {scaling!r}; {why}.",
                             option="methods")
        unknown = [o for o in options if o not in method.options]
        if unknown:
            raise UsageError(f"method entry {name!r} sets {unknown[0]!r}, which method {method.name!r} "
                             f"does not take; it takes: {', '.join(method.options) or 'none'}.",
                             option="methods")
        entries.append(MethodEntry(name, method.name, options, scaling))
    if not entries:
        raise UsageError("the comparison needs at least one method.", option="methods")
    return tuple(entries)


def _unique(values: Any, what: str) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise UsageError(f"{what} lists {value!r} twice; give each once.", option=what)
        seen.add(value)
