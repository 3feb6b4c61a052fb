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


@register_source("digits")
class Digits(Source):
    description = "real 8×8 handwritten digits, upsampled, 10 classes"
    preset = "digits"

    def load(self, request: SourceRequest) -> ImageSet:
        import torch
        from sklearn.datasets import load_digits

        from ssdd_cli.data.resize import resize_images

        bunch = load_digits()
        x = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32) / 16.0).unsqueeze(1)
        x = resize_images(x, request.resolution)  # (1797, 1, r, r)
        y = np.asarray(bunch.target, dtype=np.int64)
        keep, test = carve(len(y), holdout_count(len(y)), y)
        keep_t, test_t = torch.from_numpy(keep), torch.from_numpy(test)
        return assemble(
            request.spec, x[keep_t], y[keep], x[test_t], y[test], classes=10, limit=request.size
        )

    def status(self, path: str | None, data_root: Path, resolution: int) -> SourceStatus:
        n_test = holdout_count()
        n_val = val_count(TOTAL - n_test)
        return SourceStatus(
            name=self.name,
            available=True,
            where="bundled with scikit-learn",
            shape=(1, resolution, resolution),
            sizes=sizes_text(TOTAL - n_test - n_val, n_val, n_test),
            description=self.description,
        )
