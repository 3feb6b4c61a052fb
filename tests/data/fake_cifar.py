"""Tiny CIFAR trees in the exact official format.

The official files were written by Python 2's cPickle, protocol 2: dicts whose keys and string
values are Python 2 `str` (SHORT_BINSTRING/BINSTRING opcodes, read back as bytes with
encoding="bytes"), numpy arrays reduced through `numpy.core.multiarray._reconstruct`, and labels as
lists of ints. Python 3's pickler would write bytes through `_codecs.encode` instead, so
`Py2Pickler` reproduces the Python 2 opcodes and the `numpy.core` module name.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]


# The pure-Python pickler, whose dispatch table can be extended (untyped in typeshed).
_Pickler: Any = pickle._Pickler  # type: ignore[attr-defined]


class Py2Pickler(_Pickler):  # type: ignore[misc]
    """Writes bytes as Python 2 strings and `_reconstruct` under its Python 2 module."""

    dispatch = _Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str

    def save_py2_ascii(self, obj: str) -> None:
        # Python 2 had no separate bytes: numpy's dtype state ('u1', '|') was a byte string too.
        self.save_py2_str(obj.encode("ascii"))

    dispatch[str] = save_py2_ascii

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is _reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def dump_py2(obj: Any, path: Path) -> None:
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)


def images(n: int, seed: int) -> np.ndarray:
    """uint8 (n, 3072) rows: row-major channel-first 32×32 RGB, as in the official batches."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def make_cifar10(root: Path, per_batch: int = 6, n_test: int = 10) -> Path:
    """<root>/cifar-10-batches-py with 5 train batches of `per_batch` images and one test batch."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        dump_py2(
            {
                b"batch_label": f"training batch {i} of 5".encode(),
                b"labels": [int(v) for v in np.arange(per_batch) % 10],
                b"data": images(per_batch, i),
                b"filenames": [f"img_{i}_{k}.png".encode() for k in range(per_batch)],
            },
            folder / f"data_batch_{i}",
        )
    dump_py2(
        {
            b"batch_label": b"testing batch 1 of 1",
            b"labels": [int(v) for v in np.arange(n_test) % 10],
            b"data": images(n_test, 99),
            b"filenames": [f"test_{k}.png".encode() for k in range(n_test)],
        },
        folder / "test_batch",
    )
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer",
             b"dog", b"frog", b"horse", b"ship", b"truck"]
    meta = {b"num_cases_per_batch": per_batch, b"label_names": names, b"num_vis": 3072}
    dump_py2(meta, folder / "batches.meta")
    return folder


def make_cifar100(root: Path, n_train: int = 40, n_test: int = 10) -> Path:
    """<root>/cifar-100-python with `train`, `test` and `meta` files."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        fine = [int(v) for v in (np.arange(n) * 7) % 100]
        dump_py2(
            {
                b"filenames": [f"{name}_{k}.png".encode() for k in range(n)],
                b"batch_label": f"{name}ing batch 1 of 1".encode(),
                b"fine_labels": fine,
                b"coarse_labels": [v // 5 for v in fine],
                b"data": images(n, seed),
            },
            folder / name,
        )
    dump_py2(
        {
            b"fine_label_names": [f"class{k}".encode() for k in range(100)],
            b"coarse_label_names": [f"super{k}".encode() for k in range(20)],
        },
        folder / "meta",
    )
    return folder
