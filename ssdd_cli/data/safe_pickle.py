"""A restricted unpickler for the official CIFAR python batches.

The official files are Python 2 `cPickle` protocol-2 dicts whose values are numpy arrays, lists of
ints and byte strings. Unpickling them only ever needs the globals numpy's array reconstruction
uses, so `find_class` admits exactly those (mapped to the objects of the installed numpy, which
moved `numpy.core` to `numpy._core` in 2.0) and refuses everything else. A hostile file, whose
`REDUCE` would call `os.system` or `builtins.eval`, fails at the lookup, before anything runs.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import IO, Any

import numpy as np

from ssdd_cli.errors import DataError

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]

ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only `ALLOWED_GLOBALS` and refuses any other global."""

    def __init__(self, file: IO[bytes], path: Path) -> None:
        # encoding="bytes": Python 2 `str` keys and values come back as bytes (b"data").
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(
                f"{self.path} refused: the pickle asks for {module}.{name}, which official CIFAR "
                "files never contain; re-download the dataset."
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(
            f"{self.path} refused: the pickle holds a persistent reference, which official CIFAR "
            "files never contain; re-download the dataset."
        )


def load_restricted_pickle(path: Path) -> Any:
    """Unpickle `path` with `RestrictedUnpickler`; any failure is a `DataError`."""
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, path).load()
    except DataError:
        raise
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror}); check its permissions.") from None
    except Exception as e:  # noqa: BLE001 - a malformed file can fail in many ways inside pickle
        raise DataError(
            f"{path} is not a readable CIFAR pickle ({type(e).__name__}: {e}); re-download the dataset."
        ) from None
