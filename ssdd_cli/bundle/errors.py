"""The format's own exceptions: every way a file can be refused has its own type."""

from ssdd_cli.errors import SSDDError


class BundleError(SSDDError):
    """Base class: the file cannot be read as a `.ssdd` artifact."""


class NotSafetensorsError(BundleError):
    """The bytes are not a safetensors file."""


class TruncatedFileError(BundleError):
    """The header promises more bytes than the file holds."""


class MissingManifestError(BundleError):
    """A valid safetensors file without the `ssdd.manifest` metadata."""


class ManifestError(BundleError):
    """The manifest is not valid JSON or does not match the v1 model."""


class UnsupportedVersionError(BundleError):
    """The file was written by a newer major version of the format."""


class TensorMismatchError(BundleError):
    """Tensors missing, extra, or of a shape/dtype that disagrees with the manifest."""


class NonFiniteError(BundleError):
    """A tensor holds NaN or Inf."""
