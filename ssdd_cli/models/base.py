"""The `Backbone` contract every architecture in the registry follows."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn


class Backbone(nn.Module):
    """A feature extractor: images (B, in_channels, image_size, image_size) -> (B, feature_dim).

    Attributes:
        arch: the registry name that builds this network (`create_backbone(arch, ...)`).
        in_channels: channels of the input images (1 or 3 in practice).
        image_size: side of the square input images, in pixels.
        feature_dim: d_h, the width of `features(x)`.
        config: the keyword arguments (beyond `in_channels` and `image_size`) that rebuild this
            exact network with `create_backbone(arch, in_channels, image_size, **config)`, with
            defaults already resolved, JSON-serialisable.

    `forward` is `features`: a backbone has no head. Heads (the linear map to d_y in pretraining,
    the classifier in evaluation) belong to the code that trains them.

    `feature_layer` is the main path's last weighted layer before the features (its last
    convolution; a ViT's last MLP projection), never a shortcut's projection that runs after it:
    `train.diagnostics` judges whether pretraining moved the backbone by that layer's weight.
    """

    arch: str
    in_channels: int
    image_size: int
    feature_dim: int
    config: dict[str, Any]

    def __init__(self, arch: str, in_channels: int, image_size: int, config: dict[str, Any]) -> None:
        super().__init__()
        self.arch = arch
        self.in_channels = in_channels
        self.image_size = image_size
        self.config = dict(config)
        self.feature_dim = 0  # set by the subclass once its layers exist

    def features(self, x: Tensor) -> Tensor:
        """Map images x: (B, in_channels, image_size, image_size) to features (B, feature_dim)."""
        raise NotImplementedError

    @property
    def feature_layer(self) -> nn.Module:
        """The last layer with weights on the main path before the features (class docstring).
        By default the last convolution registered, or the last module with a weight of two or
        more dimensions; an architecture that registers a branch (a shortcut) after its main path
        overrides it, as every registered one does."""
        convs: list[nn.Module] = [m for m in self.modules() if isinstance(m, nn.Conv2d)]
        weighted = convs or [m for m in self.modules() if _weight_ndim(m) >= 2]
        if not weighted:
            raise TypeError(f"backbone {self.arch!r} has no layer with a weight of two or more dimensions")
        return weighted[-1]

    @property
    def feature_weight(self) -> str:
        """The name of `feature_layer`'s weight among `named_parameters()`, e.g.
        "stages.3.0.conv2.weight" for ResNet-10."""
        layer = self.feature_layer
        return next(name for name, module in self.named_modules() if module is layer) + ".weight"

    def forward(self, x: Tensor) -> Tensor:
        """Same as `features`: x (B, in_channels, image_size, image_size) -> (B, feature_dim)."""
        return self.features(x)

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch!r}, in_channels={self.in_channels}, image_size={self.image_size}, "
            f"feature_dim={self.feature_dim}"
        )


def _weight_ndim(module: nn.Module) -> int:
    """The dimensions of the module's own `weight` (0 without one)."""
    weight = module._parameters.get("weight")
    return weight.ndim if weight is not None else 0


def last_conv(layers: nn.Sequential) -> nn.Conv2d:
    """The last convolution among `layers`' direct children (a plain conv-norm-ReLU stack)."""
    return [m for m in layers if isinstance(m, nn.Conv2d)][-1]
