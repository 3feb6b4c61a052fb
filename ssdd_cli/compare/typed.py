"""Values read from a comparison file, checked and converted by the type of the field they set.

A TOML or YAML file says `steps = "300"` or `lr = 1` as easily as `steps = 300`; the library's
config dataclasses do not check types. Each value is validated (pydantic, lax mode) against the
annotation of the dataclass field it lands in, so a wrong type is one sentence naming the
setting, and `lr = 1` and `lr = 1.0` become the same float (and so the same step key).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ssdd_cli.distill.methods import Method
from ssdd_cli.errors import UsageError


def field_type(cls: type, name: str) -> Any:
    """The resolved annotation of dataclass `cls`'s field `name` (`Any` where it cannot be
    resolved, e.g. a method whose config is not a dataclass: its value then passes as it is)."""
    try:
        return typing.get_type_hints(cls)[name]
    except (KeyError, NameError, TypeError):
        return Any


def check_value(annotation: Any, value: Any, what: str, option: str) -> Any:
    """`value` as `annotation` says, or a `UsageError` naming `what`."""
    try:
        return TypeAdapter(annotation).validate_python(value)
    except ValidationError as e:
        raise UsageError(f"{what} = {value!r} is invalid ({e.errors()[0]['msg'].lower()}).",
                         option=option) from None


def method_options(method: Method[Any], defaults: Any, options: Mapping[str, Any],
                   entry: str) -> dict[str, Any]:
    """A method entry's options, each typed by the config field it sets (`Method.options`)."""
    out = {}
    for option, value in options.items():
        *heads, last = method.options[option].split(".")
        owner = defaults
        for head in heads:
            owner = getattr(owner, head)
        out[option] = check_value(field_type(type(owner), last), value, f"method entry {entry!r}: {option}",
                                  "methods")
    return out


def config_of(cls: type, options: Mapping[str, Any], what: str, option: str) -> Any:
    """`cls(**options)` for a config dataclass, every option known and typed."""
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in options if k not in known]
    if unknown:
        raise UsageError(f"{what} has no setting {unknown[0]!r}; it takes: {', '.join(known)}.",
                         option=option)
    return cls(**{k: check_value(field_type(cls, k), v, f"{what}: {k}", option) for k, v in options.items()})
