"""A backbone's weights as a plain state dict, for code that does not use ssdd.

The ResNets take torchvision's key names (`conv1`, `bn1`, `layer1` … `layer4`; the blocks are
torchvision's `BasicBlock` already), so the dict loads into `torchvision.models.resnet18()` or
timm's `resnet18` with `strict=False`, only the classifier `fc` missing. Our CIFAR stems are a
3×3 stride-1 conv without max-pool: replace torchvision's `conv1` by
`nn.Conv2d(c, width, 3, 1, padding, bias=False)` (padding 2 for `stem="cifar"`, 1 for
"cifar-same") and its `maxpool` by `nn.Identity()` first; `stem="imagenet"` is torchvision's own.
Every other architecture keeps its own key names: the dict loads into
`create_backbone(arch, in_channels, image_size, **backbone.config)` (`backbone_spec` says which).
"""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor

from ssdd_cli.models.base import Backbone

TORCHVISION_NAMED = ("resnet10", "resnet18")


def export_state_dict(backbone: Backbone) -> dict[str, Tensor]:
    """{name: tensor} on the CPU, contiguous and detached (module docstring for the names)."""
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in backbone.state_dict().items()}
    if not _torchvision_named(backbone):
        return state
    out = {}
    for key, value in state.items():
        new = re.sub(r"^stages\.(\d+)\.", lambda m: f"layer{int(m.group(1)) + 1}.", key)
        new = re.sub(r"^stem\.0\.", "conv1.", new)
        out[re.sub(r"^stem\.1\.", "bn1.", new)] = value
    return out


def _torchvision_named(backbone: Backbone) -> bool:
    """A ResNet with BatchNorm: torchvision's ResNet, key for key (an instance-norm one is not)."""
    return backbone.arch in TORCHVISION_NAMED and backbone.config.get("norm", "bn") == "bn"


def backbone_spec(backbone: Backbone) -> dict[str, Any]:
    """What rebuilds the network the state dict belongs to: arch, in_channels, image_size,
    config, feature_dim, and the key-name convention ("torchvision" or "ssdd")."""
    names = "torchvision" if _torchvision_named(backbone) else "ssdd"
    return {"arch": backbone.arch, "in_channels": backbone.in_channels, "image_size": backbone.image_size,
            "config": dict(backbone.config), "feature_dim": backbone.feature_dim, "names": names}
