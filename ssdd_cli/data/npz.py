"""`npz:PATH`: images in a numpy `.npz` archive.

Keys: `x` (N, H, W, C) with C = 1 or 3 (or (N, H, W) for grayscale), uint8 0..255 or float in
[0, 1]; optional `y` (N,) non-negative integer labels; optional `x_test` and `y_test` likewise.
Without `x_test`, a stratified 20% test split is carved from `x` with the fixed split seed;
validation is always a 10% carve of train. Images are resized (bilinear) to the resolution.
Read with `allow_pickle=False`, so an archive cannot run code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ssdd_cli.data.registry import Source, SourceRequest, SourceStatus, register_source
from ssdd_cli.data.splits import TEST_FRACTION, assemble, carve
from ssdd_cli.errors import DataError

if TYPE_CHECKING:
    from torch import Tensor

    from ssdd_cli.data.imageset import ImageSet


def _images(path: Path, key: str, x: np.ndarray, resolution: int) -> Tensor:
    """`x` (N, H, W[, C]) -> float32 (N, C, resolution, resolution) in [0, 1], validated."""
    import torch

    from ssdd_cli.data.resize import resize_images

    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(
            f"{path}: {key!r} has shape {x.shape}; store images as (N, H, W, C) with C = 1 or 3."
        )
    if x.dtype == np.uint8:
        t = torch.from_numpy(x).permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    elif np.issubdtype(x.dtype, np.floating):
        if x.size and not (np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0):
            raise DataError(
                f"{path}: {key!r} holds floats outside [0, 1]; store uint8 0..255 or floats in [0, 1]."
            )
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(0, 3, 1, 2)
    else:
        raise DataError(f"{path}: {key!r} is {x.dtype}; store uint8 0..255 or floats in [0, 1].")
    return resize_images(t.contiguous(), resolution)


def _labels(path: Path, key: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or (n and y.min() < 0):
        raise DataError(
            f"{path}: {key!r} must hold {n} non-negative integer labels, got {y.dtype} {y.shape}."
        )
    return y.astype(np.int64)


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"npz file {path} does not exist; check the path after npz:.")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files if key in ("x", "y", "x_test", "y_test")}
    except ValueError as e:  # object arrays need pickle, which we refuse
        raise DataError(
            f"{path} refused ({e}); store plain numeric arrays, without pickled objects."
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(
            f"{path} is not a readable .npz archive ({e}); save it with numpy.savez."
        ) from None
    if "x" not in arrays:
        raise DataError(
            f"{path} has no 'x' array; save the images under the key x (numpy.savez(path, x=...))."
        )
    return arrays


@register_source("npz")
class Npz(Source):
    description = "a numpy archive: x (N,H,W,C), optional y, x_test, y_test"
    preset = "cifar100"
    takes_path = True

    def load(self, request: SourceRequest) -> ImageSet:
        import torch

        path = Path(request.path or "").expanduser()
        arrays = _read(path)
        r = request.resolution
        x = _images(path, "x", arrays["x"], r)
        y = _labels(path, "y", arrays["y"], len(x)) if "y" in arrays else None
        if "x_test" in arrays:
            test = _images(path, "x_test", arrays["x_test"], r)
            if test.shape[1] != x.shape[1]:
                raise DataError(
                    f"{path}: x and x_test have different channel counts; store both alike."
                )
            if (y is None) != ("y_test" not in arrays):
                raise DataError(
                    f"{path} labels only one of x and x_test; give both y and y_test, or neither."
                )
            test_y = _labels(path, "y_test", arrays["y_test"], len(test)) if y is not None else None
        else:
            keep, out = carve(len(x), round(TEST_FRACTION * len(x)), y)
            test, test_y = x[torch.from_numpy(out)], (None if y is None else y[out])
            x, y = x[torch.from_numpy(keep)], (None if y is None else y[keep])
        if len(x) < 2 or len(test) < 1:
            raise DataError(
                f"{path} holds too few images to split into train, val and test; store at least 3."
            )
        return assemble(request.spec, x, y, test, test_y, limit=request.size)

    def status(self, path: str | None, data_root: Path, resolution: int) -> SourceStatus:
        file = Path(path).expanduser() if path else None
        return SourceStatus(
            name=f"{self.name}:{path}" if path else f"{self.name}:PATH",
            available=file is not None and file.is_file(),
            where=str(file) if file else "any .npz file you pass as npz:PATH",
            shape=(3, resolution, resolution),
            sizes="from the file",
            description=self.description,
        )
