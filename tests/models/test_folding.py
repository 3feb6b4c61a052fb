"""BatchNorm folded into its convolution: the same function and the same input gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssdd_cli.models import create_backbone
from ssdd_cli.models.folding import fold_batchnorm


def trained_convnet() -> nn.Module:
    """A ConvNet whose BatchNorm statistics and affine parameters are far from their defaults."""
    torch.manual_seed(0)
    net = create_backbone("convnet", 1, 16, widths=(8, 16))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        (net.features(3 * torch.randn(32, 1, 16, 16) + 1).square().mean()).backward()
        opt.step()
    return net.eval()


def test_the_folded_network_computes_the_same_function_and_input_gradients() -> None:
    net = trained_convnet()
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())  # the original is untouched
    x = torch.randn(10, 1, 16, 16, requires_grad=True)
    y = x.detach().clone().requires_grad_(True)
    out, out_folded = net.features(x), folded.features(y)
    assert torch.allclose(out, out_folded, atol=1e-5, rtol=1e-4)
    (g,) = torch.autograd.grad(out.square().sum(), x)
    (g_folded,) = torch.autograd.grad(out_folded.square().sum(), y)
    assert torch.allclose(g, g_folded, atol=1e-5, rtol=1e-4)
    assert not any(p.requires_grad for p in folded.parameters())


def test_folding_copies_so_later_training_of_the_original_does_not_reach_it() -> None:
    net = trained_convnet()
    folded = fold_batchnorm(net)
    x = torch.randn(4, 1, 16, 16)
    before = folded.features(x)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    assert torch.equal(folded.features(x), before)


def test_a_network_in_training_mode_is_refused_and_one_without_pairs_is_unchanged() -> None:
    net = trained_convnet().train()
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(net)
    plain = create_backbone("convnet", 1, 16, widths=(8,), norm="in").eval()
    x = torch.randn(3, 1, 16, 16)
    assert torch.equal(fold_batchnorm(plain).features(x), plain.features(x))
