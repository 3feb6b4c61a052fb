"""The `.ssdd` header: parse and validate a file's safetensors header and manifest, never its data.

Torch-free (and numpy-free), so `ssdd info` and every check of an artifact's manifest start fast;
`bundle.io` decodes the tensors on top of it.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ssdd_cli.bundle.errors import (
    ManifestError,
    MissingManifestError,
    NotSafetensorsError,
    TensorMismatchError,
    TruncatedFileError,
    UnsupportedVersionError,
)
from ssdd_cli.bundle.manifest import FORMAT_MAJOR, FORMAT_MINOR, MANIFEST_KEY, Manifest
from ssdd_cli.errors import DataError

MAX_HEADER = 100 * 1024 * 1024
# The dtypes format v1 stores: safetensors name -> (the manifest's name, bytes per element).
DTYPES: dict[str, tuple[str, int]] = {"F32": ("float32", 4), "I64": ("int64", 8)}


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate only the manifest (the header), without touching tensor data."""
    header, _, _ = read_header(Path(path), header_only=True)
    return parse_manifest(header, Path(path))


def read_header(path: Path, *, header_only: bool) -> tuple[dict[str, Any], bytes, int]:
    """Parse and structurally validate the safetensors header; return (header, bytes, data start)."""
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a .ssdd file; give the path of an artifact inside it.")
    if not path.is_file():
        raise DataError(f"{path} does not exist; check the path (an artifact is written by `ssdd distill`).")
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise NotSafetensorsError(f"{path} is not a .ssdd artifact (only {size} bytes, no header).")
        (n,) = struct.unpack("<Q", prefix)
        if n == 0 or n > MAX_HEADER:
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
    if dtype not in DTYPES:
        raise TensorMismatchError(
            f"{path}: tensor {name!r} has dtype {dtype}; format v1 stores only F32 and I64."
        )
    begin, end = offsets
    if not 0 <= begin <= end or end - begin != math.prod(shape) * DTYPES[dtype][1]:
        raise bad
    if end > data_len:
        raise _truncated(path, f"tensor {name!r}")
    return begin, end


def parse_manifest(header: dict[str, Any], path: Path) -> Manifest:
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


