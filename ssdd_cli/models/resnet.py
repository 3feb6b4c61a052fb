"""ResNet-10 and ResNet-18 with the small-image (CIFAR) stem.

torchvision's `BasicBlock`, but the ImageNet stem (7x7 stride-2 conv + max-pool) is replaced by a
3x3 stride-1 conv, as in the CIFAR ResNets used by KRR-ST, SSDD and solo-learn: at 32 px the
ImageNet stem would shrink the image to 8x8 before the first block. Stages of width w, 2w, 4w, 8w
(w = `width`, 64 by default) with strides 1, 2, 2, 2, then global average pooling:
feature_dim = 8w (512 by default). `norm="in"` swaps every BatchNorm for instance norm with a
learned affine (GroupNorm(c, c), the DC code's "instancenorm"), as in IID's ResNet-18.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from ssdd_cli.errors import UsageError, check_whole
from ssdd_cli.models.base import Backbone
from ssdd_cli.models.registry import register_backbone


class ResNet(Backbone):
    """CIFAR-stem ResNet of BasicBlocks. Input (B, in_channels, S, S); features (B, 8*width)."""

    def __init__(
        self,
        arch: str,
        layers: tuple[int, int, int, int],
        in_channels: int,
        image_size: int,
        width: int,
        norm: str = "bn",
    ) -> None:
        # The norm is recorded only when it is not the default, so existing files keep their config.
        config = {"width": width, **({"norm": norm} if norm != "bn" else {})}
        super().__init__(arch, in_channels, image_size, config)
        norm_layer = _NORMS[norm]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False),
            norm_layer(width),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        channels = width
        for i, blocks in enumerate(layers):
            out = width * 2**i
            stride = 1 if i == 0 else 2
            stages.append(self._stage(channels, out, blocks, stride, norm_layer))
            channels = out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = channels
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _stage(inp: int, out: int, blocks: int, stride: int,
               norm_layer: Callable[[int], nn.Module]) -> nn.Sequential:
        downsample = None
        if stride != 1 or inp != out:
            downsample = nn.Sequential(
                nn.Conv2d(inp, out, kernel_size=1, stride=stride, bias=False),
                norm_layer(out),
            )
        layers = [BasicBlock(inp, out, stride, downsample, norm_layer=norm_layer)]
        layers += [BasicBlock(out, out, norm_layer=norm_layer) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def features(self, x: Tensor) -> Tensor:
        """x: (B, in_channels, S, S) -> (B, 8*width), globally average-pooled last stage."""
        return self.pool(self.stages(self.stem(x))).flatten(1)


_NORMS: dict[str, Callable[[int], nn.Module]] = {
    "bn": nn.BatchNorm2d,
    "in": lambda c: nn.GroupNorm(c, c, affine=True),
}


def _check(width: int, norm: str) -> None:
    check_whole(width, "the ResNet width")
    if norm not in _NORMS:
        raise UsageError(f"unknown ResNet norm {norm!r}; choose one of: {', '.join(_NORMS)}.")


@register_backbone("resnet10")
def resnet10(in_channels: int, image_size: int, *, width: int = 64, norm: str = "bn") -> ResNet:
    """ResNet-10 (one BasicBlock per stage), CIFAR stem; feature_dim = 8*width; norm "bn" | "in"."""
    _check(width, norm)
    return ResNet("resnet10", (1, 1, 1, 1), in_channels, image_size, width, norm)


@register_backbone("resnet18")
def resnet18(in_channels: int, image_size: int, *, width: int = 64, norm: str = "bn") -> ResNet:
    """ResNet-18 (two BasicBlocks per stage), CIFAR stem; feature_dim = 8*width; norm "bn" | "in"."""
    _check(width, norm)
    return ResNet("resnet18", (2, 2, 2, 2), in_channels, image_size, width, norm)
