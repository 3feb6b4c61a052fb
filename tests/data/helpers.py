"""Assertions shared by the data tests."""

from __future__ import annotations

import hashlib

import torch

from ssdd_cli.data import ImageSet


def row_hashes(x: torch.Tensor) -> set[str]:
    """One sha1 per image (n, ...) of its float32 bytes."""
    return {hashlib.sha1(row.contiguous().numpy().tobytes()).hexdigest() for row in x}


def assert_well_formed(data: ImageSet, channels: int, resolution: int) -> None:
    """Shapes, dtypes, value range, labels and disjoint splits of an ImageSet."""
    assert data.channels == channels and data.resolution == resolution
    for x, y in ((data.train, data.train_labels), (data.val, data.val_labels),
                 (data.test, data.test_labels)):
        assert x.dtype == torch.float32 and x.shape[1:] == (channels, resolution, resolution)
        assert len(x) > 0
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        if data.classes is not None:
            assert y is not None and y.dtype == torch.int64 and y.shape == (len(x),)
            assert int(y.min()) >= 0 and int(y.max()) < data.classes
    train, val, test = row_hashes(data.train), row_hashes(data.val), row_hashes(data.test)
    assert not (train & val) and not (train & test) and not (val & test)
    assert len(data.mean) == channels and len(data.std) == channels
    # The statistics are the source side's: the train split, val held out (issue 33).
    source = data.source
    assert len(source) == len(data.train)
    assert row_hashes(source) == train and not (row_hashes(source) & val)
    mean = source.mean(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.tensor(data.mean, dtype=torch.float32), atol=1e-5)
    if data.classes is not None:
        assert data.source_labels is not None and data.source_labels.shape == (len(source),)
