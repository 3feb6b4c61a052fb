"""Atomic file writes: a crash never leaves a half-written file behind."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from ssdd_cli.errors import OutputError


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Raise `OutputError` now if `path` cannot be written later (a folder, or a missing or
    read-only parent), so a long job fails before it starts rather than at the end.

    The parent is probed by creating (and removing) a temporary file in it, as `atomic_write`
    will: permission bits do not tell everything (a root user passes `os.access` on /proc,
    where no file can be created).
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder; give a file name.")
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {parent} does not exist; create it first.")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {path}: folder {parent} is not writable; choose another path.")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
    except OSError as e:
        reason = (e.strerror or type(e).__name__).lower()
        raise OutputError(f"cannot write {path}: folder {parent} accepts no new files ({reason}); "
                          "choose another path.") from None
    os.close(fd)
    os.unlink(probe)
    return path


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, fsync it, then rename it into place.

    The rename is atomic on POSIX and Windows, so readers see either the old file or the whole
    new one. The temporary file is removed if `write` fails.
    """
    path = check_writable(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    return atomic_write(path, write)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_library_failure(error: BaseException) -> bool:
    """Whether `error` is a failure of a library call, to be turned into a user error.

    safetensors' Rust side can raise pyo3's PanicException, which derives from BaseException;
    anything else outside Exception (KeyboardInterrupt, SystemExit) must propagate.
    """
    return isinstance(error, Exception) or type(error).__name__ == "PanicException"
