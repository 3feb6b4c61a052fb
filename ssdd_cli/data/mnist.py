"""`fashion-mnist` and `mnist`: the official IDX files (`data.idx`), 28×28 grey images, 10 classes.

    train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]   60,000 images
    t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]    10,000 images

The four files are looked for, in this order, in `<data root>/<name>/`, in torchvision's layout
`<data root>/<FashionMNIST|MNIST>/raw/`, and (Fashion-MNIST) in the Debian package's folder
`/usr/share/datasets/fashion-mnist/` (`apt-get install dataset-fashion-mnist`); the first folder
that holds all four is used. Where a folder holds both `stem` and `stem.gz`, the first of the two
that reads is used (the plain file first). `--download` fetches the official files from
torchvision's mirrors into `<data root>/<name>/`, when they are missing and also when the files
found cannot be read (damaged, or not 28×28 images): a file whose md5 is not the official one is
replaced. The test split is the official one; validation is a fixed-seed stratified 10% of the
official training split (6,000 images), leaving 54,000 to train on; `ssdd datasets` shows the
counts the files' headers declare. Images are 28×28 (another side is refused, not stretched) and
kept at 28 px by default: the DC/DSA ConvNet-3 takes 28×28 (28 → 14 → 7 → 3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeVar

import numpy as np

from ssdd_cli.data.idx import check_split, read_count, read_idx, read_images
from ssdd_cli.data.registry import Source, SourceRequest, SourceStatus, register_source, sizes_text
from ssdd_cli.data.splits import assemble, val_count
from ssdd_cli.errors import DataError

if TYPE_CHECKING:
    from ssdd_cli.data.imageset import ImageSet

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
TRAIN_SIZE, TEST_SIZE, SIDE, CLASSES = 60_000, 10_000, 28, 10


@dataclass(frozen=True)
class IdxLayout:
    """Where one IDX dataset may be found and how to get it."""

    torchvision: str  # torchvision's dataset class and folder name, "FashionMNIST"
    system: tuple[Path, ...] = ()  # folders a system package installs the files in
    install: str = ""  # how to install that package


def candidates(folder: Path, stem: str) -> list[Path]:
    """Those of `stem` and `stem.gz` that exist in `folder`, the plain file first (it reads without
    decompressing, and is what a user who unzipped the official files made)."""
    return [folder / name for name in (stem, f"{stem}.gz") if (folder / name).is_file()]


def find_file(folder: Path, stem: str) -> Path | None:
    """The first of `candidates(folder, stem)`, or None."""
    return next(iter(candidates(folder, stem)), None)


_T = TypeVar("_T")


def read_first(folder: Path, stem: str, read: Callable[[Path], _T]) -> tuple[Path, _T]:
    """`read` of the first of `stem`'s candidates that reads (a damaged `stem.gz` does not hide a
    good `stem`, nor the reverse); when none does, the first one's DataError."""
    found = candidates(folder, stem)
    if not found:
        raise DataError(f"{folder / stem} is missing; copy the official file there or download it again.")
    error: DataError | None = None
    for path in found:
        try:
            return path, read(path)
        except DataError as e:
            error = error or e
    assert error is not None
    raise error


def read_split(folder: Path, images: str, labels: str) -> tuple[np.ndarray, np.ndarray]:
    """One official split from `folder`: images (n, 28, 28) uint8 and labels (n,) int64, checked."""
    x_path, x = read_first(folder, images, lambda p: read_images(p, SIDE))
    y_path, y = read_first(folder, labels, lambda p: read_idx(p, 1).astype(np.int64))
    check_split(x_path, x, y_path, y, CLASSES)
    return x, y


class IdxSource(Source):
    """The shared loader of `fashion-mnist` and `mnist`; subclasses set `layout`."""

    layout: ClassVar[IdxLayout]

    def folders(self, data_root: Path) -> tuple[Path, ...]:
        """Where the files are looked for, in order (module docstring)."""
        return (data_root / self.name, data_root / self.layout.torchvision / "raw", *self.layout.system)

    def find(self, data_root: Path) -> Path | None:
        """The first folder holding all four files, or None."""
        stems = [stem for pair in FILES.values() for stem in pair]
        return next((f for f in self.folders(data_root) if all(find_file(f, s) for s in stems)), None)

    def how_to_get(self) -> str:
        ways = [f"`{self.layout.install}`"] if self.layout.install else []
        return " or ".join([*ways, "--download (needs a network)"])

    def missing_message(self, data_root: Path) -> str:
        looked = ", ".join(str(f) for f in self.folders(data_root))
        return (f"{self.name} not found: looked for its four official IDX files in {looked}; get them "
                f"with {self.how_to_get()}, or copy them into {data_root / self.name}.")

    def load(self, request: SourceRequest) -> ImageSet:
        import torch

        from ssdd_cli.data.resize import resize_images

        folder = self.find(request.data_root)
        fetched = folder is None and request.download
        if fetched:
            folder = download(request.data_root / self.name, self.layout, self.name)
        if folder is None:
            raise DataError(self.missing_message(request.data_root), option="download")
        try:
            raw = [read_split(folder, images, labels) for images, labels in FILES.values()]
        except DataError:
            if not request.download or fetched:
                raise
            # The files are there but do not read: fetch the official ones again (a damaged file
            # fails its md5 and is replaced) rather than give advice `download` cannot follow.
            folder = download(request.data_root / self.name, self.layout, self.name)
            raw = [read_split(folder, images, labels) for images, labels in FILES.values()]
        splits = []
        for x, y in raw:
            pixels = torch.from_numpy(x.copy()).unsqueeze(1).to(torch.float32).div_(255.0)
            splits.append((resize_images(pixels, request.resolution), y))
        (train, train_y), (test, test_y) = splits
        return assemble(request.spec, train, train_y, test, test_y, classes=CLASSES, limit=request.size)

    def status(self, path: str | None, data_root: Path, resolution: int) -> SourceStatus:
        """Found: the counts the images files' headers declare (read from the headers alone); not
        found: the official counts; a header that cannot be read: sizes "unreadable", and why."""

        def row(available: bool, where: str, sizes: str) -> SourceStatus:
            return SourceStatus(name=self.name, available=available, where=where,
                                shape=(1, resolution, resolution), sizes=sizes, description=self.description)

        def sizes(n_train: int, n_test: int) -> str:
            n_val = val_count(n_train)
            return sizes_text(n_train - n_val, n_val, n_test)

        folder = self.find(data_root)
        if folder is None:
            looked = ", ".join(str(f) for f in self.folders(data_root))
            return row(False, f"{looked}; get it with {self.how_to_get()}", sizes(TRAIN_SIZE, TEST_SIZE))
        try:
            n_train, n_test = (read_first(folder, images, lambda p: read_count(p, 3))[1]
                               for images, _ in FILES.values())
        except DataError as e:
            return row(True, f"{folder}, but {e}", "unreadable")
        return row(True, str(folder), sizes(n_train, n_test))


def download(folder: Path, layout: IdxLayout, name: str) -> Path:
    """Fetch the four official gzipped files into `folder` from torchvision's mirrors, each
    checked against torchvision's md5; returns `folder`."""
    from torchvision import datasets
    from torchvision.datasets.utils import download_url

    dataset = getattr(datasets, layout.torchvision)
    folder.mkdir(parents=True, exist_ok=True)
    for filename, md5 in dataset.resources:
        errors = []
        for mirror in dataset.mirrors:
            try:
                download_url(f"{mirror}{filename}", root=str(folder), filename=filename, md5=md5)
                break
            except Exception as e:  # noqa: BLE001 - urllib, OSError and md5 failures all mean "try the next"
                errors.append(f"{mirror}: {e}")
        else:
            raise DataError(f"downloading {name}'s {filename} into {folder} failed ({'; '.join(errors)}); "
                            "check the network, or copy the official files there.")
    return folder


@register_source("fashion-mnist")
class FashionMnist(IdxSource):
    description = "Fashion-MNIST product photos, 28×28 grey, 10 classes (official IDX files)"
    preset = "fashion-mnist"
    layout = IdxLayout("FashionMNIST", (Path("/usr/share/datasets/fashion-mnist"),),
                       "apt-get install dataset-fashion-mnist")


@register_source("mnist")
class Mnist(IdxSource):
    description = "MNIST handwritten digits, 28×28 grey, 10 classes (official IDX files)"
    preset = "mnist"
    layout = IdxLayout("MNIST")
