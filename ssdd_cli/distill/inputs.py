"""What a method may look at: the normalised source on the device, its teacher's targets (for
self-supervised methods) and its labels (for the supervised DM family)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
from torch import Tensor

from ssdd_cli.budget import ImageShape
from ssdd_cli.kit.precision import FP32, Precision
from ssdd_cli.models import Backbone, extract_features
from ssdd_cli.teacher.cache import VIEWS, teacher_features
from ssdd_cli.teacher.targets import TARGET_SCALINGS, TargetScaling, check_features


@dataclass
class TeacherTargets:
    """The teacher g of a run: g(x) for new images, and g(view(X_t)) of the source, once per view.

    fn: normalised images (B, c, h, w) -> (B, d_y), without gradients.
    images: the normalised source X_t (n, c, h, w). d_y: the teacher's feature size.
    compute: view name -> g(view(X_t)) (n, d_y); default: `fn` on the whole view at once.
    sha256: the teacher's weights hash (recorded in the artifact).
    precision: of g(x) on new images (the cached views are computed once, in float32).
    scaling: the targets' standardisation (`teacher.targets`), applied to every g(x) this object
        returns; None: the raw features (set it with `scaled`).
    network: the teacher network behind `fn` (None when `fn` is another function), for the
        trained-network probe, which compares with it under its own BatchNorm rule.
    """

    fn: Callable[[Tensor], Tensor]
    images: Tensor
    d_y: int
    sha256: str = ""
    compute: Callable[[str], Tensor] | None = None
    precision: Precision = FP32
    scaling: TargetScaling | None = None
    network: Backbone | None = field(default=None, repr=False)
    _views: dict[str, Tensor] = field(default_factory=dict, repr=False)

    @classmethod
    def from_backbone(cls, backbone: Backbone, meta: dict[str, str], images: Tensor,
                      device: torch.device, file: Path | None = None,
                      precision: Precision = FP32) -> TeacherTargets:
        """A teacher network; with `file`, its features are cached beside it (`teacher.cache`)."""
        compute = partial(teacher_features, backbone, meta, images, device=device, teacher_file=file,
                          split="source")
        return cls(partial(extract_features, precision.module(backbone), device=device), images,
                   backbone.feature_dim, meta.get("ssdd.sha256", ""), compute, precision, network=backbone)

    def scaled(self, targets: str) -> TeacherTargets:
        """These targets "raw", or "standardized" with μ and σ of g(X_t) (`teacher.targets`)."""
        if targets not in TARGET_SCALINGS:
            raise ValueError(f"unknown target scaling {targets!r}; choose one of {TARGET_SCALINGS}")
        raw = replace(self, scaling=None, _views={}).features()
        if targets == "raw":
            check_features(raw)  # a collapsed teacher is refused whatever the scaling
            return replace(self, scaling=None, _views={"identity": raw})
        scaling = TargetScaling.fit(raw)  # the identity view, already computed, is kept scaled
        return replace(self, scaling=scaling, _views={"identity": scaling.apply(raw)})

    def features(self, view: str = "identity") -> Tensor:
        """g(view(X_t)), scaled: (n, d_y), computed once per view."""
        if view not in self._views:
            raw = self.compute(view) if self.compute else self.fn(VIEWS[view](self.images))
            self._views[view] = raw if self.scaling is None else self.scaling.apply(raw)
        return self._views[view]

    def __call__(self, x: Tensor) -> Tensor:
        """g(x), scaled, for normalised images x (B, c, h, w): (B, d_y) float32, no grad."""
        with torch.no_grad():
            y = self.precision.run(self.fn, x)
            return y if self.scaling is None else self.scaling.apply(y)


@dataclass(frozen=True)
class DistillInputs:
    """The source as distillation sees it, and the run's generator (every random draw).

    teacher: None for a method that needs none (`Method.needs_teacher`, the DM family).
    held_out: normalised validation images (never test images), for the held-out signal;
        held_out_labels their labels (None for an unlabelled source).
    mean, std: the normalisation of `images` (None: images are in [0, 1] pixel space).
    precision: of the network passes (`kit.precision`; the teacher's is `teacher.precision`).
    """

    images: Tensor  # (n, c, h, w) the normalised source side (train; val held out)
    teacher: TeacherTargets | None
    generator: torch.Generator
    labels: Tensor | None = None  # (n,) int64, or None for an unlabelled source
    held_out: Tensor | None = None  # (n_val, c, h, w) on the device
    held_out_labels: Tensor | None = None  # (n_val,) int64 on the device
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    precision: Precision = FP32

    @property
    def black(self) -> tuple[float, ...]:
        """The value of a black pixel per channel in the images' space (−mean/std, or 0)."""
        if self.mean is None or self.std is None:
            return (0.0,) * self.images.shape[1]
        return tuple(-m / s for m, s in zip(self.mean, self.std, strict=True))

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def d_y(self) -> int:
        """The teacher's feature size (0 without a teacher)."""
        return self.teacher.d_y if self.teacher is not None else 0

    def require_teacher(self) -> TeacherTargets:
        """The teacher; a method that needs one is never run without it."""
        if self.teacher is None:
            raise ValueError("this method needs the teacher's targets, and none was given")
        return self.teacher

    @property
    def shape(self) -> ImageShape:
        c, h, w = self.images.shape[1:]
        return ImageShape(int(c), int(h), int(w))
