"""Data sources, splits and normalisation.

    from ssdd_cli.data import load_source
    data = load_source("digits")          # ImageSet: train/val/test (n, 1, 16, 16) in [0, 1]
    real = device_tensor(data.source, data.mean, data.std, device)  # the source side: train (val held out)

Sources: `digits`, `digits-nuisance` (the benchmark) and `shapes` (embedded), `cifar10` and
`cifar100` (official pickles under the data root), `fashion-mnist` and `mnist` (official IDX
files), `imagefolder:PATH` and `npz:PATH`. See
`registry` for the contract a source follows.

Importing the package registers the sources without importing torch (`ssdd datasets` lists them
fast): the modules imported here use torch only inside the functions that make images
(`resize` and `augment`, imported by those functions and by training code, use it freely).
"""

from __future__ import annotations

from ssdd_cli.data import cifar, digits, imagefolder, mnist, npz, nuisance_digits, shapes  # noqa: F401  (registers)
from ssdd_cli.data.imageset import ImageSet, channel_stats
from ssdd_cli.data.normalize import denormalize, device_tensor, normalize
from ssdd_cli.data.registry import (
    SOURCES,
    Source,
    SourceRequest,
    SourceStatus,
    default_data_root,
    list_sources,
    load_source,
    register_source,
    source_preset,
    source_status,
)
from ssdd_cli.data.shapes import SHAPE_CLASSES, ShapesConfig, generate_shapes

__all__ = [
    "SOURCES",
    "ImageSet",
    "SHAPE_CLASSES",
    "ShapesConfig",
    "Source",
    "SourceRequest",
    "SourceStatus",
    "channel_stats",
    "default_data_root",
    "denormalize",
    "device_tensor",
    "generate_shapes",
    "list_sources",
    "load_source",
    "normalize",
    "register_source",
    "source_preset",
    "source_status",
]
