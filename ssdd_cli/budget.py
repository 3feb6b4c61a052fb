"""Budget accounting (DESIGN.md §7): N images ≡ N·c·h·w floats.

A parameterised (SSDD) artifact stores
    |B^x| = U·c·(h/s)·(w/s),  |C^x| = m·U,  |B^y| = V·d_y,  |C^y| = m·V,
and, for the A augmented views' targets (`targets`, SSDD Table 11):
    approx (the method):  Σ_a |Q_a| = A·(V·h_q + h_q + h_q·V + V)  (perceptrons V → h_q → V)
    bias:                 |b_a| = A·V                               (one shift per view)
    ideal:                |C^y_a| = A·m·V                           (every view's coefficients)
    same:                 nothing                                   (the views share Y_s)
and the largest m that fits is ⌊(N·c·h·w − |B^x| − |B^y| − fixed targets) / (U + V [+ A·V])⌋.

The bases are fitted by an *uncentred* SVD (see `distill/param.py`), so C^x B^x reproduces the
projected images without a separate mean: nothing else is stored, and the count is exact.

Raw-image methods store m images of c·h·w floats, plus (with `count_targets`) a d_y-float target
or a one-float label per image; the papers do not count targets, the manifest records the choice.

Labelled methods (the DM family) store the same number of images per class:
    IPC = ⌊N·c·h·w / (classes · (c·h·w [+ 1]))⌋,   m = IPC · classes,
the "+ 1" being the label when labels are counted. (Without labels counted, IPC = ⌊N / classes⌋.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ssdd_cli.errors import BudgetError, UsageError

PARAMETERIZED = "parameterized"
# How the targets of the A augmented views are stored (SSDD Table 11); "approx" is the method.
AUG_TARGETS = ("approx", "same", "bias", "ideal")
RAW_IMAGES = "raw-images"
RAW_IMAGES_TARGETS = "raw-images+targets"


@dataclass(frozen=True)
class ImageShape:
    channels: int
    height: int
    width: int

    @property
    def floats(self) -> int:
        return self.channels * self.height * self.width


@dataclass(frozen=True)
class BudgetReport:
    """The outcome of a budget computation: components in floats and the number of images m."""

    N: int
    m: int
    convention: str
    components: dict[str, int]
    allowed: int
    per_class: int | None = None  # images per class (IPC) for labelled methods

    @property
    def used(self) -> int:
        return sum(self.components.values())

    @property
    def spare(self) -> int:
        return self.allowed - self.used

    @property
    def shortfall(self) -> str | None:
        """A sentence when a parameterisation holds fewer images than N raw images would (its
        bases took most of the floats, e.g. the rule's U = V = 2N capped at the dimensions on a
        small source), else None: the budget is met, but the plan is probably not what was meant."""
        if self.convention != PARAMETERIZED or self.m >= self.N:
            return None
        return (f"the bases leave room for only m = {self.m} images, fewer than the N = {self.N} raw "
                f"images the same floats hold; fewer bases (smaller U and V) store more images.")


def floats_allowed(n_images: int, shape: ImageShape) -> int:
    """N images' worth of floats."""
    return n_images * shape.floats


def approx_floats(V: int, hidden: int, A: int) -> int:
    """Σ_a |Q_a| for A perceptrons V → hidden → V with biases."""
    return A * (V * hidden + hidden + hidden * V + V)


def ssdd_components(
    m: int, U: int, V: int, shape: ImageShape, scale: int, feature_dim: int, hidden: int, A: int,
    targets: str = "approx",
) -> dict[str, int]:
    """Per-component float counts of a parameterised artifact with m images (module docstring);
    the augmented views' targets appear as "Q_a", "b_a", "C^y_a" or not at all ("same")."""
    base_h, base_w = shape.height // scale, shape.width // scale
    out = {
        "B^x": U * shape.channels * base_h * base_w,
        "C^x": m * U,
        "B^y": V * feature_dim,
        "C^y": m * V,
    }
    if targets == "approx":
        out["Q_a"] = approx_floats(V, hidden, A) if A else 0
    elif targets == "bias" and A:
        out["b_a"] = A * V
    elif targets == "ideal" and A:
        out["C^y_a"] = A * m * V
    return out


def ssdd_budget(
    N: int,
    U: int,
    V: int,
    shape: ImageShape,
    *,
    scale: int = 2,
    feature_dim: int = 512,
    hidden: int = 4,
    A: int = 3,
    targets: str = "approx",
) -> BudgetReport:
    """Solve for the largest m whose parameterised artifact fits N images' worth of floats.

    targets: how the augmented views' targets are stored (module docstring); "ideal" costs A·V
    floats per image on top of U + V.
    Raises `BudgetError` when the bases and approximation networks alone leave no room for one
    image, saying by how much and which U = V or N would fit.
    """
    if targets not in AUG_TARGETS:
        raise ValueError(f"unknown targets {targets!r}")
    _check_positive(N=N, U=U, V=V, scale=scale, feature_dim=feature_dim)
    if shape.height % scale or shape.width % scale:
        raise BudgetError(
            f"scale {scale} does not divide the {shape.height}×{shape.width} image; "
            "use a scale that divides the resolution (2 at 32 px, 4 at 64 px).", option="scale"
        )
    base_dim = shape.channels * (shape.height // scale) * (shape.width // scale)
    if U > base_dim:
        raise BudgetError(
            f"U = {U} image bases exceed their dimension {base_dim} (c·h/s·w/s); use U ≤ {base_dim}.",
            option="U",
        )
    if V > feature_dim:
        raise BudgetError(
            f"V = {V} representation bases exceed the feature dimension {feature_dim}; "
            f"use V ≤ {feature_dim}.", option="V"
        )
    allowed = floats_allowed(N, shape)
    fixed = sum(ssdd_components(0, U, V, shape, scale, feature_dim, hidden, A, targets).values())
    per_image = U + V + (A * V if targets == "ideal" else 0)
    m = (allowed - fixed) // per_image
    if m < 1:
        need = fixed + per_image
        fit_uv = _largest_equal_bases(allowed, shape, scale, feature_dim, hidden, A, base_dim, targets)
        hint = f"U = V ≤ {fit_uv}" if fit_uv else "no U = V"
        raise BudgetError(
            f"the bases and approximation networks need {fixed:,} floats plus {per_image:,} per image, "
            f"{need - allowed:,} more than N = {N} allows ({allowed:,}); "
            f"use {hint} at this N, or N ≥ {math.ceil(need / shape.floats)}.", option="budget"
        )
    comps = ssdd_components(m, U, V, shape, scale, feature_dim, hidden, A, targets)
    return BudgetReport(N=N, m=m, convention=PARAMETERIZED, components=comps, allowed=allowed)


def raw_budget(
    N: int, shape: ImageShape, *, count_targets: bool = False, target_floats: int = 0
) -> BudgetReport:
    """Raw-image methods: m = ⌊floats / (c·h·w [+ target floats])⌋ images.

    `target_floats` is d_y for self-supervised targets or 1 for a class label; it is only charged
    when `count_targets` is set (the papers do not count targets).
    """
    _check_positive(N=N)
    allowed = floats_allowed(N, shape)
    per_image = shape.floats + (target_floats if count_targets else 0)
    m = allowed // per_image
    comps = {"images": m * shape.floats}
    if target_floats:
        comps["targets" if target_floats > 1 else "labels"] = (
            m * target_floats if count_targets else 0
        )
    convention = RAW_IMAGES_TARGETS if count_targets else RAW_IMAGES
    return BudgetReport(N=N, m=m, convention=convention, components=comps, allowed=allowed)


def class_budget(N: int, shape: ImageShape, classes: int, *, count_targets: bool = False) -> BudgetReport:
    """Labelled raw images: IPC = ⌊N·c·h·w / (classes·(c·h·w [+ 1 label]))⌋ per class.

    Raises `BudgetError` (option "budget") when N buys less than one image per class.
    """
    _check_positive(N=N, classes=classes)
    allowed = floats_allowed(N, shape)
    per_image = shape.floats + (1 if count_targets else 0)
    ipc = allowed // (classes * per_image)
    if ipc < 1:
        need = math.ceil(classes * per_image / shape.floats)
        raise BudgetError(f"a budget of N = {N} images buys less than one image for each of the {classes} "
                          f"classes; use N ≥ {need}.", option="budget")
    m = ipc * classes
    comps = {"images": m * shape.floats, "labels": m if count_targets else 0}
    convention = RAW_IMAGES_TARGETS if count_targets else RAW_IMAGES
    return BudgetReport(N=N, m=m, convention=convention, components=comps, allowed=allowed, per_class=ipc)


def _largest_equal_bases(
    allowed: int, shape: ImageShape, scale: int, feature_dim: int, hidden: int, A: int, base_dim: int,
    targets: str,
) -> int:
    """The largest U = V leaving room for at least one image (0 if none)."""
    best = 0
    for k in range(1, min(base_dim, feature_dim) + 1):
        fixed = sum(ssdd_components(1, k, k, shape, scale, feature_dim, hidden, A, targets).values())
        if fixed > allowed:
            break
        best = k
    return best


# The keyword of the Python API (and so the option the command line names) of each count.
_OPTIONS = {"N": "budget", "U": "U", "V": "V", "scale": "scale", "feature_dim": "feature_dim",
            "classes": "source"}


def _check_positive(**values: int) -> None:
    """A `UsageError` naming the setting when a count is below 1 (0 is 0, never "the default")."""
    for name, value in values.items():
        if value < 1:
            raise UsageError(f"{name} must be a positive whole number, got {value}.",
                             option=_OPTIONS.get(name))
