"""`digits`: scikit-learn's 1,797 real 8×8 handwritten digits, the embedded default source.

The images ship inside scikit-learn, so this source works on a machine without network or data.
Pixel values 0..16 are divided by 16 and the images bilinearly upsampled to the preset's 16 px
(1 channel, 10 classes). The test split is a fixed-seed stratified 20% (359 images); validation
is a stratified 10% of the rest (144), leaving 1,294 training images.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ssdd_cli.data.registry import Source, SourceRequest, SourceStatus, register_source, sizes_text
from ssdd_cli.data.splits import TEST_FRACTION, assemble, carve, val_count

if TYPE_CHECKING:
    from ssdd_cli.data.imageset import ImageSet

TOTAL = 1797


def holdout_count(n: int = TOTAL) -> int:
    """round(TEST_FRACTION · n): 359 of the 1,797 digits."""
    return round(TEST_FRACTION * n)


def split_sizes() -> tuple[int, int, int]:
    """(train, val, test) digit counts: 1,294 / 144 / 359."""
    n_test = holdout_count()
    n_val = val_count(TOTAL - n_test)
    return TOTAL - n_test - n_val, n_val, n_test


def load_glyphs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits: glyphs (1797, 8, 8) float32 in [0, 1], labels (1797,) int64, and the
    indices of the kept (train + val) and of the test digits (the fixed stratified split)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    glyphs = np.asarray(bunch.images, dtype=np.float32) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    keep, test = carve(len(y), holdout_count(len(y)), y)
    return glyphs, y, keep, test


@register_source("digits")
class Digits(Source):
    description = "real 8×8 handwritten digits, upsampled, 10 classes"
    preset = "digits"

    def load(self, request: SourceRequest) -> ImageSet:
        import torch

        from ssdd_cli.data.resize import resize_images

        glyphs, y, keep, test = load_glyphs()
        x = resize_images(torch.from_numpy(glyphs).unsqueeze(1), request.resolution)  # (1797, 1, r, r)
        keep_t, test_t = torch.from_numpy(keep), torch.from_numpy(test)
        return assemble(
            request.spec, x[keep_t], y[keep], x[test_t], y[test], classes=10, limit=request.size
        )

    def status(self, path: str | None, data_root: Path, resolution: int) -> SourceStatus:
        return SourceStatus(
            name=self.name,
            available=True,
            where="bundled with scikit-learn",
            shape=(1, resolution, resolution),
            sizes=sizes_text(*split_sizes()),
            description=self.description,
        )
