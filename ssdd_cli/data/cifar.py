"""`cifar10` and `cifar100`: the official python-pickle trees under the data root.

    <root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    <root>/cifar-100-python/{train, test, meta}

Each batch is a pickled dict with bytes keys: b"data" a uint8 (N, 3072) array, each row a 32×32
image stored channel-first (1,024 red, then green, then blue values, row-major), and b"labels"
(CIFAR-10) or b"fine_labels" (CIFAR-100) a list of N ints. The files are read with
`safe_pickle.RestrictedUnpickler`; torchvision is used only to download and extract the archive
(its dataset classes would unpickle the files without restriction). The validation split is a
fixed-seed stratified carve of 10% (5,000 images) of the 50,000 training images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ssdd_cli.data.registry import Source, SourceRequest, SourceStatus, register_source, sizes_text
from ssdd_cli.data.safe_pickle import load_restricted_pickle
from ssdd_cli.data.splits import assemble, val_count
from ssdd_cli.errors import DataError

if TYPE_CHECKING:
    from torch import Tensor

    from ssdd_cli.data.imageset import ImageSet

SIDE = 32
ROW = 3 * SIDE * SIDE


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR variant's files are and what their dicts hold."""

    title: str  # "CIFAR-10"
    folder: str  # "cifar-10-batches-py"
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    pattern: str  # the layout as printed in messages
    label_key: bytes
    classes: int
    train_size: int
    test_size: int

    @property
    def files(self) -> tuple[str, ...]:
        return self.train_files + self.test_files


def read_batch(path: Path, layout: CifarLayout) -> tuple[np.ndarray, np.ndarray]:
    """One official batch file -> (uint8 images (N, 3072), int64 labels (N,)), validated."""
    batch = load_restricted_pickle(path)

    def refuse(what: str) -> DataError:
        return DataError(f"{path} is not an official {layout.title} batch ({what}); re-download the dataset.")

    if not isinstance(batch, dict):
        raise refuse(f"it holds a {type(batch).__name__}, not a dict")
    data = batch.get(b"data")
    labels = batch.get(layout.label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW:
        raise refuse(f"b'data' must be a uint8 (N, {ROW}) array")
    if labels is None:
        raise refuse(f"no {layout.label_key!r} key")
    if not isinstance(labels, (list, np.ndarray)) or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in labels
    ):
        raise refuse(f"{layout.label_key!r} must be a list of ints")
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(y) != len(data):
        raise refuse(f"{len(data)} images but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= layout.classes):
        raise refuse(f"labels must lie in 0..{layout.classes - 1}")
    return data, y


def to_images(rows: np.ndarray) -> Tensor:
    """uint8 rows (N, 3072), channel-first row-major, -> float32 images (N, 3, 32, 32) in [0, 1]."""
    import torch

    return torch.from_numpy(rows).view(-1, 3, SIDE, SIDE).to(torch.float32).div_(255.0)


def download(root: Path, layout: CifarLayout, name: str) -> None:
    """Fetch and extract the official archive into `root` with torchvision's downloader."""
    from torchvision.datasets import CIFAR10, CIFAR100
    from torchvision.datasets.utils import download_and_extract_archive

    archive = CIFAR10 if layout.classes == 10 else CIFAR100
    try:
        root.mkdir(parents=True, exist_ok=True)
        download_and_extract_archive(
            archive.url, str(root), filename=archive.filename, md5=archive.tgz_md5
        )
    except Exception as e:  # noqa: BLE001 - urllib, OSError and md5 failures all mean the same here
        raise DataError(
            f"downloading {name} into {root} failed ({e}); check the network, or copy the official "
            f"files to {root / layout.pattern}."
        ) from None


class CifarSource(Source):
    """The shared loader of `cifar10` and `cifar100`; subclasses set `layout`."""

    layout: ClassVar[CifarLayout]

    def missing_message(self, root: Path) -> str:
        return (
            f"{self.name} not found: looked for {root / self.layout.pattern}; put the official "
            f"python version there (or point the data root or $SSDD_DATA at its parent), or "
            "download it (needs a network)."
        )

    def load(self, request: SourceRequest) -> ImageSet:
        from ssdd_cli.data.resize import resize_images

        root, layout = request.data_root, self.layout
        folder = root / layout.folder
        if request.download and not all((folder / f).is_file() for f in layout.files):
            download(root, layout, self.name)
        if not all((folder / f).is_file() for f in layout.files):
            raise DataError(self.missing_message(root), option="download")
        splits = []
        for files in (layout.train_files, layout.test_files):
            parts = [read_batch(folder / f, layout) for f in files]
            x = to_images(np.concatenate([p[0] for p in parts]))
            splits.append((resize_images(x, request.resolution), np.concatenate([p[1] for p in parts])))
        (train, train_y), (test, test_y) = splits
        return assemble(
            request.spec, train, train_y, test, test_y,
            classes=layout.classes, limit=request.size,
        )

    def status(self, path: str | None, data_root: Path, resolution: int) -> SourceStatus:
        folder = data_root / self.layout.folder
        available = all((folder / f).is_file() for f in self.layout.files)
        n, n_test = self.layout.train_size, self.layout.test_size
        n_val = val_count(n)
        return SourceStatus(
            name=self.name,
            available=available,
            where=str(folder if available else data_root / self.layout.pattern),
            shape=(3, resolution, resolution),
            sizes=sizes_text(n - n_val, n_val, n_test),
            description=self.description,
        )


@register_source("cifar10")
class Cifar10(CifarSource):
    description = "CIFAR-10 photos, 10 classes (official python pickles)"
    preset = "cifar10"
    layout = CifarLayout(
        title="CIFAR-10",
        folder="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_files=("test_batch",),
        pattern="cifar-10-batches-py/{data_batch_1..5,test_batch}",
        label_key=b"labels",
        classes=10,
        train_size=50_000,
        test_size=10_000,
    )


@register_source("cifar100")
class Cifar100(CifarSource):
    description = "CIFAR-100 photos, 100 classes (official python pickles)"
    preset = "cifar100"
    layout = CifarLayout(
        title="CIFAR-100",
        folder="cifar-100-python",
        train_files=("train",),
        test_files=("test",),
        pattern="cifar-100-python/{train,test}",
        label_key=b"fine_labels",
        classes=100,
        train_size=50_000,
        test_size=10_000,
    )
