"""MobileNetV2 with a small-image stem, in two variants.

Both use the CIFAR adaptation of the common small-image MobileNetV2: the stem conv has stride 1
(not 2) and the 24-channel stage has stride 1 (not 2). Three stride-2 stages remain (32, 64 and
160 channels), so 32 px ends at 4x4, 16 px at 2x2 and 64 px at 8x8. Then a 1x1 conv to 1280
channels and a global average pool: feature_dim = 1280.

- `mobilenetv2`: KRR-ST's (`models/mobilenet.py`, the papers' cross-architecture column):
  expansion 2 in every stage after the first (1), ReLU (not ReLU6), every block has its 1x1
  expansion conv (also at expansion 1), and every stride-1 block is residual, through a 1x1
  conv + BatchNorm shortcut when the width changes. PyTorch's default initialisation.
- `mobilenetv2-torchvision`: torchvision's `InvertedResidual` blocks with torchvision's table
  (expansion 6, ReLU6) and initialisation, and a `width_mult` (this project's earlier
  `mobilenetv2`).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.ops.misc import Conv2dNormActivation

from ssdd_cli.errors import UsageError
from ssdd_cli.models.base import Backbone, last_conv
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


# KRR-ST's table: torchvision's, with expansion 2 instead of 6.
KRR_ST_STAGES: tuple[tuple[int, int, int, int], ...] = tuple(
    (1 if t == 1 else 2, c, n, s) for t, c, n, s in STAGES)


class Block(nn.Module):
    """KRR-ST's inverted residual: 1x1 expand (t·in) -> BN -> ReLU -> 3x3 depthwise (stride s)
    -> BN -> ReLU -> 1x1 project -> BN, plus a shortcut when s = 1 (identity, or 1x1 conv + BN
    when the width changes). (B, in, H, W) -> (B, out, H/s, W/s)."""

    def __init__(self, inp: int, out: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = expansion * inp
        self.stride = stride
        self.conv1 = nn.Conv2d(inp, hidden, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, kernel_size=3, stride=stride, padding=1, groups=hidden,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv3 = nn.Conv2d(hidden, out, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut: nn.Module = nn.Identity()
        if stride == 1 and inp != out:
            self.shortcut = nn.Sequential(nn.Conv2d(inp, out, kernel_size=1, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return y + self.shortcut(x) if self.stride == 1 else y


class KRRSTMobileNetV2(Backbone):
    """KRR-ST's MobileNetV2. Input (B, in_channels, S, S); features (B, 1280), pooled."""

    def __init__(self, in_channels: int, image_size: int) -> None:
        super().__init__("mobilenetv2", in_channels, image_size, {})
        layers: list[nn.Module] = [nn.Conv2d(in_channels, 32, kernel_size=3, padding=1, bias=False),
                                   nn.BatchNorm2d(32), nn.ReLU()]
        channels = 32
        for t, c, n, s in KRR_ST_STAGES:
            for i in range(n):
                layers.append(Block(channels, c, t, s if i == 0 else 1))
                channels = c
        layers += [nn.Conv2d(channels, 1280, kernel_size=1, bias=False), nn.BatchNorm2d(1280), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = 1280

    @property
    def feature_layer(self) -> nn.Module:
        """The 1x1 convolution to 1,280 channels after the last block."""
        return last_conv(self.body)

    def features(self, x: Tensor) -> Tensor:
        """x: (B, in_channels, S, S) -> (B, 1280), pooled last 1x1 conv."""
        return self.pool(self.body(x)).flatten(1)


class MobileNetV2(Backbone):
    """torchvision's blocks. Input (B, in_channels, S, S); features (B, feature_dim), pooled."""

    def __init__(self, in_channels: int, image_size: int, width_mult: float) -> None:
        super().__init__("mobilenetv2-torchvision", in_channels, image_size, {"width_mult": width_mult})
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

    @property
    def feature_layer(self) -> nn.Module:
        """The convolution of the last `Conv2dNormActivation` (1x1, to 1280·max(1, width_mult))."""
        last = self.body[-1]
        assert isinstance(last, Conv2dNormActivation)
        return last_conv(last)

    def features(self, x: Tensor) -> Tensor:
        """x: (B, in_channels, S, S) -> (B, 1280 * max(1, width_mult)), pooled last 1x1 conv."""
        return self.pool(self.body(x)).flatten(1)


@register_backbone("mobilenetv2")
def mobilenetv2(in_channels: int, image_size: int) -> KRRSTMobileNetV2:
    """KRR-ST's MobileNetV2 (expansion 2, ReLU), stride-1 stem and 24-channel stage; 1280 features."""
    return KRRSTMobileNetV2(in_channels, image_size)


@register_backbone("mobilenetv2-torchvision")
def mobilenetv2_torchvision(in_channels: int, image_size: int, *, width_mult: float = 1.0) -> MobileNetV2:
    """torchvision's MobileNetV2 blocks with a stride-1 stem and 24-channel stage; 1280 features."""
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or width_mult <= 0:
        raise UsageError(f"mobilenetv2 width_mult must be a positive number, got {width_mult!r}.")
    return MobileNetV2(in_channels, image_size, float(width_mult))
