"""The backbone registry and the architectures in it.

Importing this package registers every family: convnet, resnet10, resnet18, vgg11, alexnet,
mobilenetv2 (KRR-ST's definitions, the papers' cross-architecture networks), their earlier
variants vgg11-gap, alexnet-gap and mobilenetv2-torchvision, and vit. Build one with
`create_backbone(name, in_channels, image_size, **options)`;
every backbone maps (B, in_channels, image_size, image_size) to `features` (B, feature_dim).
"""

from ssdd_cli.models import alexnet, convnet, mobilenet, resnet, vgg, vit  # noqa: F401  (registers)
from ssdd_cli.models.base import Backbone
from ssdd_cli.models.features import extract_features
from ssdd_cli.models.registry import (
    backbone_options,
    create_backbone,
    list_backbones,
    register_backbone,
)
from ssdd_cli.models.store import BackboneFileError, load_backbone, save_backbone

__all__ = [
    "Backbone",
    "BackboneFileError",
    "backbone_options",
    "create_backbone",
    "extract_features",
    "list_backbones",
    "load_backbone",
    "register_backbone",
    "save_backbone",
]
