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

`norm="in"` swaps every BatchNorm for instance norm with a learned affine (GroupNorm(c, c), the
DC code's "instancenorm"), as in IID's ResNet-18 (DC's ResNet: the "cifar-same" stem).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from ssdd_cli.errors import UsageError, check_whole
from ssdd_cli.models.base import Backbone
from ssdd_cli.models.registry import register_backbone

STEMS = ("cifar", "cifar-same", "imagenet")
NORMS: dict[str, Callable[[int], nn.Module]] = {
    "bn": nn.BatchNorm2d,
    "in": lambda c: nn.GroupNorm(c, c, affine=True),
}


def _stem(kind: str, in_channels: int, width: int, norm: Callable[[int], nn.Module]) -> nn.Sequential:
    """The stem `kind` (module docstring): conv, norm, ReLU (and the ImageNet max-pool)."""
    if kind == "imagenet":
        return nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False),
            norm(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
    padding = 2 if kind == "cifar" else 1
    return nn.Sequential(
        nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=padding, bias=False),
        norm(width),
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
        norm: str = "bn",
    ) -> None:
        # The norm is recorded only when it is not the default, so existing files keep their config.
        config = {"width": width, "stem": stem, **({"norm": norm} if norm != "bn" else {})}
        super().__init__(arch, in_channels, image_size, config)
        norm_layer = NORMS[norm]
        self.stem = _stem(stem, in_channels, width, norm_layer)
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
               norm: Callable[[int], nn.Module]) -> nn.Sequential:
        downsample = None
        if stride != 1 or inp != out:
            downsample = nn.Sequential(
                nn.Conv2d(inp, out, kernel_size=1, stride=stride, bias=False),
                norm(out),
            )
        layers = [BasicBlock(inp, out, stride, downsample, norm_layer=norm)]
        layers += [BasicBlock(out, out, norm_layer=norm) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    @property
    def feature_layer(self) -> nn.Module:
        """The last block's second 3x3 convolution: torchvision's `BasicBlock` runs (and
        registers) its `downsample`, the 1x1 shortcut projection, after it."""
        stage = self.stages[-1]
        assert isinstance(stage, nn.Sequential)
        block = stage[-1]
        assert isinstance(block, BasicBlock)
        return block.conv2

    def features(self, x: Tensor) -> Tensor:
        """x: (B, in_channels, S, S) -> (B, 8*width), globally average-pooled last stage."""
        return self.pool(self.stages(self.stem(x))).flatten(1)


def _check(width: int, stem: str, norm: str) -> None:
    check_whole(width, "the ResNet width")
    if stem not in STEMS:
        raise UsageError(f"unknown ResNet stem {stem!r}; choose one of: {', '.join(STEMS)}.")
    if norm not in NORMS:
        raise UsageError(f"unknown ResNet norm {norm!r}; choose one of: {', '.join(NORMS)}.")


@register_backbone("resnet10")
def resnet10(in_channels: int, image_size: int, *, width: int = 64, stem: str = "cifar",
             norm: str = "bn") -> ResNet:
    """ResNet-10 (one BasicBlock per stage); feature_dim = 8*width; stem as in the module docstring;
    norm "bn" | "in"."""
    _check(width, stem, norm)
    return ResNet("resnet10", (1, 1, 1, 1), in_channels, image_size, width, stem, norm)


@register_backbone("resnet18")
def resnet18(in_channels: int, image_size: int, *, width: int = 64, stem: str = "cifar",
             norm: str = "bn") -> ResNet:
    """ResNet-18 (two BasicBlocks per stage); feature_dim = 8*width; stem as in the module docstring;
    norm "bn" | "in"."""
    _check(width, stem, norm)
    return ResNet("resnet18", (2, 2, 2, 2), in_channels, image_size, width, stem, norm)
