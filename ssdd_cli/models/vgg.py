"""VGG-11 with BatchNorm, adapted to small images.

torchvision's VGG-11 configuration ("A") with BatchNorm after every conv, without the 4096-wide
FC layers. A max-pool is skipped once the map is already 1x1 (at 16 px the fifth pool would have
nothing to pool; KRR-ST's code needs 32 px or more).

- `vgg11`: KRR-ST's (`models/vgg.py`, the papers' cross-architecture column): PyTorch's default
  initialisation, and the features are the flattened last map, feature_dim = 512·(S/32)²
  (512 at 32 px, 2,048 at 64 px).
- `vgg11-gap`: torchvision's initialisation and a global average pool, feature_dim = 512 (this
  project's earlier `vgg11`); identical to `vgg11` in shape at 32 px, where the map is 1x1.
"""

from __future__ import annotations

from torch import Tensor, nn

from ssdd_cli.models.base import Backbone, last_conv
from ssdd_cli.models.registry import register_backbone

# torchvision's cfg "A": conv widths, "M" = 2x2 max-pool.
VGG11_CFG: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG(Backbone):
    """Convs of `cfg` with BatchNorm and ReLU, max-pools while the map is larger than 1x1.

    Input (B, in_channels, S, S); features (B, feature_dim): the flattened last map (`flatten`)
    or its global average (B, last conv width).
    """

    def __init__(self, arch: str, cfg: tuple[int | str, ...], in_channels: int, image_size: int,
                 *, flatten: bool) -> None:
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
        self.pool = nn.Identity() if flatten else nn.AdaptiveAvgPool2d(1)
        self.feature_dim = channels * side * side if flatten else channels
        if not flatten:  # KRR-ST's keeps PyTorch's default initialisation
            _torchvision_init(self)

    @property
    def feature_layer(self) -> nn.Module:
        """The last convolution of `cfg`."""
        return last_conv(self.body)

    def features(self, x: Tensor) -> Tensor:
        """x: (B, in_channels, S, S) -> (B, feature_dim), the last conv map flattened or pooled."""
        return self.pool(self.body(x)).flatten(1)


def _torchvision_init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@register_backbone("vgg11")
def vgg11(in_channels: int, image_size: int) -> VGG:
    """KRR-ST's VGG-11 with BatchNorm, flattened features (512·(S/32)²)."""
    return VGG("vgg11", VGG11_CFG, in_channels, image_size, flatten=True)


@register_backbone("vgg11-gap")
def vgg11_gap(in_channels: int, image_size: int) -> VGG:
    """VGG-11 with BatchNorm and a global average pool; feature_dim = 512."""
    return VGG("vgg11-gap", VGG11_CFG, in_channels, image_size, flatten=False)
