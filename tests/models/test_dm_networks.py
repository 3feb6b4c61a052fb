"""The DM family's networks as configurations of the registry's: the DC ConvNet's taps and the
instance-normed ResNet."""

from __future__ import annotations

import torch
from torch import nn

from ssdd_cli.models import create_backbone
from ssdd_cli.models.convnet import ConvNet


def test_convnet_taps_expose_each_relu_and_the_last_map() -> None:
    net = create_backbone("convnet", 3, 32, widths=(128, 128, 128), norm="in")
    assert isinstance(net, ConvNet) and net.feature_dim == 2048  # 128 × 4 × 4: DM's embedding
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        taps = net.taps(x)
    assert [tuple(r.shape) for r in taps.relus] == [(2, 128, 32, 32), (2, 128, 16, 16), (2, 128, 8, 8)]
    assert all(float(r.min()) >= 0 for r in taps.relus)
    assert tuple(taps.final.shape) == (2, 128, 4, 4)
    with torch.no_grad():
        assert torch.equal(taps.final.flatten(1), net.features(x))
    # Block 2's ReLU, pooled, is what block 3 convolves: the taps are the forward pass's own values.
    assert torch.allclose(nn.functional.avg_pool2d(taps.relus[-1], 2), taps.final)


def test_resnet_instance_norm_has_no_batch_norm_and_rebuilds_from_its_config() -> None:
    net = create_backbone("resnet18", 3, 32, width=16, stem="cifar-same", norm="in")  # IID's (DC's) ResNet
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert sum(isinstance(m, nn.GroupNorm) and m.num_groups == m.num_channels for m in net.modules()) == 20
    assert net.config == {"width": 16, "stem": "cifar-same", "norm": "in"} and net.feature_dim == 128
    again = create_backbone("resnet18", 3, 32, **net.config)
    again.load_state_dict(net.state_dict())
    # bn files are unchanged
    assert create_backbone("resnet18", 3, 32, width=16).config == {"width": 16, "stem": "cifar"}
