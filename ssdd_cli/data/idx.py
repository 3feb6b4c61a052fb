"""The IDX format of MNIST and Fashion-MNIST: one reader, numpy only, no pickle.

    offset 0   0x00 0x00          two zero bytes
    offset 2   type code          0x08 unsigned byte (the only type these datasets use)
    offset 3   ndim               1 for labels, 3 for images
    offset 4   ndim × uint32      the dimensions, big-endian (n, then 28, 28 for images)
    then       prod(dims) bytes   the values, row-major

The official files are gzipped (`*.gz`); plain files read the same. Every file is checked
before its values are used: the magic bytes, the type, the dimensions and the length, which must
be exactly the header's plus prod(dims) bytes (a truncated or padded file is refused), and the
images' side (28×28 in the official files). `read_count` reads only a header's first dimension
(the number of images or labels), for `ssdd datasets`.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ssdd_cli.errors import DataError
from ssdd_cli.io import atomic_write_bytes

UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn a damaged gzip stream or an unreadable file into one DataError naming `path`."""
    try:
        yield
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path} is a damaged gzip file ({e}); download it again.") from None
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror or e}); check that the file is readable.") from None


def _refuse(path: Path, what: str) -> DataError:
    return DataError(f"{path} is not an IDX file of the expected kind ({what}); download it again.")


def _check_header(path: Path, data: bytes, ndim: int) -> tuple[int, ...]:
    """The dimensions the header at the start of `data` declares, after checking its magic bytes,
    type code and number of dimensions."""
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise _refuse(path, "it does not start with the IDX magic number")
    if data[2] != UBYTE:
        raise _refuse(path, f"type code 0x{data[2]:02x}, not 0x08 unsigned bytes")
    if data[3] != ndim:
        raise _refuse(path, f"{data[3]} dimensions, not {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _refuse(path, "the file ends inside its header")
    return struct.unpack(f">{ndim}I", data[4:header])


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with gzip's magic (whatever its name)."""
    with _reading(path):
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == GZIP_MAGIC else raw


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with `ndim` dimensions -> a uint8 array of that shape.

    Raises DataError, naming the file, when the magic bytes, the type code, the number of
    dimensions or the length do not match.
    """
    data = read_bytes(path)
    dims = _check_header(path, data, ndim)
    header = 4 + 4 * ndim
    # math.prod is exact: numpy's int64 product wraps for absurd headers (4·2^31·2^31 = 0).
    expected = header + math.prod(dims)
    if len(data) != expected:
        shape = "×".join(map(str, dims))
        raise _refuse(path, f"its header declares {shape} values, {expected:,} bytes in all, but it holds "
                     f"{len(data):,}; it is {'truncated' if len(data) < expected else 'padded'}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_count(path: Path, ndim: int) -> int:
    """The first dimension an IDX file's header declares (its number of images or labels), read
    from the header alone (a gzipped file is decompressed only that far). Raises DataError, naming
    the file, when the header cannot be read or is not one of `ndim` unsigned-byte dimensions."""
    header = 4 + 4 * ndim
    with _reading(path):
        with path.open("rb") as raw:
            start = raw.read(header)
        if start[:2] == GZIP_MAGIC:
            with gzip.open(path, "rb") as unzipped:
                start = unzipped.read(header)
    return _check_header(path, start, ndim)[0]


def read_images(path: Path, side: int | None = None) -> np.ndarray:
    """An IDX file of images (n, h, w) uint8; with `side`, images of another size are refused."""
    x = read_idx(path, 3)
    if side is not None and x.shape[1:] != (side, side):
        raise DataError(f"{path} holds {x.shape[1]}×{x.shape[2]} images, but this dataset's are "
                        f"{side}×{side}; download the official file again, or load other images "
                        "through an npz or imagefolder source.")
    return x


def check_split(images: Path, x: np.ndarray, labels: Path, y: np.ndarray, classes: int) -> None:
    """Images x (n, h, w) read from `images` and labels y (n,) from `labels`: as many of each,
    and every label below `classes`."""
    if len(x) != len(y):
        raise DataError(f"{images} holds {len(x):,} images but {labels} holds {len(y):,} labels; "
                        "download both files again.")
    if len(y) and int(y.max()) >= classes:
        raise DataError(f"{labels} holds label {int(y.max())}, but the dataset has {classes} classes "
                        f"(0–{classes - 1}); download it again.")


def write_idx(path: Path, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write a uint8 array as an IDX file (gzipped when `compress`, default: the name ends in .gz).
    The official files' format; tests and users converting their own data use it."""
    values = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, UBYTE, values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape)
    data = header + values.tobytes()
    if compress if compress is not None else path.name.endswith(".gz"):
        data = gzip.compress(data)
    atomic_write_bytes(path, data)
