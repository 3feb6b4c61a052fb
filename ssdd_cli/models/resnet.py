"""ResNet-10 and ResNet-18, with the small-image (CIFAR) stem by default.

torchvision's `BasicBlock`; the stem is chosen by `stem`:

- "cifar" (default): a 3x3 stride-1 conv with padding 2 and no max-pool, exactly as solo-learn
  builds its CIFAR ResNets (the SSDD paper's teacher) and as KRR-ST builds its teacher and its
  evaluation ResNets (`models/resnet.py`). Padding 2 grows the map by 2 px (32 -> 34).
- "cifar-same": the same conv with padding 1 (the map keeps its size), the common CIFAR ResNet;
  the embedded presets' teachers keep it, as measured.
- "imagenet": torchvision's 7x7 stride-2 conv (padding 3) and 3x3 stride-2 max-pool, for 128 px
  and larger images (solo-learn's ImageNet recipes).

Stages of width w, 2w, 4w, 8w (w = `width`, 64 by default) with strides 1, 2, 2, 2, then global
average pooling: feature_dim = 8w (512 by default). The stem's modules are `stem.0` (conv),
`stem.1` (BatchNorm); torchvision's `conv1`, `bn1`, `layer{k}` map onto `stem.0`, `stem.1`,
`stages.{k-1}` (see `teacher.imports`).
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from ssdd_cli.errors import UsageError, check_whole
from ssdd_cli.models.base import Backbone
from ssdd_cli.models.registry import register_backbone

STEMS = ("cifar", "cifar-same", "imagenet")


def _stem(kind: str, in_channels: int, width: int) -> nn.Sequential:
    """The stem `kind` (module docstring): conv, BatchNorm, ReLU (and the ImageNet max-pool)."""
    if kind == "imagenet":
        return nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
    padding = 2 if kind == "cifar" else 1
    return nn.Sequential(
        nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=padding, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    )


class ResNet(Backbone):
    """ResNet of BasicBlocks. Input (B, in_channels, S, S); features (B, 8*width)."""

    def __init__(
        self,
        arch: str,
        layers: tuple[int, int, int, int],
        in_channels: int,
        image_size: int,
        width: int,
        stem: str,
    ) -> None:
        super().__init__(arch, in_channels, image_size, {"width": width, "stem": stem})
        self.stem = _stem(stem, in_channels, width)
        stages: list[nn.Module] = []
        channels = width
        for i, blocks in enumerate(layers):
            out = width * 2**i
            stride = 1 if i == 0 else 2
            stages.append(self._stage(channels, out, blocks, stride))
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
    def _stage(inp: int, out: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or inp != out:
            downsample = nn.Sequential(
                nn.Conv2d(inp, out, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out),
            )
        layers = [BasicBlock(inp, out, stride, downsample)]
        layers += [BasicBlock(out, out) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def features(self, x: Tensor) -> Tensor:
        """x: (B, in_channels, S, S) -> (B, 8*width), globally average-pooled last stage."""
        return self.pool(self.stages(self.stem(x))).flatten(1)


def _check(width: int, stem: str) -> None:
    check_whole(width, "the ResNet width")
    if stem not in STEMS:
        raise UsageError(f"unknown ResNet stem {stem!r}; choose one of: {', '.join(STEMS)}.")


@register_backbone("resnet10")
def resnet10(in_channels: int, image_size: int, *, width: int = 64, stem: str = "cifar") -> ResNet:
    """ResNet-10 (one BasicBlock per stage); feature_dim = 8*width; stem as in the module docstring."""
    _check(width, stem)
    return ResNet("resnet10", (1, 1, 1, 1), in_channels, image_size, width, stem)


@register_backbone("resnet18")
def resnet18(in_channels: int, image_size: int, *, width: int = 64, stem: str = "cifar") -> ResNet:
    """ResNet-18 (two BasicBlocks per stage); feature_dim = 8*width; stem as in the module docstring."""
    _check(width, stem)
    return ResNet("resnet18", (2, 2, 2, 2), in_channels, image_size, width, stem)
