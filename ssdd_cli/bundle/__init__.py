"""The `.ssdd` artifact: manifest model, reader and writer (format v1)."""

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
from ssdd_cli.bundle.io import Bundle, load_bundle, read_manifest, save_bundle
from ssdd_cli.bundle.manifest import FORMAT_VERSION, Manifest, expected_tensors

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
