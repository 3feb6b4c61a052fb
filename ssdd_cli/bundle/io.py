"""Reading and writing `.ssdd` files (format v1; spec in formats/ssdd-v1.md).

The reader parses the safetensors header itself (`bundle.header`, torch-free) and decodes tensors
with numpy, so that every malformed input, however mangled, ends in one of the format's own
exceptions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as st_save

from ssdd_cli.bundle.errors import NonFiniteError, TensorMismatchError
from ssdd_cli.bundle.header import DTYPES, parse_manifest, read_header, read_manifest
from ssdd_cli.bundle.manifest import MANIFEST_KEY, Manifest, expected_tensors
from ssdd_cli.io import atomic_write_bytes

_NUMPY: dict[str, np.dtype[Any]] = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}

__all__ = ["Bundle", "load_bundle", "read_manifest", "save_bundle"]


@dataclass(frozen=True)
class Bundle:
    """A loaded artifact: its manifest and its tensors (on the CPU)."""

    manifest: Manifest
    tensors: dict[str, torch.Tensor]


def save_bundle(path: str | os.PathLike[str], manifest: Manifest, tensors: dict[str, torch.Tensor]) -> Path:
    """Write an artifact atomically after checking the tensors against the manifest."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    _check_tensors(manifest, {k: (tuple(v.shape), _dtype_name(v)) for k, v in tensors.items()})
    for name, t in tensors.items():
        _check_finite(name, t)
    data = st_save(tensors, metadata={MANIFEST_KEY: manifest.model_dump_json()})
    return atomic_write_bytes(path, data)


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read, validate and decode a whole artifact."""
    path = Path(path)
    header, data, data_start = read_header(path, header_only=False)
    manifest = parse_manifest(header, path)
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    _check_tensors(manifest, {k: (tuple(v["shape"]), DTYPES[v["dtype"]][0]) for k, v in entries.items()})
    tensors: dict[str, torch.Tensor] = {}
    for name, entry in entries.items():
        begin, end = entry["data_offsets"]
        le = _NUMPY[entry["dtype"]]
        array = np.frombuffer(data, dtype=le, count=(end - begin) // le.itemsize,
                              offset=data_start + begin)
        t = torch.from_numpy(array.astype(le.newbyteorder("="))).reshape(entry["shape"])
        _check_finite(name, t)
        tensors[name] = t
    return Bundle(manifest, tensors)


def _check_tensors(manifest: Manifest, found: dict[str, tuple[tuple[int, ...], str]]) -> None:
    want = expected_tensors(manifest)
    missing = sorted(set(want) - set(found))
    extra = sorted(set(found) - set(want))
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(extra)}"] if extra else []
        )
        raise TensorMismatchError(f"the tensors disagree with the manifest ({'; '.join(parts)}).")
    for name, (shape, dtype) in want.items():
        if found[name] != (shape, dtype):
            got_shape, got_dtype = found[name]
            raise TensorMismatchError(
                f"tensor {name!r} is {got_dtype} {list(got_shape)} but the manifest says "
                f"{dtype} {list(shape)}."
            )


def _check_finite(name: str, t: torch.Tensor) -> None:
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise NonFiniteError(f"tensor {name!r} holds NaN or Inf values; the artifact is unusable.")


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")
