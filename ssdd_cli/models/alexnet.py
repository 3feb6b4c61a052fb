"""The small-image AlexNet of the dataset-distillation code bases (DC, DSA, DM, KRR-ST).

Five convs (128 k5, 192 k5, 256 k3, 192 k3, 192 k3), all "same"-padded, ReLU, with 2x2 max-pools
after the first, second and fifth. Those code bases pad the first conv by 4 for 28 px MNIST so it
reaches 32 px; here every input already has its preset size, so the first conv pads by 2 for any
channel count. Their flattened 192x4x4 map (which fixes the input at 32 px) is replaced by a
global average pool, so the net works at 16, 32 and 64 px: feature_dim = 192. No normalisation
layers, as in the reference.
"""

from __future__ import annotations

from torch import Tensor, nn

from ssdd_cli.errors import UsageError
from ssdd_cli.models.base import Backbone
from ssdd_cli.models.registry import register_backbone


class AlexNet(Backbone):
    """Input (B, in_channels, S, S); features (B, 192) after global average pooling."""

    def __init__(self, in_channels: int, image_size: int) -> None:
        super().__init__("alexnet", in_channels, image_size, {})
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 128, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(128, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(192, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 192, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(192, 192, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = 192

    def features(self, x: Tensor) -> Tensor:
        """x: (B, in_channels, S, S) -> (B, 192). S >= 8 (three 2x2 max-pools)."""
        return self.pool(self.body(x)).flatten(1)


@register_backbone("alexnet")
def alexnet(in_channels: int, image_size: int) -> AlexNet:
    """Small-image AlexNet with a global average pool; feature_dim = 192."""
    if image_size < 8:
        raise UsageError(f"alexnet pools three times, so image_size must be at least 8, got {image_size}.")
    return AlexNet(in_channels, image_size)
