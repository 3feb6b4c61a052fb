"""MobileNetV2 with a small-image stem, from torchvision's `InvertedResidual` blocks.

torchvision's stage table, with the CIFAR adaptation of the common small-image MobileNetV2: the
stem conv has stride 1 (not 2) and the 24-channel stage has stride 1 (not 2). Three stride-2
stages remain (32, 64 and 160 channels), so 32 px ends at 4x4, 16 px at 2x2 and 64 px at 8x8.
Then the 1x1 conv to 1280 channels (scaled by `width_mult` when it exceeds 1, as in torchvision)
and a global average pool: feature_dim = 1280 by default.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.ops.misc import Conv2dNormActivation

from ssdd_cli.errors import UsageError
from ssdd_cli.models.base import Backbone
from ssdd_cli.models.registry import register_backbone

# (expansion t, channels c, repeats n, stride s) of the first block; torchvision's table with
# the stem's and the 24-channel stage's stride set to 1 for 16-64 px inputs.
STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round `value` to the nearest multiple of `divisor`, never going 10% below it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class MobileNetV2(Backbone):
    """Input (B, in_channels, S, S); features (B, feature_dim) after global average pooling."""

    def __init__(self, in_channels: int, image_size: int, width_mult: float) -> None:
        super().__init__("mobilenetv2", in_channels, image_size, {"width_mult": width_mult})
        channels = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [
            Conv2dNormActivation(
                in_channels,
                channels,
                stride=1,
                norm_layer=nn.BatchNorm2d,
                activation_layer=nn.ReLU6,
            )
        ]
        for t, c, n, s in STAGES:
            out = make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(channels, out, s if i == 0 else 1, t, nn.BatchNorm2d))
                channels = out
        layers.append(
            Conv2dNormActivation(
                channels,
                last,
                kernel_size=1,
                norm_layer=nn.BatchNorm2d,
                activation_layer=nn.ReLU6,
            )
        )
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = last
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: Tensor) -> Tensor:
        """x: (B, in_channels, S, S) -> (B, 1280 * max(1, width_mult)), pooled last 1x1 conv."""
        return self.pool(self.body(x)).flatten(1)


@register_backbone("mobilenetv2")
def mobilenetv2(in_channels: int, image_size: int, *, width_mult: float = 1.0) -> MobileNetV2:
    """MobileNetV2 with a stride-1 stem and 24-channel stage; feature_dim = 1280 by default."""
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or width_mult <= 0:
        raise UsageError(f"mobilenetv2 width_mult must be a positive number, got {width_mult!r}.")
    return MobileNetV2(in_channels, image_size, float(width_mult))
