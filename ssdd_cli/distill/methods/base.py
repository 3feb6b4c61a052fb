"""The `Method` contract, its registry, and the typed export a method hands to the writer.

A method declares its typed config (a frozen dataclass with the preset's defaults), how the
budget buys m distilled items (`plan`), the learnable distilled set (`init`), what the outer loop
optimises (`objective`, None for selection baselines) and what ends up in the artifact
(`finalize`). The engine (`distill.engine`) runs any objective; `distill.run` ties it together.

User options reach a config by name: `options` maps each option the method takes (the keyword
of the Python API, e.g. "pool_size") to the field it sets in the config (e.g. "krr.pool.size").
An option the method does not take is refused, naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import torch
from torch import Tensor

from ssdd_cli.budget import BudgetReport, ImageShape
from ssdd_cli.bundle.manifest import Approx, Augmentations, Parameterization, RawImages
from ssdd_cli.distill.approx import ApproxFit
from ssdd_cli.distill.engine import OuterConfig
from ssdd_cli.distill.inputs import DistillInputs
from ssdd_cli.distill.objectives.base import Objective
from ssdd_cli.distill.param import DistilledModule
from ssdd_cli.errors import UsageError
from ssdd_cli.presets import Preset
from ssdd_cli.progress import Callback
from ssdd_cli.registry import Registry

C = TypeVar("C")


@dataclass(frozen=True)
class Export:
    """What a method writes: the artifact's tensors and the layout fields of its manifest.

    approx_fit: the approximation networks' fit (reported, not stored), if the method fits any.
    """

    tensors: dict[str, Tensor]
    parameterization: Parameterization | None = None
    raw: RawImages | None = None
    augmentations: Augmentations | None = None
    approx: Approx | None = None
    approx_fit: ApproxFit | None = None


@dataclass(frozen=True)
class Optimization:
    """What the outer loop runs for a method: its objective and the optimiser's settings."""

    objective: Objective
    outer: OuterConfig


class Method(Generic[C]):
    """A distillation method (see the module docstring); subclasses register with `METHODS`."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    options: ClassVar[Mapping[str, str]] = {}
    needs_teacher: ClassVar[bool] = True  # False: no teacher is trained or loaded (the DM family)
    needs_labels: ClassVar[bool] = False  # True: the source must be labelled (the DM family)
    # True: the artifact stores class labels when the source has them (the DM family, and the
    # selections, which keep real images), so the `classify` protocol can train on it.
    keeps_labels: ClassVar[bool] = False
    # False: the method's network passes run in float32 whatever the run's precision (the DM
    # family; `distill.run` records fp32 for it).
    uses_precision: ClassVar[bool] = True

    def defaults(self, preset: Preset, N: int, d_y: int) -> C:
        """The config for budget N with the preset's values."""
        raise NotImplementedError

    def configure(self, preset: Preset, N: int, d_y: int, **options: Any) -> C:
        """`defaults` with every option that is not None set (None means the preset's value)."""
        config = self.defaults(preset, N, d_y)
        for option, value in options.items():
            if value is None:
                continue
            if option not in self.options:
                raise UsageError(f"method {self.name!r} has no setting {option!r}; it takes: "
                                 f"{', '.join(self.options) or 'none'}.", option=option)
            config = replace_path(config, self.options[option], value)
        return config

    def plan(self, config: C, shape: ImageShape, d_y: int) -> BudgetReport:
        """The budget of this config and the number m of distilled items it buys (d_y: the
        teacher's feature size, 0 for a method without a teacher)."""
        raise NotImplementedError

    def init(self, config: C, plan: BudgetReport, inputs: DistillInputs) -> DistilledModule:
        """The learnable distilled set at initialisation."""
        raise NotImplementedError

    def optimization(self, config: C, inputs: DistillInputs) -> Optimization | None:
        """The objective and outer settings, or None for a method that only selects."""
        return None

    def finalize(self, distilled: DistilledModule, config: C, generator: torch.Generator,
                 callback: Callback) -> Export:
        """The artifact's tensors and layout after the outer loop (e.g. after fitting Q_a)."""
        raise NotImplementedError


METHODS: Registry[Method[Any]] = Registry("method")


def register_method(cls: type[Method[Any]]) -> type[Method[Any]]:
    """Class decorator: register an instance of a `Method` subclass under its `name`."""
    METHODS.add(cls.name, cls())
    return cls


def get_method(name: str) -> Method[Any]:
    return METHODS.get(name)


def list_methods() -> list[str]:
    return METHODS.names()


def replace_path(config: C, path: str, value: Any) -> C:
    """A copy of the (nested) frozen dataclass `config` with the field at dotted `path` set."""
    head, _, rest = path.partition(".")
    if rest:
        value = replace_path(getattr(config, head), rest, value)
    return dataclasses.replace(config, **{head: value})  # type: ignore[type-var]


def option_of(method: Method[Any], path: str) -> str | None:
    """The option that sets the config field at `path`, if there is one."""
    return next((o for o, p in method.options.items() if p == path), None)
