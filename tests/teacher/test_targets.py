"""Standardised regression targets: the statistics, the map and its inverse."""

from __future__ import annotations

import torch

from ssdd_cli.teacher.targets import TargetScaling


def test_standardised_features_have_zero_mean_and_unit_variance_and_invert_exactly() -> None:
    g = torch.Generator().manual_seed(0)
    feats = 0.27 + 0.067 * torch.randn(500, 12, generator=g)
    scaling = TargetScaling.fit(feats)
    y = scaling.apply(feats)
    assert torch.allclose(y.mean(0), torch.zeros(12), atol=1e-5)
    assert torch.allclose(y.var(0, unbiased=False), torch.ones(12), atol=1e-4)
    assert torch.allclose(scaling.invert(y), feats, atol=1e-6)
    again = TargetScaling.from_lists(scaling.mean.tolist(), scaling.std.tolist())
    assert torch.equal(again.apply(feats), y)


def test_a_dimension_that_never_varies_maps_to_zero_not_nan() -> None:
    feats = torch.randn(50, 3)
    feats[:, 1] = 0.0  # a dead ReLU of the teacher
    y = TargetScaling.fit(feats).apply(feats)
    assert torch.isfinite(y).all() and torch.equal(y[:, 1], torch.zeros(50))
