"""KRR-ST's ConvNet: the inner model of the distillation pool and the papers' evaluation net.

Blocks of conv3x3 (padding 1) -> norm -> ReLU -> avgpool2, depth from the resolution
(round(log2(image_size)) - 2: 16 px -> 2, 32 px -> 3, 64 px -> 4, 128 px -> 5, 224 px -> 6, the
depths of the KRR-ST and SSDD papers, A.6 included). KRR-ST's code doubles the width per block,
ending at 512: 128-256-512 at 32 px, 64-128-256-512 at 64 px, 32-...-512 at 128 px,
16-...-512 at 224 px (and 128-256 at 16 px). The SSDD paper follows it. Unlike the DC/DSA
ConvNet there is no global pooling: the features are the flattened output of the last block.
Each pool floors an odd side (KRR-ST's `HW // 2`), so feature_dim = widths[-1]·side² with side
the image size halved (rounding down) `depth` times: 8,192 at 32 px, 4,608 at 224 px (3x3).

The DM family (DM, DataDAM, IID, DSDM, IDM) uses the DC ConvNet: width 128 at every depth with
instance norm, `convnet(c, r, widths=(128,) * depth, norm="in")`. `taps(x)` exposes what those
methods match besides the flat features: each block's ReLU output (DataDAM's attention maps)
and the last block's unflattened output (IID's local covariance).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from torch import Tensor, nn

from ssdd_cli.errors import UsageError, check_whole
from ssdd_cli.models.base import Backbone, last_conv
from ssdd_cli.models.registry import register_backbone

NORMS = ("bn", "in", "none")
POOLS = ("flat", "avg")


def default_depth(image_size: int) -> int:
    """round(log2(image_size)) - 2 (at least 1): 16 px -> 2, 32 -> 3, 64 -> 4, 128 -> 5, 224 -> 6."""
    return max(1, round(math.log2(image_size)) - 2)


def final_side(image_size: int, depth: int) -> int:
    """The side of the last block's map: image_size halved, rounding down, `depth` times."""
    side = image_size
    for _ in range(depth):
        side //= 2
    return side


def default_widths(depth: int) -> tuple[int, ...]:
    """Widths doubling per block and ending at 512 (depth >= 3); 128, 256 for depth <= 2."""
    if depth <= 2:
        return tuple(128 * 2**k for k in range(depth))
    return tuple(512 // 2 ** (depth - 1 - k) for k in range(depth))


class ConvNetTaps(NamedTuple):
    """Intermediate outputs of one ConvNet forward pass.

    relus: per block l, its ReLU output before pooling (B, widths[l], S/2**l, S/2**l).
    final: the last block's output after pooling (B, widths[-1], S/2**depth, S/2**depth);
        `final.flatten(1)` is `features(x)`.
    """

    relus: tuple[Tensor, ...]
    final: Tensor


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "in":
        # Instance norm with a learned affine, as GroupNorm(c, c) (DC/KRR-ST's "instancenorm").
        return nn.GroupNorm(channels, channels, affine=True)
    return nn.Identity()


class ConvNet(Backbone):
    """conv3x3 -> norm -> ReLU -> avgpool2, `len(widths)` times; the features are the last map
    flattened (`pool="flat"`, KRR-ST's) or averaged over its positions (`pool="avg"`).

    Input (B, in_channels, S, S); features (B, widths[-1] * final_side(S, depth)**2), or
    (B, widths[-1]) with `pool="avg"`.
    """

    def __init__(self, in_channels: int, image_size: int, widths: tuple[int, ...], norm: str,
                 pool: str = "flat") -> None:
        config = {"widths": list(widths), "norm": norm, **({"pool": pool} if pool != "flat" else {})}
        super().__init__("convnet", in_channels, image_size, config)
        self.pool = pool
        layers: list[nn.Module] = []
        channels = in_channels
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, kernel_size=3, padding=1),
                _norm(norm, width),
                nn.ReLU(inplace=True),
                nn.AvgPool2d(kernel_size=2, stride=2),
            ]
            channels = width
        self.blocks = nn.Sequential(*layers)
        side = final_side(image_size, len(widths))
        self.feature_dim = widths[-1] * (side * side if pool == "flat" else 1)

    @property
    def feature_layer(self) -> nn.Module:
        """The last block's convolution."""
        return last_conv(self.blocks)

    def features(self, x: Tensor) -> Tensor:
        """x: (B, in_channels, S, S) -> (B, feature_dim), the last block's output flattened or
        averaged over positions."""
        out = self.blocks(x)
        return out.flatten(1) if self.pool == "flat" else out.mean(dim=(2, 3))

    def taps(self, x: Tensor) -> ConvNetTaps:
        """x: (B, in_channels, S, S) -> every block's ReLU output and the last block's output."""
        relus: list[Tensor] = []
        for layer in self.blocks:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                relus.append(x)  # pooling is out of place, so the in-place ReLU output stays intact
        return ConvNetTaps(tuple(relus), x)


@register_backbone("convnet")
def convnet(
    in_channels: int,
    image_size: int,
    *,
    widths: tuple[int, ...] | list[int] | None = None,
    depth: int | None = None,
    norm: str = "bn",
    pool: str = "flat",
) -> ConvNet:
    """KRR-ST's ConvNet. `depth` defaults to log2(image_size) - 2 (or len(widths)); `widths`
    default to doubling per block ending at 512; `norm` is "bn", "in" or "none"; `pool` "flat"
    (KRR-ST's flattened map) or "avg" (global average pooling: widths[-1] features)."""
    if norm not in NORMS:
        raise UsageError(f"unknown ConvNet norm {norm!r}; choose one of: {', '.join(NORMS)}.")
    if pool not in POOLS:
        raise UsageError(f"unknown ConvNet pooling {pool!r}; choose one of: {', '.join(POOLS)}.")
    if depth is not None:
        check_whole(depth, "the ConvNet depth")
    if widths is not None:
        widths = tuple(widths)
        if not widths:
            raise UsageError("a ConvNet needs at least one block width.")
        for w in widths:
            check_whole(w, "every ConvNet width")
        if depth is not None and depth != len(widths):
            raise UsageError(
                f"ConvNet depth {depth} disagrees with {len(widths)} widths; give one or the other."
            )
        depth = len(widths)
    if depth is None:
        depth = default_depth(image_size)
    if final_side(image_size, depth) < 1:
        raise UsageError(
            f"a depth-{depth} ConvNet halves the image {depth} times, so image_size must be at "
            f"least {2**depth}, got {image_size}."
        )
    return ConvNet(in_channels, image_size, widths or default_widths(depth), norm, pool)
