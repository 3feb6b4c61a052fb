"""Checkpoints as safetensors (no pickle), each bound to one run by a fingerprint.

A state tree (dicts, lists, tuples, numbers, strings, None and tensors, e.g. an optimiser's
`state_dict()` or a generator's state) is split into a flat `{name: tensor}` dict for the
safetensors body and a JSON skeleton for the metadata, in which each tensor is replaced by
`{"__tensor__": name}`. Dicts are stored as `{"__dict__": [[key, value], ...]}` so integer keys
(the optimiser's parameter ids) survive the round trip, and tuples as `{"__tuple__": [...]}`.

A `Checkpointer` writes its run's `kind` and `fingerprint` (every setting of the run, flat, plus
a hash of its data) beside the state, and refuses to resume from a checkpoint whose kind or
fingerprint differ, naming the first difference: a resumed run is always the run it claims to be.
Under torchrun only rank 0 writes (every rank holds the same state); every rank reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from ssdd_cli.errors import CheckpointError
from ssdd_cli.io import atomic_write, is_library_failure
from ssdd_cli.kit.distributed import is_main


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


def tensor_sha256(*tensors: Tensor) -> str:
    """sha256 of the tensors' dtypes, shapes and raw bytes (on the CPU): a fingerprint of data."""
    h = hashlib.sha256()
    for tensor in tensors:
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{t.dtype}{list(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# A field added to a config after runs and comparison stores recorded it: it enters the settings
# only when it differs from its default (the behaviour from before it existed), so those runs'
# checkpoints and store steps keep their keys. `field(default=..., metadata=KEYED_WHEN_SET)`.
KEYED_WHEN_SET = {"keyed": "when-set"}


def flat_settings(config: Any, prefix: str = "") -> dict[str, Any]:
    """A (nested) dataclass as {dotted.field: JSON-able value}, in field order; a field marked
    `KEYED_WHEN_SET` is left out while it holds its default."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if KEYED_WHEN_SET.items() <= f.metadata.items() and value == f.default:
            continue
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(flat_settings(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = json.loads(json.dumps(value, default=str))
    return out


class Checkpointer:
    """The checkpoint file of one run.

    path: where it lives (written atomically). kind: the job ("teacher", "pretrain", "distill").
    fingerprint: flat {setting: value} of everything that defines the run, including a hash of
        its data under "data"; JSON-able. options: the user-facing option name of a setting, where
        it differs from the setting's own name, so a refusal names what the user can change.
    """

    def __init__(self, path: str | os.PathLike[str], kind: str, fingerprint: Mapping[str, Any],
                 options: Mapping[str, str] | None = None) -> None:
        self.path = Path(path)
        self.kind = kind
        self.fingerprint = json.loads(json.dumps(dict(fingerprint), default=str))
        self.options = dict(options or {})

    def exists(self) -> bool:
        return self.path.is_file()

    def remove(self) -> None:
        if is_main():
            self.path.unlink(missing_ok=True)

    def save(self, state: Any, progress: Mapping[str, Any]) -> None:
        """Write `state` (a tree) and JSON-able `progress` (step, losses, ...) atomically (on rank 0
        alone under torchrun)."""
        if not is_main():
            return
        tensors, skeleton = flatten_state(state, "s")
        metadata = {"ssdd.kind": self.kind, "ssdd.state": json.dumps(skeleton),
                    "ssdd.fingerprint": json.dumps(self.fingerprint), "ssdd.info": json.dumps(dict(progress))}
        atomic_write(self.path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))

    def load(self) -> tuple[Any, dict[str, Any]]:
        """(state tree, progress) of this run's checkpoint; `CheckpointError` if it is unreadable,
        of another kind, or made by a run with other settings or data."""
        fix = "delete it, or start over without resuming"
        try:
            with safe_open(str(self.path), framework="pt") as f:
                metadata = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except BaseException as e:
            if not is_library_failure(e):
                raise
            raise CheckpointError(f"checkpoint {self.path} is unreadable; {fix}.") from None
        if metadata.get("ssdd.kind") != self.kind:
            raise CheckpointError(f"{self.path} is not a {self.kind} checkpoint; {fix}.")
        try:
            state = unflatten_state(json.loads(metadata["ssdd.state"]), tensors)
            info = json.loads(metadata["ssdd.info"])
            recorded = json.loads(metadata["ssdd.fingerprint"])
        except (KeyError, ValueError, TypeError):
            raise CheckpointError(f"checkpoint {self.path} is damaged; {fix}.") from None
        self._check(recorded)
        return state, info

    def _check(self, recorded: dict[str, Any]) -> None:
        for key in dict.fromkeys([*self.fingerprint, *recorded]):
            old, new = recorded.get(key, "(unset)"), self.fingerprint.get(key, "(unset)")
            if old == new:
                continue
            if key == "data":
                raise CheckpointError(f"checkpoint {self.path} was made on other data than this run's; "
                                      "rerun on the same data, or start over without resuming.")
            raise CheckpointError(
                f"checkpoint {self.path} was made with {key} = {old!r}, but this run has {new!r}; "
                "rerun with the same settings, or start over without resuming.",
                option=self.options.get(key, key.rsplit(".", 1)[-1]))
