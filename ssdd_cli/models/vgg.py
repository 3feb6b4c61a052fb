"""VGG-11 with BatchNorm, adapted to small images.

torchvision's VGG-11 configuration ("A") with BatchNorm after every conv. Two departures for
16-64 px inputs: a max-pool is skipped once the map is already 1x1 (at 16 px the fifth pool would
have nothing to pool), and the 7x7 adaptive pool plus the three 4096-wide FC layers are replaced
by a global average pool, as in the DC/DSA and KRR-ST cross-architecture VGG. feature_dim = 512.
"""

from __future__ import annotations

from torch import Tensor, nn

from ssdd_cli.models.base import Backbone
from ssdd_cli.models.registry import register_backbone

# torchvision's cfg "A": conv widths, "M" = 2x2 max-pool.
VGG11_CFG: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG(Backbone):
    """Convs of `cfg` with BatchNorm and ReLU, max-pools while the map is larger than 1x1.

    Input (B, in_channels, S, S); features (B, last conv width) after global average pooling.
    """

    def __init__(self, arch: str, cfg: tuple[int | str, ...], in_channels: int, image_size: int) -> None:
        super().__init__(arch, in_channels, image_size, {})
        layers: list[nn.Module] = []
        channels, side = in_channels, image_size
        for item in cfg:
            if item == "M":
                if side > 1:
                    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                    side //= 2
                continue
            assert isinstance(item, int)
            layers += [
                nn.Conv2d(channels, item, kernel_size=3, padding=1),
                nn.BatchNorm2d(item),
                nn.ReLU(inplace=True),
            ]
            channels = item
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = channels
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def features(self, x: Tensor) -> Tensor:
        """x: (B, in_channels, S, S) -> (B, 512), globally average-pooled last conv map."""
        return self.pool(self.body(x)).flatten(1)


@register_backbone("vgg11")
def vgg11(in_channels: int, image_size: int) -> VGG:
    """VGG-11 with BatchNorm and a global average pool; feature_dim = 512."""
    return VGG("vgg11", VGG11_CFG, in_channels, image_size)
