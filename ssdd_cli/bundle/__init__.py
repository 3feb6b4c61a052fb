"""The `.ssdd` artifact: manifest model, reader and writer (format v1).

Importing the package loads the torch-free parts only (the manifest, the header reader,
`read_manifest`); `Bundle`, `load_bundle` and `save_bundle` load torch on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ssdd_cli.bundle.errors import (
    BundleError,
    ManifestError,
    MissingManifestError,
    NonFiniteError,
    NotSafetensorsError,
    TensorMismatchError,
    TruncatedFileError,
    UnsupportedVersionError,
)
from ssdd_cli.bundle.header import read_manifest
from ssdd_cli.bundle.manifest import FORMAT_VERSION, Manifest, expected_tensors

if TYPE_CHECKING:
    from ssdd_cli.bundle.io import Bundle, load_bundle, save_bundle

_WITH_TORCH = {"Bundle", "load_bundle", "save_bundle"}


def __getattr__(name: str) -> Any:
    if name in _WITH_TORCH:
        from ssdd_cli.bundle import io

        return getattr(io, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FORMAT_VERSION",
    "Bundle",
    "BundleError",
    "Manifest",
    "ManifestError",
    "MissingManifestError",
    "NonFiniteError",
    "NotSafetensorsError",
    "TensorMismatchError",
    "TruncatedFileError",
    "UnsupportedVersionError",
    "expected_tensors",
    "load_bundle",
    "read_manifest",
    "save_bundle",
]
