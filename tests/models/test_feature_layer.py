"""Each backbone names the layer its features are read after: the main path's last weighted layer
(a convolution; the last MLP projection in a ViT), never a shortcut's projection that runs after it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssdd_cli.models import create_backbone, list_backbones

SHORTCUTS = ("downsample", "shortcut")


def _is_shortcut(name: str) -> bool:
    return any(part in SHORTCUTS for part in name.split("."))


@pytest.mark.parametrize("name", list_backbones())
def test_the_feature_layer_is_the_last_weighted_layer_of_the_main_path(name: str) -> None:
    torch.manual_seed(0)
    net = create_backbone(name, 1, 16).eval()
    names = {module: qualified for qualified, module in net.named_modules()}
    layer = net.feature_layer
    assert isinstance(layer, (nn.Conv2d, nn.Linear))
    assert net.feature_weight == f"{names[layer]}.weight"
    assert net.feature_weight in dict(net.named_parameters())
    assert not _is_shortcut(names[layer])
    ran: list[nn.Module] = []
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.register_forward_hook(lambda m, _i, _o: ran.append(m))
    with torch.no_grad():
        net.features(torch.randn(2, 1, 16, 16))
    assert layer in ran
    # every weighted layer that runs after it is a shortcut's (ResNet's downsample runs after conv2)
    after = ran[len(ran) - ran[::-1].index(layer):]
    assert all(_is_shortcut(names[m]) for m in after), [names[m] for m in after]


def test_resnet10s_feature_layer_is_the_last_blocks_second_conv_not_its_shortcut() -> None:
    net = create_backbone("resnet10", 1, 16)
    assert net.feature_weight == "stages.3.0.conv2.weight"
    convs = [n for n, p in net.named_parameters() if p.ndim == 4]
    assert convs[-1] == "stages.3.0.downsample.0.weight"  # what registration order would pick
