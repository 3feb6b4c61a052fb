"""`pretrain_recorded` passes what the backbone fitted to its drift, so the drift's advice fits."""

from __future__ import annotations

import pytest
import torch

from ssdd_cli.train.recipe import PretrainConfig
from ssdd_cli.train.recorded import Origin, pretrain_recorded


@pytest.mark.parametrize("fitted", ["raw", "standardized", None])
def test_the_drift_knows_what_the_backbone_fitted(fitted: str | None, one_thread: None) -> None:
    config = PretrainConfig(arch="convnet", epochs=1, batch_size=8, seed=0, arch_kwargs={"widths": [4]})
    images, targets = torch.rand(8, 1, 16, 16), torch.randn(8, 3)
    origin = Origin("digits", (0.5,), (0.25,), "", "full", None, fitted)
    done = pretrain_recorded(images, targets, None, config, origin, device=torch.device("cpu"))
    assert done.drift.targets == fitted
