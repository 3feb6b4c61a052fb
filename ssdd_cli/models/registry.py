"""The backbone registry (`ssdd_cli.registry.Registry`): a decorator, a factory and a lister.

@register_backbone("convnet")
def convnet(in_channels: int, image_size: int, *, norm: str = "bn") -> Backbone: ...

create_backbone("convnet", in_channels=3, image_size=32, norm="in")
list_backbones()  # ["alexnet", "convnet", ...]
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from ssdd_cli.errors import UsageError, check_whole
from ssdd_cli.models.base import Backbone
from ssdd_cli.registry import Registry

BackboneBuilder = Callable[..., Backbone]
_B = TypeVar("_B", bound=BackboneBuilder)

BACKBONES: Registry[BackboneBuilder] = Registry("backbone", option="arch")
_POSITIONAL = ("in_channels", "image_size")


def register_backbone(name: str) -> Callable[[_B], _B]:
    """Register `builder(in_channels, image_size, **options) -> Backbone` under `name`.

    The builder's keyword options (everything after `in_channels` and `image_size`) are the
    options `create_backbone` accepts for this architecture. Registering a name twice is a
    programming error (`ValueError`).
    """

    def decorate(builder: _B) -> _B:
        params = list(inspect.signature(builder).parameters)
        if tuple(params[:2]) != _POSITIONAL:
            raise TypeError(f"builder for {name!r} must start with (in_channels, image_size)")
        BACKBONES.add(name, builder)
        return builder

    return decorate


def list_backbones() -> list[str]:
    """The registered backbone names, sorted."""
    return BACKBONES.names()


def backbone_options(name: str) -> list[str]:
    """The keyword options backbone `name` accepts besides `in_channels` and `image_size`."""
    builder = BACKBONES.get(name)
    return [p for p in inspect.signature(builder).parameters if p not in _POSITIONAL]


def create_backbone(name: str, in_channels: int, image_size: int, **kwargs: Any) -> Backbone:
    """Build backbone `name` for images (B, in_channels, image_size, image_size).

    `kwargs` are the architecture's options (e.g. `width=32` for the ResNets, `norm="in"` for the
    ConvNet). Unknown names, unknown options and impossible sizes raise `UsageError`.
    """
    builder = BACKBONES.get(name)
    for what, value in (("in_channels", in_channels), ("image_size", image_size)):
        check_whole(value, f"the backbone's {what}")
    options = backbone_options(name)
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        valid = ", ".join(options) if options else "none"
        raise UsageError(
            f"backbone {name!r} has no option {', '.join(map(repr, unknown))}; its options are: {valid}."
        )
    model = builder(in_channels, image_size, **kwargs)
    if model.arch != name:  # a builder registered under one name but stamping another
        raise RuntimeError(f"builder for {name!r} returned a backbone with arch {model.arch!r}")
    return model

