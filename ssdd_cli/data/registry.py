"""The source registry (`ssdd_cli.registry.Registry`) and the contract a source follows.

    @register_source("digits")
    class Digits(Source): ...

    load_source("digits")                       # ImageSet at the preset's 16 px
    load_source("imagefolder:/data/cub", resolution=64)
    list_sources()                              # ["cifar10", "cifar100", "digits", ...]

A spec is a registered name, or `name:PATH` for the sources that read a user's path
(`imagefolder:PATH`, `npz:PATH`).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeVar

from ssdd_cli.errors import UsageError, check_whole
from ssdd_cli.presets import Preset, get_preset
from ssdd_cli.registry import Registry

if TYPE_CHECKING:
    from ssdd_cli.data.imageset import ImageSet

DATA_ENV = "SSDD_DATA"


def default_data_root() -> Path:
    """Where real sources live: `$SSDD_DATA` if set, else `~/.cache/ssdd/data`."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path("~/.cache/ssdd/data").expanduser()


@dataclass(frozen=True)
class SourceStatus:
    """One row of `ssdd datasets`.

    `where` is the path found (or searched, when not available), "bundled with scikit-learn" or
    "generated"; `shape` is (c, r, r) at the preset resolution; `sizes` reads "train/val/test".
    """

    name: str
    available: bool
    where: str
    shape: tuple[int, int, int]
    sizes: str
    description: str


@dataclass(frozen=True)
class SourceRequest:
    """Everything a source needs to load: the parsed spec and `load_source`'s options."""

    spec: str
    path: str | None  # the PATH of `name:PATH`, for sources that take one
    data_root: Path
    download: bool
    resolution: int
    seed: int
    size: int | None


class Source(ABC):
    """A data source. Subclasses set `description` (one line for `ssdd datasets`), `preset` (the
    name of the preset its runs default to) and `takes_path` (True for `name:PATH` sources), and
    implement `load` and `status`.

    A source module imports torch only inside the functions that make images (`load` and its
    helpers): registering a source and its `status` stay torch-free, so `ssdd datasets` and
    `ssdd budget` start fast (tests/cli/test_fast_start.py checks `sys.modules`)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    preset: ClassVar[str] = ""
    takes_path: ClassVar[bool] = False

    @abstractmethod
    def load(self, request: SourceRequest) -> ImageSet:
        """Read or generate the source's splits at `request.resolution`."""

    @abstractmethod
    def status(self, path: str | None, data_root: Path, resolution: int) -> SourceStatus:
        """Whether the source can be loaded here, without loading it."""


_S = TypeVar("_S", bound=type[Source])
SOURCES: Registry[Source] = Registry("source")


def register_source(name: str) -> Callable[[_S], _S]:
    """Class decorator: register an instance of a `Source` subclass under `name`."""

    def decorate(cls: _S) -> _S:
        cls.name = name
        SOURCES.add(name, cls())
        return cls

    return decorate


def list_sources() -> list[str]:
    """The registered source names, sorted (`imagefolder` and `npz` take `:PATH`)."""
    return SOURCES.names()


def _usage() -> str:
    return ", ".join(f"{n}:PATH" if SOURCES.get(n).takes_path else n for n in list_sources())


def _parse(spec: str) -> tuple[Source, str | None]:
    name, sep, path = spec.partition(":")
    if name not in SOURCES:
        raise UsageError(f"unknown source {spec!r}; choose one of: {_usage()}.", option="source")
    source = SOURCES.get(name)
    if source.takes_path and not path:
        raise UsageError(f"source {name!r} needs a path, as in {name}:PATH; add the path after the colon.",
                         option="source")
    if not source.takes_path and sep:
        raise UsageError(f"source {name!r} takes no path; write just {name!r}.", option="source")
    return source, (path or None)


def source_preset(spec: str, preset: str | None = None) -> Preset:
    """The preset called `preset`, or (None) the one the source spec's runs default to
    (`imagefolder:PATH` -> tinyimagenet, ...). The spec is checked either way."""
    default = _parse(spec)[0].preset
    return get_preset(default if preset is None else preset)


def load_source(
    spec: str,
    *,
    data_root: Path | None = None,
    download: bool = False,
    resolution: int | None = None,
    seed: int = 0,
    size: int | None = None,
) -> ImageSet:
    """Load source `spec` as an `ImageSet` of float32 [0, 1] images (n, c, r, r).

    Args:
        spec: a name from `list_sources()`, or `imagefolder:PATH` / `npz:PATH`.
        data_root: where real sources live; default `default_data_root()`.
        download: fetch a missing CIFAR tree or IDX files with torchvision's downloader (needs a
            network).
        resolution: r; default the source's preset's (`source_preset(spec).resolution`).
        seed: the generator seed of generated sources (`shapes`); real sources ignore it, and
            every split uses its own fixed seed so runs with different seeds share val/test.
        size: generated sources: the number of train+val images to generate; real sources: keep
            a fixed random subset of this many training images (val and test are untouched).

    Raises:
        UsageError: unknown source, or a bad option.
        DataError: the data is missing, malformed or unsafe.
    """
    source, path = _parse(spec)
    for what, value in (("resolution", resolution), ("size", size)):
        if value is not None:
            check_whole(value, f"the {what}", option=what)
    check_whole(seed, "the seed", minimum=0, option="seed")
    request = SourceRequest(
        spec=spec,
        path=path,
        data_root=Path(data_root).expanduser() if data_root is not None else default_data_root(),
        download=download,
        resolution=resolution if resolution is not None else get_preset(source.preset).resolution,
        seed=seed,
        size=size,
    )
    return source.load(request)


def source_status(name: str, data_root: Path | None = None) -> SourceStatus:
    """Whether source `name` (or a `name:PATH` spec) is available under `data_root`.

    `imagefolder` and `npz` without a path report unavailable, with `where` saying how to pass one.
    """
    source, path = (SOURCES.get(name), None) if name in SOURCES else _parse(name)
    root = Path(data_root).expanduser() if data_root is not None else default_data_root()
    return source.status(path, root, get_preset(source.preset).resolution)


def sizes_text(train: int, val: int, test: int) -> str:
    """"45,000/5,000/10,000": the train/val/test counts of a `SourceStatus`."""
    return f"{train:,}/{val:,}/{test:,}"
