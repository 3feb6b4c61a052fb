"""The small-image AlexNet of the dataset-distillation code bases (DC, DSA, DM, KRR-ST).

Five convs (128 k5, 192 k5, 256 k3, 192 k3, 192 k3), all "same"-padded, with 2x2 max-pools after
the first, second and fifth. Those code bases pad the first conv by 4 for 28 px MNIST so it
reaches 32 px; here every input already has its preset size, so the first conv pads by 2 for any
channel count. PyTorch's default initialisation, as in those code bases.

- `alexnet`: KRR-ST's (`models/alexnet.py`, the network of the papers' cross-architecture
  columns): BatchNorm after each of the five convs, and the features are the flattened last map,
  feature_dim = 192·⌊S/8⌋² (3,072 at 32 px, 768 at 16 px, 12,288 at 64 px).
- `alexnet-gap`: the DC/DSA/DM AlexNet without normalisation, globally average-pooled to 192
  features (this project's earlier `alexnet`), kept for comparison.
"""

from __future__ import annotations

from torch import Tensor, nn

from ssdd_cli.errors import UsageError
from ssdd_cli.models.base import Backbone, last_conv
from ssdd_cli.models.registry import register_backbone

# (out channels, kernel, max-pool after) of the five convs.
CONVS: tuple[tuple[int, int, bool], ...] = ((128, 5, True), (192, 5, True), (256, 3, False),
                                            (192, 3, False), (192, 3, True))


class AlexNet(Backbone):
    """Input (B, in_channels, S, S); features (B, feature_dim): flattened (`norm`, KRR-ST) or
    globally average-pooled (`alexnet-gap`)."""

    def __init__(self, arch: str, in_channels: int, image_size: int, *, norm: bool, flatten: bool) -> None:
        super().__init__(arch, in_channels, image_size, {})
        layers: list[nn.Module] = []
        channels, side = in_channels, image_size
        for width, kernel, pool in CONVS:
            layers.append(nn.Conv2d(channels, width, kernel_size=kernel, padding=kernel // 2))
            if norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
            if pool:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                side //= 2
            channels = width
        self.body = nn.Sequential(*layers)
        self.pool = nn.Identity() if flatten else nn.AdaptiveAvgPool2d(1)
        self.feature_dim = channels * side * side if flatten else channels

    @property
    def feature_layer(self) -> nn.Module:
        """The fifth convolution."""
        return last_conv(self.body)

    def features(self, x: Tensor) -> Tensor:
        """x: (B, in_channels, S, S) -> (B, feature_dim). S >= 8 (three 2x2 max-pools)."""
        return self.pool(self.body(x)).flatten(1)


def _check(image_size: int) -> None:
    if image_size < 8:
        raise UsageError(f"alexnet pools three times, so image_size must be at least 8, got {image_size}.")


@register_backbone("alexnet")
def alexnet(in_channels: int, image_size: int) -> AlexNet:
    """KRR-ST's AlexNet: BatchNorm after each conv, flattened features (192·⌊S/8⌋²)."""
    _check(image_size)
    return AlexNet("alexnet", in_channels, image_size, norm=True, flatten=True)


@register_backbone("alexnet-gap")
def alexnet_gap(in_channels: int, image_size: int) -> AlexNet:
    """The DC/DSA AlexNet without normalisation, globally average-pooled; feature_dim = 192."""
    _check(image_size)
    return AlexNet("alexnet-gap", in_channels, image_size, norm=False, flatten=False)
