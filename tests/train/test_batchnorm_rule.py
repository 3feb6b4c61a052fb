"""One BatchNorm rule for every probed backbone: statistics recomputed on the target's training
images, a random initialisation included, leaving the weights and the given network untouched."""

from __future__ import annotations

import pytest
import torch

from ssdd_cli.data import ImageSet, normalize
from ssdd_cli.errors import UsageError
from ssdd_cli.models import create_backbone
from ssdd_cli.train.batchnorm import recompute_batchnorm
from ssdd_cli.train.evaluate import evaluate
from ssdd_cli.train.pretrain import build_backbone, pretrain
from ssdd_cli.train.recipe import PretrainConfig
from tests.train.conftest import subset

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def small(digits: ImageSet) -> ImageSet:
    return subset(digits, 300, 50, 100)


def _bn(net: torch.nn.Module) -> list[torch.Tensor]:
    return [b for name, b in net.named_buffers() if name.endswith(("running_mean", "running_var"))]


def test_recomputed_statistics_are_the_targets_and_leave_weights_alone(small: ImageSet) -> None:
    torch.manual_seed(0)
    net = create_backbone("convnet", 1, 16, widths=(8, 16)).eval()
    images = normalize(small.train, small.mean, small.std)
    fresh = recompute_batchnorm(net, images, batch_size=300)
    # the first BatchNorm follows the first convolution: one batch of all 300 images gives its
    # running mean as the batch mean of that convolution's output
    conv, bn = fresh.blocks[0], fresh.blocks[1]
    assert isinstance(bn, torch.nn.BatchNorm2d)
    with torch.no_grad():
        expected = conv(images).mean(dim=(0, 2, 3))
    assert torch.allclose(bn.running_mean, expected, atol=1e-5)
    assert all(torch.equal(b, torch.zeros_like(b)) or torch.equal(b, torch.ones_like(b)) for b in _bn(net))
    for (name, p), q in zip(net.named_parameters(), fresh.parameters(), strict=True):
        assert torch.equal(p, q), name
    assert bn.momentum == net.blocks[1].momentum and not fresh.training


def test_random_init_is_probed_under_the_rule_of_a_pretrained_backbone(small: ImageSet) -> None:
    config = PretrainConfig(arch="convnet", epochs=3, batch_size=16, seed=0, arch_kwargs={"widths": [8, 16]})
    random_init = build_backbone(config, in_channels=1, image_size=16, device=CPU)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 1, 16, 16, generator=g), torch.randn(32, 4, generator=g)
    pretrained, _ = pretrain(x, y, None, config, in_channels=1, image_size=16, device=CPU)
    images = normalize(small.train, small.mean, small.std)
    for net in (random_init, pretrained):
        by_rule = evaluate(net, small, "knn", device=CPU)  # the default rule: "target"
        by_hand = evaluate(recompute_batchnorm(net, images), small, "knn", device=CPU, batchnorm="stored")
        assert by_rule.metrics[0].values == by_hand.metrics[0].values
        assert by_rule.config["batchnorm"] == "target"
    stored = evaluate(random_init, small, "knn", device=CPU, batchnorm="stored")
    assert stored.config["batchnorm"] == "stored"


def test_an_unknown_rule_is_refused(small: ImageSet) -> None:
    net = create_backbone("convnet", 1, 16, widths=(8, 16))
    with pytest.raises(UsageError, match="unknown BatchNorm rule 'mine'"):
        evaluate(net, small, "knn", device=CPU, batchnorm="mine")


def _class_sorted(n_per_class: int = 256) -> torch.Tensor:
    """Two classes stored one after the other, as an imagefolder target is: pixels around −2 for
    the first, +2 for the second, so the within-class variance (≈ 1) is far below the whole
    set's (≈ 5)."""
    g = torch.Generator().manual_seed(0)
    low = torch.randn(n_per_class, 1, 8, 8, generator=g) - 2.0
    high = torch.randn(n_per_class, 1, 8, 8, generator=g) + 2.0
    return torch.cat([low, high])


def _first_bn(net: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The running mean and variance of the first BatchNorm of `net`."""
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert bn.running_mean is not None and bn.running_var is not None
    return bn.running_mean, bn.running_var


def test_a_class_sorted_set_gets_the_statistics_of_a_shuffled_pass() -> None:
    torch.manual_seed(0)
    net = create_backbone("convnet", 1, 8, widths=(4,)).eval()
    stored = _class_sorted()
    shuffled = stored[torch.randperm(len(stored), generator=torch.Generator().manual_seed(7))]
    mean, var = _first_bn(recompute_batchnorm(net, stored, batch_size=64))
    shuffled_mean, shuffled_var = _first_bn(recompute_batchnorm(net, shuffled, batch_size=64))
    assert torch.allclose(mean, shuffled_mean, rtol=0.05, atol=0.05)
    assert torch.allclose(var, shuffled_var, rtol=0.05)
    # the whole set's variance, not the within-class one that batches in stored order gave
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        whole = conv(stored).var(dim=(0, 2, 3))
        within = torch.stack([conv(stored[i:i + 64]).var(dim=(0, 2, 3)) for i in range(0, len(stored), 64)])
    assert torch.allclose(var, whole, rtol=0.05)
    assert not torch.allclose(var, within.mean(0), rtol=0.5)
    # a fixed seed: the same statistics every time
    assert torch.equal(_first_bn(recompute_batchnorm(net, stored, batch_size=64))[1], var)
