"""The `.ssdd` v1 manifest: a strict pydantic model stored as JSON under `ssdd.manifest`.

`expected_tensors(manifest)` derives, from the manifest alone, every tensor name with its shape
and dtype; the reader checks the file against it and the writer refuses anything else.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from ssdd_cli import __version__

FORMAT_MAJOR = 1
FORMAT_MINOR = 4
FORMAT_VERSION = f"{FORMAT_MAJOR}.{FORMAT_MINOR}"
MANIFEST_KEY = "ssdd.manifest"

Convention = Literal["parameterized", "raw-images", "raw-images+targets"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceInfo(_Strict):
    """The distilled source: shape of its images and the normalisation used during distillation."""

    name: str
    channels: PositiveInt
    height: PositiveInt
    width: PositiveInt
    mean: list[float]
    std: list[float]
    classes: PositiveInt | None = None
    preset: str | None = Field(None, description="the preset it was distilled with (1.1; absent: "
                               "the source's own)")

    @model_validator(mode="after")
    def _per_channel(self) -> SourceInfo:
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError("mean and std need one value per channel")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be positive")
        return self


class BudgetInfo(_Strict):
    """N images' worth of floats, and how the stored floats were counted."""

    images: PositiveInt = Field(description="the budget N, in images")
    floats_allowed: int = Field(ge=0, description="N·c·h·w")
    floats_used: int = Field(ge=0, description="floats actually stored under the convention")
    components: dict[str, int] = Field(description="floats per component, e.g. B^x, C^x, ...")
    convention: Convention

    @model_validator(mode="after")
    def _sums(self) -> BudgetInfo:
        if sum(self.components.values()) != self.floats_used:
            raise ValueError("floats_used must equal the sum of the components")
        return self


class Parameterization(_Strict):
    """X_s = D(C^x B^x, s), Y_s = C^y B^y (SSDD §3.2)."""

    m: PositiveInt = Field(description="number of distilled images")
    U: PositiveInt = Field(description="image bases")
    V: PositiveInt = Field(description="representation bases")
    scale: PositiveInt = Field(description="image bases live at (h/s, w/s)")
    feature_dim: PositiveInt = Field(description="d_y, the teacher's representation size")
    upsampling: Literal["bilinear"] = "bilinear"
    centering: Literal["uncentered"] = Field(
        "uncentered", description="bases from an uncentred SVD: no mean is stored"
    )


class RawImages(_Strict):
    """Raw-image artifacts (random, kmeans, krr-st, the DM family)."""

    m: PositiveInt
    target_dim: PositiveInt | None = Field(None, description="d_y of stored `targets`, if any")
    labels: bool = Field(False, description="whether integer `labels` are stored")
    factor: PositiveInt = Field(
        1, description="multi-formation (1.2): each stored image holds factor×factor tiles, each "
                       "upsampled bilinearly to a full training image; 1: plain images")


AugTargets = Literal["approx", "same", "bias", "ideal"]


class Augmentations(_Strict):
    """The predefined augmentations τ_1..τ_A (SSDD §3.3), in view order, and how the targets of
    the augmented views are stored (`targets`, 1.1, SSDD Table 11): "approx" (networks Q_a,
    `approx`), "same" (the views share Y_s), "bias" (Y_s + b_a B^y, `repr.aug_shift` (A, V)),
    "ideal" (C^y_a B^y, `repr.aug_coeffs` (A, m, V)). Absent (files that predate it): "approx"
    when `approx` is given, else "same"."""

    name: Literal["rotate", "jigsaw", "crop", "none"]
    views: list[str]
    targets: AugTargets | None = None


class Approx(_Strict):
    """Approximation networks Q_a: V → hidden → V, one per augmentation."""

    hidden: PositiveInt
    activation: Literal["relu"] = "relu"


class Teacher(_Strict):
    """The teacher whose features are the artifact's targets, and how they were scaled (1.3):
    "standardized" targets are (g(x) − target_mean) / target_std per dimension, with the mean and
    std of g over the source's images; "raw" (or absent, in older files) are g(x) itself."""

    arch: str
    ssl_method: str = "barlow_twins"
    feature_dim: PositiveInt
    sha256: str
    targets: Literal["raw", "standardized"] | None = Field(
        None, description="how the stored targets are scaled (1.3; absent: raw)")
    target_mean: list[float] | None = Field(None, description="μ per dimension (standardized only)")
    target_std: list[float] | None = Field(None, description="σ per dimension (standardized only)")

    @model_validator(mode="after")
    def _scaling(self) -> Teacher:
        standardized = self.targets == "standardized"
        for name, values in (("target_mean", self.target_mean), ("target_std", self.target_std)):
            if standardized != (values is not None):
                raise ValueError(f"{name} is given exactly when the targets are standardized")
            if values is not None and len(values) != self.feature_dim:
                raise ValueError(f"{name} needs one value per feature dimension ({self.feature_dim})")
        if self.target_std is not None and any(s <= 0 for s in self.target_std):
            raise ValueError("target_std values must be positive")
        return self


class DistillConfig(_Strict):
    """How the artifact was distilled, so the run can be repeated.

    `settings` (1.1) holds every setting of the method's config by dotted name (e.g.
    "krr.pool.size"); `held_out` (1.1) the held-out signal over the run, as (step, loss) pairs.
    Files of format 1.0 recorded the KRR settings in the fields `batch_size` … `ridge` instead;
    they are read, never written.
    """

    steps: int = Field(ge=0, description="outer steps (0 for a selection baseline)")
    lr: float | None = Field(None, description="outer learning rate, if optimised")
    seed: int
    final_loss: float | None = None
    settings: dict[str, Any] = Field(default_factory=dict, description="the method's config, flat")
    held_out: list[tuple[int, float]] = Field(
        default_factory=list, description="(step, loss) of the objective on held-out validation data")
    probe: list[tuple[int, dict[str, float]]] = Field(
        default_factory=list, description="(step, signals) of a network pretrained on the set at that "
        "step, measured on validation images (1.3)")
    movement: list[tuple[int, dict[str, float]]] = Field(
        default_factory=list, description="(step, ‖Δ‖/‖initial‖ per learnable tensor and of the images) "
        "of the set against its state before the first outer step (1.4)")
    batch_size: PositiveInt | None = None
    real_aug: Literal["none", "flip", "crop-flip"] | None = None
    pool_size: PositiveInt | None = None
    pool_max_steps: PositiveInt | None = None
    inner_arch: str | None = None
    ridge: float | None = Field(None, description="λ = ridge·tr(K) in the KRR solve")


class Manifest(_Strict):
    format_version: str = Field(FORMAT_VERSION, pattern=r"^\d+\.\d+$")
    method: str
    source: SourceInfo
    budget: BudgetInfo
    parameterization: Parameterization | None = None
    raw: RawImages | None = None
    augmentations: Augmentations | None = None
    approx: Approx | None = None
    teacher: Teacher | None = None
    distill: DistillConfig | None = None
    tool_version: str = __version__
    created: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @model_validator(mode="after")
    def _one_layout(self) -> Manifest:
        if (self.parameterization is None) == (self.raw is None):
            raise ValueError("exactly one of `parameterization` and `raw` must be given")
        if self.approx is not None and self.parameterization is None:
            raise ValueError("`approx` needs a parameterized artifact")
        if self.approx is not None and not self.views:
            raise ValueError("`approx` needs augmentations with at least one view")
        if (self.aug_targets == "approx") != (self.approx is not None) and self.views:
            raise ValueError("`approx` is given exactly when the augmented views' targets are approx")
        if self.aug_targets is not None and not self.views:
            raise ValueError("targets of augmented views need augmentations with at least one view")
        return self

    @property
    def views(self) -> list[str]:
        return list(self.augmentations.views) if self.augmentations else []

    @property
    def aug_targets(self) -> str | None:
        """How the augmented views' targets are stored (None without augmented views), with the
        default of files that predate `Augmentations.targets`."""
        if not self.views or self.augmentations is None:
            return None
        if self.augmentations.targets is not None:
            return self.augmentations.targets
        return "approx" if self.approx is not None else "same"

    @property
    def m(self) -> int:
        layout = self.parameterization or self.raw
        assert layout is not None
        return layout.m


TensorSpec = tuple[tuple[int, ...], str]  # (shape, dtype name: "float32" | "int64")


def expected_tensors(manifest: Manifest) -> dict[str, TensorSpec]:
    """Every tensor an artifact with this manifest must hold, with its shape and dtype."""
    src = manifest.source
    out: dict[str, TensorSpec] = {}
    p = manifest.parameterization
    if p is not None:
        h, w = src.height // p.scale, src.width // p.scale
        out["image.bases"] = ((p.U, src.channels, h, w), "float32")
        out["image.coeffs"] = ((p.m, p.U), "float32")
        out["repr.bases"] = ((p.V, p.feature_dim), "float32")
        out["repr.coeffs"] = ((p.m, p.V), "float32")
        if manifest.approx is not None:
            hid = manifest.approx.hidden
            for a in range(len(manifest.views)):
                out[f"approx.{a}.0.weight"] = ((hid, p.V), "float32")
                out[f"approx.{a}.0.bias"] = ((hid,), "float32")
                out[f"approx.{a}.1.weight"] = ((p.V, hid), "float32")
                out[f"approx.{a}.1.bias"] = ((p.V,), "float32")
        if manifest.aug_targets == "bias":
            out["repr.aug_shift"] = ((len(manifest.views), p.V), "float32")
        elif manifest.aug_targets == "ideal":
            out["repr.aug_coeffs"] = ((len(manifest.views), p.m, p.V), "float32")
    raw = manifest.raw
    if raw is not None:
        out["images"] = ((raw.m, src.channels, src.height, src.width), "float32")
        if raw.target_dim is not None:
            out["targets"] = ((raw.m, raw.target_dim), "float32")
        if raw.labels:
            out["labels"] = ((raw.m,), "int64")
    return out
