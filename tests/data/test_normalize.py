"""Normalisation round trip and the on-device real-data tensor."""

from __future__ import annotations

import torch

from ssdd_cli.data import channel_stats, denormalize, device_tensor, normalize


def test_normalize_round_trip() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 8, 8, generator=g)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    z = normalize(x, mean, std)
    assert z.shape == x.shape
    assert torch.allclose(z[:, 1], (x[:, 1] - 0.5) / 0.25)
    assert torch.allclose(denormalize(z, mean, std), x, atol=1e-6)


def test_channel_stats_standardise_the_split() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(50, 2, 6, 6, generator=g) * torch.tensor([0.5, 1.0]).view(1, 2, 1, 1)
    mean, std = channel_stats(x, chunk=7)
    z = normalize(x, mean, std)
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(z.std(dim=(0, 2, 3), correction=0), torch.ones(2), atol=1e-4)


def test_device_tensor_is_normalised_contiguous_and_a_copy() -> None:
    x = torch.rand(4, 3, 5, 5)
    before = x.clone()
    real = device_tensor(x, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "cpu")
    assert real.is_contiguous() and real.dtype == torch.float32 and real.device.type == "cpu"
    assert torch.allclose(real, (x - 0.5) / 0.25)
    assert torch.equal(x, before)  # the split itself is untouched
