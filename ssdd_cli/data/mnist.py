"""`fashion-mnist` and `mnist`: the official IDX files (`data.idx`), 28×28 grey images, 10 classes.

    train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]   60,000 images
    t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]    10,000 images

The four files are looked for, in this order, in `<data root>/<name>/`, in torchvision's layout
`<data root>/<FashionMNIST|MNIST>/raw/`, and (Fashion-MNIST) in the Debian package's folder
`/usr/share/datasets/fashion-mnist/` (`apt-get install dataset-fashion-mnist`); the first folder
that holds all four is used. `--download` fetches the official files from torchvision's mirrors
into `<data root>/<name>/`. The test split is the official one; validation is a fixed-seed
stratified 10% of the official training split (6,000 images), leaving 54,000 to train on.
Images are kept at 28 px by default: the DC/DSA ConvNet-3 takes 28×28 (28 → 14 → 7 → 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ssdd_cli.data.idx import read_images_labels
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


def find_file(folder: Path, stem: str) -> Path | None:
    """`stem.gz` or `stem` in `folder` (the official gzipped name first), or None."""
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


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
        if folder is None and request.download:
            folder = download(request.data_root / self.name, self.layout, self.name)
        if folder is None:
            raise DataError(self.missing_message(request.data_root), option="download")
        splits = []
        for images, labels in FILES.values():
            found = [find_file(folder, images), find_file(folder, labels)]
            assert found[0] is not None and found[1] is not None
            x, y = read_images_labels(found[0], found[1], CLASSES)
            pixels = torch.from_numpy(x.copy()).unsqueeze(1).to(torch.float32).div_(255.0)
            splits.append((resize_images(pixels, request.resolution), y))
        (train, train_y), (test, test_y) = splits
        return assemble(request.spec, train, train_y, test, test_y, classes=CLASSES, limit=request.size)

    def status(self, path: str | None, data_root: Path, resolution: int) -> SourceStatus:
        folder = self.find(data_root)
        n_val = val_count(TRAIN_SIZE)
        where = (str(folder) if folder is not None else
                 f"{', '.join(str(f) for f in self.folders(data_root))}; get it with {self.how_to_get()}")
        return SourceStatus(name=self.name, available=folder is not None, where=where,
                            shape=(1, resolution, resolution),
                            sizes=sizes_text(TRAIN_SIZE - n_val, n_val, TEST_SIZE),
                            description=self.description)


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
