"""Fixtures for the train tests: the digits source, small subsets of it, tiny backbones."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from ssdd_cli.data import ImageSet, load_source


class Identity(nn.Module):
    """A parameter-free 'backbone': features are the flattened pixels (d = c·r·r)."""

    def __init__(self, in_channels: int, image_size: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.image_size = image_size
        self.feature_dim = in_channels * image_size * image_size

    def features(self, x: Tensor) -> Tensor:
        return x.flatten(1)


@pytest.fixture(scope="session")
def digits() -> ImageSet:
    return load_source("digits")


def subset(data: ImageSet, n_train: int, n_val: int, n_test: int, name: str = "") -> ImageSet:
    """The first images of each split (digits is shuffled, so every class appears)."""
    def lab(t: Tensor | None, n: int) -> Tensor | None:
        return None if t is None else t[:n]

    return ImageSet(name or data.name, data.train[:n_train], lab(data.train_labels, n_train),
                    data.val[:n_val], lab(data.val_labels, n_val), data.test[:n_test],
                    lab(data.test_labels, n_test), data.mean, data.std, data.classes)


@pytest.fixture(scope="session")
def tiny_digits(digits: ImageSet) -> ImageSet:
    return subset(digits, 200, 40, 100)


@pytest.fixture()
def identity() -> Identity:
    return Identity(1, 16)


@pytest.fixture()
def tiny_convnet() -> nn.Module:
    from ssdd_cli.models import create_backbone

    torch.manual_seed(0)
    return create_backbone("convnet", 1, 16, widths=[8, 16]).eval()
