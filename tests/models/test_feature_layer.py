"""Each backbone names the layer its features are read after: the main path's last weighted layer
(a convolution; the last MLP projection in a ViT), never a shortcut's projection that runs after it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssdd_cli.models import Backbone, create_backbone, list_backbones

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


class _Custom(Backbone):
    """An architecture registered by a user, which does not name its feature layer."""

    def __init__(self, conv: bool) -> None:
        super().__init__("custom", 1, 8, {})
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3)) if conv else nn.Flatten()
        self.proj = nn.Linear(4 * 4 * 4 if conv else 64, 5)
        self.norm = nn.LayerNorm(5)
        self.feature_dim = 5

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(self.body(x).flatten(1)))


def test_an_architecture_that_names_none_gets_its_last_convolution_or_weight_matrix() -> None:
    assert _Custom(conv=True).feature_weight == "body.1.weight"
    assert _Custom(conv=False).feature_weight == "proj.weight"  # the LayerNorm's weight is 1-d
