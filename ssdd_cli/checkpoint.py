"""Training checkpoints as safetensors: a nested state tree ↔ flat tensors + JSON. No pickle.

A state tree (dicts, lists, tuples, numbers, strings, None and tensors, e.g. an optimiser's
`state_dict()` or a generator's state) is split into a flat `{name: tensor}` dict for the
safetensors body and a JSON skeleton for the metadata, in which each tensor is replaced by
`{"__tensor__": name}`. Dicts are stored as `{"__dict__": [[key, value], ...]}` so integer keys
(the optimiser's parameter ids) survive the round trip, and tuples as `{"__tuple__": [...]}`.
Each checkpoint names its `kind`, so one job never resumes from another's file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from ssdd_cli.errors import SSDDError
from ssdd_cli.io import atomic_write


class CheckpointError(SSDDError):
    """A checkpoint that cannot be read, or that belongs to another kind of job."""


def flatten_state(state: Any, prefix: str) -> tuple[dict[str, Tensor], Any]:
    """Split a state tree into ({prefix.path: tensor}, JSON-able skeleton)."""
    tensors: dict[str, Tensor] = {}

    def walk(obj: Any, path: str) -> Any:
        if isinstance(obj, Tensor):
            # Clone: safetensors refuses tensors that share storage (views, tied weights).
            tensors[path] = obj.detach().to("cpu").contiguous().clone()
            return {"__tensor__": path}
        if isinstance(obj, dict):
            return {"__dict__": [[k, walk(v, f"{path}.{k}")] for k, v in obj.items()]}
        if isinstance(obj, tuple):
            return {"__tuple__": [walk(v, f"{path}.{i}") for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(obj)]
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        raise TypeError(f"cannot store a {type(obj).__name__} at {path} in a checkpoint")

    return tensors, walk(state, prefix)


def unflatten_state(skeleton: Any, tensors: dict[str, Tensor]) -> Any:
    """Inverse of `flatten_state`: rebuild the tree, taking tensors from `tensors` by name."""
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__tuple__" in skeleton:
            return tuple(unflatten_state(v, tensors) for v in skeleton["__tuple__"])
        return {k: unflatten_state(v, tensors) for k, v in skeleton["__dict__"]}
    return skeleton


def save_checkpoint(path: str | os.PathLike[str], kind: str, state: dict[str, Any],
                    info: dict[str, Any]) -> None:
    """Write `state` (a tree, see `flatten_state`) and JSON-able `info` atomically to `path`."""
    tensors, skeleton = flatten_state(state, "s")
    metadata = {"ssdd.kind": kind, "ssdd.state": json.dumps(skeleton), "ssdd.info": json.dumps(info)}

    def write(tmp: Path) -> None:
        save_file(tensors, str(tmp), metadata=metadata)

    atomic_write(path, write)


def load_checkpoint(path: str | os.PathLike[str], kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint of `kind` written by `save_checkpoint`: (state tree, info)."""
    fix = "delete it, or rerun without --resume to start over"
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except BaseException as e:  # safetensors' Rust panics derive from BaseException
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise CheckpointError(f"checkpoint {path} is unreadable; {fix}.") from None
    if metadata.get("ssdd.kind") != kind:
        raise CheckpointError(f"{path} is not a {kind} checkpoint; {fix}.")
    try:
        state = unflatten_state(json.loads(metadata["ssdd.state"]), tensors)
        info = json.loads(metadata["ssdd.info"])
    except (KeyError, ValueError, TypeError):
        raise CheckpointError(f"checkpoint {path} is damaged; {fix}.") from None
    return state, info
