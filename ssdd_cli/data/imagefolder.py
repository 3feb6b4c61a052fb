"""`imagefolder:PATH`: a folder of class subfolders of images (TinyImageNet, CUB, Stanford Dogs).

Layouts, tried in order:

    PATH/train/<class>/**/*.jpg  [PATH/val/<class>/...]  [PATH/test/<class>/...]
    PATH/<class>/**/*.jpg

Classes are the train folder's subfolders that hold images, sorted by name (label = index).
Images are found recursively inside a class folder (TinyImageNet keeps them in
`train/<wnid>/images/`). With both `val/` and `test/` labelled they are the val and test splits;
with only one, it is the test split (TinyImageNet's and ImageNet's labelled `val/` is what the
papers test on) and validation is carved from train; with neither, or no `train/` at all, a
stratified 20% test and 10% validation are carved with the fixed split seed. A `val/` holding
`val_annotations.txt` (TinyImageNet: file, wnid, box per line) and `images/` is labelled from the
annotations; a split folder with no class subfolders (TinyImageNet's unlabelled `test/images`) is
ignored.

Every image is converted to RGB and resized (PIL bilinear, antialiased) to the resolution.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ssdd_cli.data.registry import Source, SourceRequest, SourceStatus, register_source
from ssdd_cli.data.splits import TEST_FRACTION, assemble, carve
from ssdd_cli.errors import DataError

if TYPE_CHECKING:
    from torch import Tensor

    from ssdd_cli.data.imageset import ImageSet

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"})
ANNOTATIONS = "val_annotations.txt"

Labelled = tuple[list[Path], np.ndarray]


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _class_folders(folder: Path) -> dict[str, list[Path]]:
    """{class name: its images} for the subfolders of `folder` that hold images."""
    found = {d.name: _images_in(d) for d in sorted(folder.iterdir()) if d.is_dir()}
    return {name: paths for name, paths in found.items() if paths}


def _flatten(by_class: dict[str, list[Path]], classes: list[str]) -> Labelled:
    paths = [p for name in classes for p in by_class.get(name, [])]
    labels = [i for i, name in enumerate(classes) for _ in by_class.get(name, [])]
    return paths, np.asarray(labels, dtype=np.int64)


def _labelled_split(folder: Path, classes: list[str]) -> Labelled | None:
    """The images and labels of a val/ or test/ folder, or None if it carries no labels."""
    annotations = folder / ANNOTATIONS
    if annotations.is_file():
        index = {name: i for i, name in enumerate(classes)}
        paths, labels = [], []
        for line_no, line in enumerate(annotations.read_text().splitlines(), 1):
            fields = line.split("\t")
            if len(fields) < 2 or fields[1] not in index:
                raise DataError(
                    f"{annotations} line {line_no} names no training class; each line must be "
                    "'<file>\\t<class folder name>\\t...'."
                )
            paths.append(folder / "images" / fields[0])
            labels.append(index[fields[1]])
        return paths, np.asarray(labels, dtype=np.int64)
    by_class = _class_folders(folder)
    known = [name for name in by_class if name in classes]
    if not known:
        return None
    unknown = sorted(set(by_class) - set(classes))
    if unknown:
        raise DataError(
            f"{folder} has class folders that train/ lacks ({', '.join(unknown[:5])}); "
            "give every split the same class folders."
        )
    return _flatten(by_class, classes)


def read_images(paths: list[Path], resolution: int) -> Tensor:
    """Images at `paths` -> (n, 3, resolution, resolution) float32 in [0, 1]."""
    import torch
    from PIL import Image

    out = np.empty((len(paths), resolution, resolution, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                img = img.convert("RGB").resize((resolution, resolution), Image.Resampling.BILINEAR)
                out[i] = np.asarray(img)
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read image {path} ({e}); remove or replace the file.") from None
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(torch.float32).div_(255.0)


def _root(path: str | None) -> Path:
    root = Path(path or "").expanduser()
    if not path or not root.is_dir():
        raise DataError(
            f"imagefolder path {root} is not a folder; give a folder of class subfolders, "
            "as in imagefolder:/data/cub."
        )
    return root


@register_source("imagefolder")
class ImageFolder(Source):
    description = "a folder of class subfolders of images"
    preset = "tinyimagenet"
    takes_path = True

    def load(self, request: SourceRequest) -> ImageSet:
        import torch

        root = _root(request.path)
        train_dir = root / "train" if (root / "train").is_dir() else root
        by_class = _class_folders(train_dir)
        if not by_class:
            raise DataError(
                f"{train_dir} has no class subfolders with images; put each class's images "
                "in its own subfolder."
            )
        classes = sorted(by_class)
        train_paths, train_y = _flatten(by_class, classes)
        held = [
            split
            for name in ("val", "test")
            if train_dir is not root and (root / name).is_dir()
            and (split := _labelled_split(root / name, classes)) is not None
        ]
        r = request.resolution
        train = read_images(train_paths, r)
        val = val_y = None
        if held:
            test = read_images(held[-1][0], r)
            test_y = held[-1][1]
            if len(held) == 2:
                val, val_y = read_images(held[0][0], r), held[0][1]
        else:
            keep, out = carve(len(train_paths), round(TEST_FRACTION * len(train_paths)), train_y)
            test, test_y = train[torch.from_numpy(out)], train_y[out]
            train, train_y = train[torch.from_numpy(keep)], train_y[keep]
        return assemble(
            request.spec, train, train_y, test, test_y, val=val, val_labels=val_y,
            classes=len(classes), limit=request.size,
        )

    def status(self, path: str | None, data_root: Path, resolution: int) -> SourceStatus:
        folder = Path(path).expanduser() if path else None
        return SourceStatus(
            name=f"{self.name}:{path}" if path else f"{self.name}:PATH",
            available=folder is not None and folder.is_dir(),
            where=str(folder) if folder else "any folder you pass as imagefolder:PATH",
            shape=(3, resolution, resolution),
            sizes="from the folder",
            description=self.description,
        )
