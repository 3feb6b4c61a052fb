"""The IDX format of MNIST and Fashion-MNIST: one reader, numpy only, no pickle.

    offset 0   0x00 0x00          two zero bytes
    offset 2   type code          0x08 unsigned byte (the only type these datasets use)
    offset 3   ndim               1 for labels, 3 for images
    offset 4   ndim × uint32      the dimensions, big-endian (n, then 28, 28 for images)
    then       prod(dims) bytes   the values, row-major

The official files are gzipped (`*.gz`); plain files read the same. Every file is checked
before its values are used: the magic bytes, the type, the dimensions and the length, which must
be exactly the header's plus prod(dims) bytes (a truncated or padded file is refused).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ssdd_cli.errors import DataError
from ssdd_cli.io import atomic_write_bytes

UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with gzip's magic (whatever its name)."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == GZIP_MAGIC else raw
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path} is a damaged gzip file ({e}); download it again.") from None
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror or e}); check that the file is readable.") from None


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with `ndim` dimensions -> a uint8 array of that shape.

    Raises DataError, naming the file, when the magic bytes, the type code, the number of
    dimensions or the length do not match.
    """
    data = read_bytes(path)

    def refuse(what: str) -> DataError:
        return DataError(f"{path} is not an IDX file of the expected kind ({what}); download it again.")

    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise refuse("it does not start with the IDX magic number")
    if data[2] != UBYTE:
        raise refuse(f"type code 0x{data[2]:02x}, not 0x08 unsigned bytes")
    if data[3] != ndim:
        raise refuse(f"{data[3]} dimensions, not {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise refuse("the file ends inside its header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        shape = "×".join(map(str, dims))
        raise refuse(f"its header declares {shape} values, {expected:,} bytes in all, but it holds "
                     f"{len(data):,}; it is {'truncated' if len(data) < expected else 'padded'}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_images_labels(images: Path, labels: Path, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One split: images (n, h, w) uint8 and labels (n,) int64, their counts and range checked."""
    x = read_idx(images, 3)
    y = read_idx(labels, 1).astype(np.int64)
    if len(x) != len(y):
        raise DataError(f"{images} holds {len(x):,} images but {labels} holds {len(y):,} labels; "
                        "download both files again.")
    if len(y) and int(y.max()) >= classes:
        raise DataError(f"{labels} holds label {int(y.max())}, but the dataset has {classes} classes "
                        f"(0–{classes - 1}); download it again.")
    return x, y


def write_idx(path: Path, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write a uint8 array as an IDX file (gzipped when `compress`, default: the name ends in .gz).
    The official files' format; tests and users converting their own data use it."""
    values = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, UBYTE, values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape)
    data = header + values.tobytes()
    if compress if compress is not None else path.name.endswith(".gz"):
        data = gzip.compress(data)
    atomic_write_bytes(path, data)
