"""A small Vision Transformer for 16-64 px images, from torchvision's `Encoder`.

Patches of `patch_size` (4 by default, so 32 px gives 64 tokens) embedded by a strided conv,
learned position embeddings sized from `image_size`, `depth` pre-norm transformer blocks
(torchvision's `EncoderBlock`: LayerNorm -> multi-head attention, LayerNorm -> GELU MLP) and a
final LayerNorm. The feature is the class token's output (`pooling="cls"`, as in ViT) or the mean
of the patch tokens (`pooling="mean"`, no class token). Defaults: embed_dim 192, depth 6, 6 heads
(head width 32), MLP 4x wide; feature_dim = embed_dim. No dropout: the distillation and
pretraining are deterministic given a seed, and the data sets are tiny either way.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torchvision.models.vision_transformer import Encoder, EncoderBlock

from ssdd_cli.errors import UsageError, check_whole
from ssdd_cli.models.base import Backbone
from ssdd_cli.models.registry import register_backbone

POOLINGS = ("cls", "mean")


class ViT(Backbone):
    """Input (B, in_channels, S, S); features (B, embed_dim).

    Tokens: (B, (S / patch_size)**2 [+ 1 class token], embed_dim).
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        patch_size: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_dim: int,
        pooling: str,
    ) -> None:
        super().__init__(
            "vit",
            in_channels,
            image_size,
            {
                "patch_size": patch_size,
                "embed_dim": embed_dim,
                "depth": depth,
                "num_heads": num_heads,
                "mlp_dim": mlp_dim,
                "pooling": pooling,
            },
        )
        self.pooling = pooling
        self.patch_embed = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        tokens = (image_size // patch_size) ** 2
        if pooling == "cls":
            self.class_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
            tokens += 1
        self.encoder = Encoder(
            seq_length=tokens,
            num_layers=depth,
            num_heads=num_heads,
            hidden_dim=embed_dim,
            mlp_dim=mlp_dim,
            dropout=0.0,
            attention_dropout=0.0,
        )
        self.feature_dim = embed_dim
        # torchvision's VisionTransformer initialisation of the patch embedding.
        fan_in = in_channels * patch_size * patch_size
        nn.init.trunc_normal_(self.patch_embed.weight, std=math.sqrt(1 / fan_in))
        assert self.patch_embed.bias is not None
        nn.init.zeros_(self.patch_embed.bias)

    @property
    def feature_layer(self) -> nn.Module:
        """The last block's MLP output projection (torchvision's `MLPBlock`: Linear, GELU,
        Dropout, Linear, Dropout): the last weights before the residual sum and the final
        LayerNorm; the patch embedding, the only convolution, is the first layer."""
        block = self.encoder.layers[-1]
        assert isinstance(block, EncoderBlock)
        return block.mlp[3]

    def features(self, x: Tensor) -> Tensor:
        """x: (B, in_channels, S, S) -> (B, embed_dim): class-token output or mean patch token."""
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, (S/p)**2, embed_dim)
        if self.pooling == "cls":
            cls = self.class_token.expand(tokens.shape[0], -1, -1)
            return self.encoder(torch.cat([cls, tokens], dim=1))[:, 0]
        return self.encoder(tokens).mean(dim=1)


@register_backbone("vit")
def vit(
    in_channels: int,
    image_size: int,
    *,
    patch_size: int = 4,
    embed_dim: int = 192,
    depth: int = 6,
    num_heads: int = 6,
    mlp_dim: int | None = None,
    pooling: str = "cls",
) -> ViT:
    """Small ViT; `mlp_dim` defaults to 4 * embed_dim; feature_dim = embed_dim."""
    if mlp_dim is None:
        mlp_dim = 4 * embed_dim
    for name, value in (
        ("patch_size", patch_size),
        ("embed_dim", embed_dim),
        ("depth", depth),
        ("num_heads", num_heads),
        ("mlp_dim", mlp_dim),
    ):
        check_whole(value, f"the vit {name}")
    if pooling not in POOLINGS:
        raise UsageError(f"unknown vit pooling {pooling!r}; choose one of: {', '.join(POOLINGS)}.")
    if image_size % patch_size:
        raise UsageError(
            f"vit image_size {image_size} is not a multiple of patch_size {patch_size}; "
            "choose a patch size that divides it."
        )
    if embed_dim % num_heads:
        raise UsageError(
            f"vit embed_dim {embed_dim} is not a multiple of num_heads {num_heads}; "
            "choose a head count that divides it."
        )
    return ViT(in_channels, image_size, patch_size, embed_dim, depth, num_heads, mlp_dim, pooling)
