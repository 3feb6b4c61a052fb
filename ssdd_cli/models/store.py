"""Backbones on disk: safetensors weights plus the metadata needed to rebuild the network.

A backbone file is a plain safetensors file (never a pickle: `torch.load` is not used). Its
string metadata:

    ssdd.kind         "backbone", or what the caller says (e.g. "teacher")
    ssdd.arch         registry name, e.g. "resnet18"
    ssdd.in_channels  e.g. "3"
    ssdd.image_size   e.g. "32"
    ssdd.config       JSON of `Backbone.config`, e.g. {"width": 64}
    ssdd.feature_dim  e.g. "512"

plus any extra keys the writer passes (the teacher adds its source, normalisation, epochs...).
`load_backbone` rebuilds the network with `create_backbone(arch, in_channels, image_size,
**config)` and loads the weights strictly.

The same weights and metadata always give the same bytes: safetensors writes its metadata map in
an order that changes from one save to the next (a hash map), so `save_backbone` rewrites the
header with the metadata sorted. `ssdd compare` keys an evaluation on its backbone file's
sha256, and a backbone made again after its weights were deleted (`keep_backbones = false`)
must key its evaluations as before.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save
from torch import Tensor

from ssdd_cli.errors import SSDDError, UsageError
from ssdd_cli.io import atomic_write_bytes, is_library_failure
from ssdd_cli.models.base import Backbone
from ssdd_cli.models.registry import create_backbone

KIND_KEY = "ssdd.kind"
# Keys that describe the network itself: derived from the model, never taken from `meta`.
STRUCTURAL_KEYS = (
    "ssdd.arch",
    "ssdd.in_channels",
    "ssdd.image_size",
    "ssdd.config",
    "ssdd.feature_dim",
)


# Options added to an architecture after files of it had been written: a file whose config lacks
# one was built with this value (the ResNets' stem was "cifar-same" before `stem` existed).
OPTIONS_ADDED = {"resnet10": {"stem": "cifar-same"}, "resnet18": {"stem": "cifar-same"}}


class BackboneFileError(SSDDError):
    """A backbone file that is missing, not safetensors, not from ssdd, or inconsistent."""

    exit_code = 1


def backbone_metadata(model: Backbone, meta: dict[str, str] | None = None) -> dict[str, str]:
    """The safetensors metadata `save_backbone` writes for `model` with the caller's `meta`."""
    meta = dict(meta or {})
    for key, value in meta.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"backbone metadata must map str to str, got {key!r}: {value!r}")
        if key in STRUCTURAL_KEYS:
            raise ValueError(f"metadata key {key!r} is derived from the model; do not pass it")
    return {
        KIND_KEY: "backbone",
        **meta,
        "ssdd.arch": model.arch,
        "ssdd.in_channels": str(model.in_channels),
        "ssdd.image_size": str(model.image_size),
        "ssdd.config": json.dumps(model.config, sort_keys=True),
        "ssdd.feature_dim": str(model.feature_dim),
    }


def _tensors_for_file(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Detached, contiguous CPU copies with storage of their own.

    safetensors refuses tensors that share storage (tied weights, views); a fresh copy of each
    breaks the sharing, and `load_state_dict` copies the same values back into every alias.
    """
    return {
        name: t.detach().to("cpu").clone(memory_format=torch.contiguous_format) for name, t in state.items()
    }


def save_backbone(path: str | os.PathLike[str], model: Backbone, meta: dict[str, str]) -> None:
    """Write `model`'s state_dict to `path` as safetensors, atomically, with metadata.

    `meta` adds string keys to the file's metadata; `meta["ssdd.kind"]` overrides the default
    kind "backbone" (e.g. "teacher"). The keys describing the network (`ssdd.arch`,
    `ssdd.in_channels`, `ssdd.image_size`, `ssdd.config`, `ssdd.feature_dim`) come from the model.
    """
    metadata = backbone_metadata(model, meta)
    tensors = _tensors_for_file(model.state_dict())
    atomic_write_bytes(path, _sorted_metadata(save(tensors, metadata=metadata)))


def _sorted_metadata(data: bytes) -> bytes:
    """A safetensors file's bytes with its header's metadata in sorted order (the tensors' entries
    keep safetensors' own order; every offset is relative to the data, so the data is unchanged)."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    metadata = header.pop("__metadata__", None)
    ordered = ({"__metadata__": dict(sorted(metadata.items()))} if metadata is not None else {}) | header
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # the format's 8-byte alignment of the data, padded with spaces
    return len(text).to_bytes(8, "little") + text + data[8 + size:]


def _read(path: Path) -> tuple[dict[str, str] | None, dict[str, Tensor]]:
    """(metadata, tensors) of a safetensors file; any failure of the library -> BackboneFileError."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata()
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except BaseException as error:
        if not is_library_failure(error):
            raise
        raise BackboneFileError(
            f"{path} is not a readable safetensors file ({error}); it may be truncated or "
            "corrupt, so write it again with `ssdd teacher` or `ssdd pretrain`."
        ) from error
    return metadata, tensors


def _int_field(path: Path, metadata: dict[str, str], key: str) -> int:
    try:
        value = int(metadata[key])
    except (KeyError, ValueError):
        raise BackboneFileError(
            f"{path} has missing or malformed {key} metadata; write it again with ssdd."
        ) from None
    return value


def load_backbone(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[Backbone, dict[str, str]]:
    """Rebuild the backbone saved at `path`; returns (model in eval mode on map_location, metadata).

    Raises `BackboneFileError` (one sentence) for a missing file, a file that is not safetensors
    or is truncated, a safetensors file not written by ssdd, an architecture this version does
    not know, weights that do not fit the architecture, or non-finite weights.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise BackboneFileError(f"backbone file {path} {what}; check the path.")
    metadata, tensors = _read(path)
    metadata = dict(metadata or {})
    arch = metadata.get("ssdd.arch")
    if arch is None and "ssdd.manifest" in metadata:
        raise BackboneFileError(
            f"{path} is a .ssdd artifact, not a network; pass a file from `ssdd teacher` or "
            f"`ssdd pretrain` (to get a backbone from the artifact: `ssdd pretrain {path} -o FILE`)."
        )
    if arch is None:
        raise BackboneFileError(
            f"{path} was not written by ssdd (no ssdd.arch metadata); pass a file from "
            "`ssdd teacher` or `ssdd pretrain`."
        )
    in_channels = _int_field(path, metadata, "ssdd.in_channels")
    image_size = _int_field(path, metadata, "ssdd.image_size")
    try:
        config: Any = json.loads(metadata.get("ssdd.config", "{}"))
    except json.JSONDecodeError:
        config = None
    if not isinstance(config, dict):
        raise BackboneFileError(f"{path} has malformed ssdd.config metadata; write it again with ssdd.")
    config = {**OPTIONS_ADDED.get(arch, {}), **config}
    try:
        model = create_backbone(arch, in_channels, image_size, **config)
    except UsageError as error:
        raise BackboneFileError(
            f"{path} describes a backbone this version of ssdd cannot build ({error}); "
            "upgrade ssdd or write the file again."
        ) from error
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise BackboneFileError(
            f"the weights in {path} do not match its architecture {arch!r} "
            f"({_first_line(error)}); the file is corrupt, so write it again with ssdd."
        ) from error
    if not all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point()):
        raise BackboneFileError(
            f"{path} holds NaN or Inf weights; the run that wrote it diverged, so retrain it."
        )
    return model.to(map_location).eval(), metadata


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(error).__name__
