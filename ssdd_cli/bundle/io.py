"""Reading and writing `.ssdd` files (format v1; spec in formats/ssdd-v1.md).

The reader parses the safetensors header itself and decodes tensors with numpy, so that every
malformed input, however mangled, ends in one of the format's own exceptions.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ValidationError
from safetensors.torch import save as st_save

from ssdd_cli.bundle.errors import (
    ManifestError,
    MissingManifestError,
    NonFiniteError,
    NotSafetensorsError,
    TensorMismatchError,
    TruncatedFileError,
    UnsupportedVersionError,
)
from ssdd_cli.bundle.manifest import (
    FORMAT_MAJOR,
    FORMAT_MINOR,
    MANIFEST_KEY,
    Manifest,
    expected_tensors,
)
from ssdd_cli.errors import DataError
from ssdd_cli.io import atomic_write_bytes

_MAX_HEADER = 100 * 1024 * 1024
_DTYPES: dict[str, tuple[str, np.dtype[Any]]] = {
    "F32": ("float32", np.dtype("<f4")),
    "I64": ("int64", np.dtype("<i8")),
}


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


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate only the manifest (the header), without touching tensor data."""
    header, _, _ = _read_header(Path(path), header_only=True)
    return _parse_manifest(header, Path(path))


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read, validate and decode a whole artifact."""
    path = Path(path)
    header, data, data_start = _read_header(path, header_only=False)
    manifest = _parse_manifest(header, path)
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    _check_tensors(manifest, {k: (tuple(v["shape"]), _DTYPES[v["dtype"]][0]) for k, v in entries.items()})
    tensors: dict[str, torch.Tensor] = {}
    for name, entry in entries.items():
        begin, end = entry["data_offsets"]
        le = _DTYPES[entry["dtype"]][1]
        array = np.frombuffer(data, dtype=le, count=(end - begin) // le.itemsize,
                              offset=data_start + begin)
        t = torch.from_numpy(array.astype(le.newbyteorder("="))).reshape(entry["shape"])
        _check_finite(name, t)
        tensors[name] = t
    return Bundle(manifest, tensors)


def _read_header(path: Path, *, header_only: bool) -> tuple[dict[str, Any], bytes, int]:
    """Parse and structurally validate the safetensors header; return (header, bytes, data start)."""
    if not path.is_file():
        raise DataError(f"{path} does not exist; check the path (an artifact is written by `ssdd distill`).")
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise NotSafetensorsError(f"{path} is not a .ssdd artifact (only {size} bytes, no header).")
        (n,) = struct.unpack("<Q", prefix)
        if n == 0 or n > _MAX_HEADER:
            raise NotSafetensorsError(f"{path} is not a .ssdd artifact (not a safetensors header).")
        if 8 + n > size:
            first = f.read(1)
            if first == b"{":
                raise _truncated(path, "its header")
            raise NotSafetensorsError(f"{path} is not a .ssdd artifact (not a safetensors header).")
        raw = f.read(n) if header_only else None
        if not header_only:
            f.seek(0)
            blob = f.read()
            raw = blob[8 : 8 + n]
        else:
            blob = b""
    assert raw is not None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise NotSafetensorsError(f"{path} is not a .ssdd artifact (its header is not JSON).") from None
    if not isinstance(header, dict):
        raise NotSafetensorsError(f"{path} is not a .ssdd artifact (its header is not a JSON object).")
    data_len = size - 8 - n
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise NotSafetensorsError(f"{path} has a malformed safetensors metadata block.")
            continue
        spans.append(_check_entry(path, name, entry, data_len))
    spans.sort()
    position = 0
    for begin, end in spans:
        if begin != position:
            raise NotSafetensorsError(f"{path} has overlapping or gapped tensor data; it is corrupt.")
        position = end
    if position != data_len:
        if position > data_len:
            raise _truncated(path, "tensor data")
        raise NotSafetensorsError(f"{path} has trailing bytes after its tensors; it is corrupt.")
    return header, blob, 8 + n


def _truncated(path: Path, what: str) -> TruncatedFileError:
    return TruncatedFileError(f"{path} is truncated ({what} is cut short); copy or distill it again.")


def _check_entry(path: Path, name: str, entry: Any, data_len: int) -> tuple[int, int]:
    bad = NotSafetensorsError(f"{path} has a malformed entry for tensor {name!r}; it is corrupt.")
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise bad
    shape, offsets, dtype = entry["shape"], entry["data_offsets"], entry["dtype"]
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
        raise bad
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
        raise bad
    if not isinstance(dtype, str):
        raise bad
    if dtype not in _DTYPES:
        raise TensorMismatchError(
            f"{path}: tensor {name!r} has dtype {dtype}; format v1 stores only F32 and I64."
        )
    begin, end = offsets
    if not 0 <= begin <= end or end - begin != math.prod(shape) * _DTYPES[dtype][1].itemsize:
        raise bad
    if end > data_len:
        raise _truncated(path, f"tensor {name!r}")
    return begin, end


def _parse_manifest(header: dict[str, Any], path: Path) -> Manifest:
    meta = header.get("__metadata__") or {}
    if MANIFEST_KEY not in meta:
        raise MissingManifestError(
            f"{path} is a safetensors file but not a .ssdd artifact (no {MANIFEST_KEY} metadata)."
        )
    try:
        doc = json.loads(meta[MANIFEST_KEY])
    except json.JSONDecodeError:
        raise ManifestError(f"{path} has a manifest that is not valid JSON; the file is corrupt.") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{path} has a manifest that is not a JSON object; the file is corrupt.")
    version = doc.get("format_version")
    major, minor = _parse_version(version, path)
    if major > FORMAT_MAJOR:
        raise UnsupportedVersionError(
            f"{path} uses .ssdd format {version}, newer than the {FORMAT_MAJOR}.x this ssdd reads; "
            "upgrade ssdd to read it."
        )
    if major < FORMAT_MAJOR:
        raise UnsupportedVersionError(f"{path} declares format {version}, which never existed.")
    if minor > FORMAT_MINOR:
        # A newer minor version may add fields; a v1.0 reader ignores what it does not know.
        doc = _drop_unknown(Manifest, doc)
    try:
        return Manifest.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "manifest"
        raise ManifestError(f"{path} has an invalid manifest ({where}: {first['msg']}).") from None


def _parse_version(version: Any, path: Path) -> tuple[int, int]:
    if isinstance(version, str):
        parts = version.split(".")
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            return int(parts[0]), int(parts[1])
    raise ManifestError(f"{path} has no valid format_version in its manifest; the file is corrupt.")


def _drop_unknown(model: type[BaseModel], doc: dict[str, Any]) -> dict[str, Any]:
    """Recursively keep only the fields `model` knows (forward compatibility within a major)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        field = model.model_fields.get(key)
        if field is None:
            continue
        sub = _model_in(field.annotation)
        out[key] = _drop_unknown(sub, value) if sub is not None and isinstance(value, dict) else value
    return out


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


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
