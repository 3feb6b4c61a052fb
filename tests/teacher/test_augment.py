"""Two-view augmentation: shapes, determinism, asymmetry and the geometry of the crop."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ssdd_cli.teacher.augment import AugmentConfig, augment, two_views

IDENTITY = AugmentConfig(
    crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, grayscale_p=0.0,
    solarize_p=(0.0, 0.0), blur_p=(0.0, 0.0),
)


def _images(b: int = 6, c: int = 3, r: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, r, r, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("c", [1, 3])
def test_shapes_dtype_range(c: int) -> None:
    x = _images(c=c)
    v1, v2 = two_views(x, torch.Generator().manual_seed(0))
    for v in (v1, v2):
        assert v.shape == x.shape and v.dtype == torch.float32
        assert v.min() >= 0.0 and v.max() <= 1.0


def test_normalises_with_mean_std() -> None:
    x = _images()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
    raw = two_views(x, torch.Generator().manual_seed(3))
    norm = two_views(x, torch.Generator().manual_seed(3), mean=mean, std=std)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    for r, n in zip(raw, norm, strict=True):
        assert torch.allclose(n, (r - m) / s, atol=1e-6)


def test_deterministic_under_the_same_generator_and_views_differ() -> None:
    x = _images()
    a1, a2 = two_views(x, torch.Generator().manual_seed(7))
    b1, b2 = two_views(x, torch.Generator().manual_seed(7))
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert not torch.allclose(a1, a2)
    c1, _ = two_views(x, torch.Generator().manual_seed(8))
    assert not torch.allclose(a1, c1)


def test_identity_config_returns_the_input() -> None:
    x = _images()
    out = augment(x, torch.Generator().manual_seed(0), IDENTITY)
    assert torch.allclose(out, x, atol=1e-6)


def test_flip_and_grayscale_and_solarize() -> None:
    x = _images()
    g = torch.Generator().manual_seed(0)
    flipped = augment(x, g, dataclasses.replace(IDENTITY, flip_p=1.0))
    assert torch.allclose(flipped, x.flip(-1), atol=1e-6)
    gray = augment(x, g, dataclasses.replace(IDENTITY, grayscale_p=1.0))
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])
    solar = augment(x, g, IDENTITY, solarize_p=1.0)
    assert torch.allclose(solar, torch.where(x < 0.5, x, 1 - x), atol=1e-6)
    # Solarisation is on the second view only, with the paper's probabilities (0, 0.2).
    cfg = dataclasses.replace(IDENTITY, solarize_p=(0.0, 1.0))
    v1, v2 = two_views(x, g, cfg)
    assert torch.allclose(v1, x, atol=1e-6)
    assert torch.allclose(v2, torch.where(x < 0.5, x, 1 - x), atol=1e-6)


def test_crop_zooms_into_the_image() -> None:
    # A crop of a quarter of the area shows a 2x zoom: a linear ramp's slope doubles.
    r = 16
    ramp = torch.linspace(0, 1, r).view(1, 1, 1, r).expand(4, 1, r, r).contiguous()
    cfg = dataclasses.replace(IDENTITY, crop_scale=(0.25, 0.25))
    out = augment(ramp, torch.Generator().manual_seed(0), cfg)
    slope_in = (ramp[..., 1:] - ramp[..., :-1]).mean().item()
    slope_out = (out[..., 1:] - out[..., :-1]).mean().item()
    assert slope_out == pytest.approx(slope_in / 2, rel=0.05)


def test_one_channel_skips_colour_ops() -> None:
    x = _images(c=1)
    cfg = dataclasses.replace(IDENTITY, jitter_p=1.0, brightness=0.0, contrast=0.0,
                              saturation=0.9, hue=0.5, grayscale_p=1.0)
    out = augment(x, torch.Generator().manual_seed(0), cfg)
    assert torch.allclose(out, x, atol=1e-6)


def test_blur_only_at_large_resolution() -> None:
    cfg = dataclasses.replace(IDENTITY, blur_p=(1.0, 1.0), blur_min_resolution=16)
    small = _images(r=12)
    assert torch.allclose(augment(small, torch.Generator(), cfg, blur_p=1.0), small, atol=1e-6)
    large = _images(r=20)
    blurred = augment(large, torch.Generator(), cfg, blur_p=1.0)
    assert blurred.shape == large.shape
    assert blurred.var() < large.var()  # smoothing removes high-frequency variance

