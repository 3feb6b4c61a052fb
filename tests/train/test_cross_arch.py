"""Every registered backbone pretrains for two steps on a tiny set and evaluates with k-NN.

All seven take about 10 s on 2 idle cores at 8×8 pixels.
"""

import pytest
import torch

from ssdd_cli.data import ImageSet
from ssdd_cli.models import list_backbones
from ssdd_cli.train.evaluate import evaluate
from ssdd_cli.train.pretrain import pretrain
from ssdd_cli.train.recipe import PretrainConfig

CPU = torch.device("cpu")
SIZE = 8  # the smallest side every shipped backbone takes


def _tiny_target() -> ImageSet:
    g = torch.Generator().manual_seed(1)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.rand(n, 1, SIZE, SIZE, generator=g), torch.arange(n) % 3

    (tr, ytr), (va, yva), (te, yte) = split(24), split(6), split(12)
    return ImageSet("tiny", tr, ytr, va, yva, te, yte, (0.5,), (0.3,), 3)


@pytest.mark.parametrize("arch", list_backbones())
def test_pretrain_and_knn_every_backbone(arch: str) -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(8, 1, SIZE, SIZE, generator=g)
    targets = torch.randn(8, 4, generator=g)
    config = PretrainConfig(arch=arch, epochs=1, batch_size=4, lr=0.01, weight_decay=1e-3)
    backbone, loss = pretrain(images, targets, None, config, in_channels=1, image_size=SIZE,
                              device=CPU)
    assert loss == loss and loss >= 0  # finite
    report = evaluate(backbone, _tiny_target(), "knn", device=CPU)
    assert 0.0 <= report.metrics[0].mean <= 1.0
