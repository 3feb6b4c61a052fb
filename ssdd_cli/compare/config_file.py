"""Reading a comparison: a TOML or YAML file, and the command line's overrides of it.

`load_config_file` gives the mapping a file holds; `merge` lays the command line's options over
it; `apply_setting` applies one `--set key.path=value`. `spec.spec_from_mapping` then validates
the result, the same way whichever way it came.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssdd_cli.errors import UsageError


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a `.toml`, `.yaml` or `.yml` file (a `UsageError` if unreadable)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise UsageError(f"cannot read {path}: a comparison file ends in .toml, .yaml or .yml.",
                         option="config")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read {path} ({e.strerror or e}); check the path.",
                         option="config") from None
    doc = _parse_toml(text, path) if suffix == ".toml" else _parse_yaml(text, path)
    if not isinstance(doc, dict):
        raise UsageError(f"{path} does not hold a mapping of settings; see `ssdd compare --help`.",
                         option="config")
    return doc


def _parse_toml(text: str, path: Path) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path} is not valid TOML ({e}).", option="config") from None


def _parse_yaml(text: str, path: Path) -> Any:
    import yaml  # deferred: only comparisons read YAML

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise UsageError(f"{path} is not valid YAML{line}.", option="config") from None


def parse_value(text: str) -> Any:
    """A `--set key=value` value as TOML reads it (300, 0.5, true, [1, 2], "x"), else the text."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_setting(raw: dict[str, Any], assignment: str) -> dict[str, Any]:
    """`raw` with `key.path=value` set (`methods.ssdd.steps=300`, `pretrain.epochs=5`).

    A list of methods becomes tables first, so a method's option can be set on it.
    """
    key, sep, value = assignment.partition("=")
    parts = [p.strip() for p in key.split(".")]
    if not sep or not all(parts):
        raise UsageError(f"cannot read setting {assignment!r}; write it as key.path=value, e.g. "
                         "methods.ssdd.steps=300.", option="settings")
    out = dict(raw)
    if parts[0] == "methods" and isinstance(out.get("methods"), list):
        out["methods"] = {name: {} for name in out["methods"]}
    node = out
    for part in parts[:-1]:
        child = node.get(part)
        child = dict(child) if isinstance(child, dict) else {}
        node[part] = child
        node = child
    node[parts[-1]] = parse_value(value.strip())
    return out


def merge(file: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The file's mapping overridden by the options given (None: not given).

    A `methods` list from the options picks the entries: one the file defines keeps its options.
    An `archs` list narrows the file's `arch_options` to those archs (the file's options for an
    arch left out are not an error).
    """
    out = dict(file)
    for key, value in options.items():
        if value is None:
            continue
        if key == "methods" and isinstance(value, list) and isinstance(file.get("methods"), dict):
            value = {name: file["methods"].get(name, {}) for name in value}
        if key == "archs" and isinstance(file.get("arch_options"), dict):
            out["arch_options"] = {a: o for a, o in file["arch_options"].items() if a in value}
        out[key] = value
    return out
