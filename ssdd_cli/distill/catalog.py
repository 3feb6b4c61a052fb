"""The distillation methods as the command line sees them before anything runs, without torch.

`ssdd budget`, `ssdd --help`, the `--method` and `--aug` choices and shell completion need the
methods' names, summaries and budget arithmetic, but the methods themselves (`distill/methods/`)
are built on torch, whose import takes seconds. This module restates, torch-free, what they
declare: a `MethodCard` per method, the predefined augmentations' view counts, and
`plan_budget`, each method's `configure` + `plan` for the budget's settings alone.
tests/distill/test_catalog.py checks, for every registered method, preset and setting, that the
card and `plan_budget` agree with the method (report, or error type and option), so a method
added or changed without its card fails there.

Budget kinds (`budget.py` has the arithmetic):

    parameterized   SSDD: bases, coefficients, Q_a; settings U, V, scale, aug, hidden, targets
    raw             raw images and targets (krr-st, random, kmeans); setting count_targets
    per-class       labelled images, IPC per class (the DM family); setting count_targets
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ssdd_cli.budget import AUG_TARGETS, BudgetReport, ImageShape, class_budget, raw_budget, ssdd_budget
from ssdd_cli.errors import BudgetError, UsageError
from ssdd_cli.presets import Preset

BUDGET_SETTINGS = {
    "parameterized": ("U", "V", "scale", "aug", "hidden", "targets"),
    "raw": ("count_targets",),
    "per-class": ("count_targets",),
}


@dataclass(frozen=True)
class MethodCard:
    """What a method declares that the command line needs before importing it.

    budget: a key of `BUDGET_SETTINGS`. factor: multi-formation factor l of a per-class method
    (each stored image decodes into l² training images); min_samples: decoded images per class
    its loss needs (a covariance needs 2).
    """

    name: str
    summary: str
    budget: str
    needs_teacher: bool = True
    needs_labels: bool = False
    factor: int = 1
    min_samples: int = 1


def _matching(name: str, summary: str, factor: int = 1, min_samples: int = 1) -> MethodCard:
    return MethodCard(name, summary, "per-class", needs_teacher=False, needs_labels=True, factor=factor,
                      min_samples=min_samples)


METHOD_CARDS: dict[str, MethodCard] = {card.name: card for card in (
    MethodCard("ssdd", "bases and coefficients, predefined augmentations, approximation networks (SSDD)",
               "parameterized"),
    MethodCard("krr-st", "raw images and targets optimised by the KRR outer loss (Lee et al. 2024)", "raw"),
    MethodCard("random", "m real images drawn uniformly (or per class), with their teacher targets", "raw"),
    MethodCard("kmeans", "the real image nearest each of m k-means centroids of the teacher features", "raw"),
    _matching("dm", "class-wise mean embeddings under random ConvNets (Zhao & Bilen 2023)"),
    _matching("datadam", "spatial attention maps and final embeddings matched class-wise "
              "(Sajedi et al. 2023)"),
    _matching("iid", "DM with class centralisation and local covariance matching (Deng et al. 2024)",
              min_samples=2),
    _matching("dsdm", "prototypes, covariances and historical prototypes under pretrained ConvNets "
              "(Li et al. 2024)", factor=2, min_samples=2),
    _matching("idm", "DM with a queue of partly trained ConvNets, tiles and class-aware CE "
              "(Zhao et al. 2023)", factor=2),
)}

# The predefined augmentations (`distill.augment`) and their number of views A.
AUGMENTATION_VIEWS: dict[str, int] = {"crop": 5, "jigsaw": 3, "none": 0, "rotate": 3}
DEFAULT_AUGMENTATION = "rotate"


def method_names() -> list[str]:
    """The methods' names, sorted (as `distill.methods.list_methods()`)."""
    return sorted(METHOD_CARDS)


def method_card(name: str) -> MethodCard:
    """The card of method `name`; a `UsageError` listing the methods otherwise."""
    if name not in METHOD_CARDS:
        raise UsageError(f"unknown method {name!r}; choose one of: {', '.join(method_names())}.",
                         option="method")
    return METHOD_CARDS[name]


def plan_budget(method: str, preset: Preset, N: int, d_y: int, **settings: Any) -> BudgetReport:
    """The budget of `method` at N images on `preset` (d_y: the teacher's feature width, 0 for
    a method without teacher), with the budget's settings (`BUDGET_SETTINGS`; None: the preset's).

    The same report, or the same error, as `get_method(method).plan(configure(...), shape, d_y)`.
    """
    card = method_card(method)
    takes = BUDGET_SETTINGS[card.budget]
    for option, value in settings.items():
        if value is not None and option not in takes:
            raise UsageError(f"method {method!r} has no setting {option!r}; of the budget's settings it "
                             f"takes: {', '.join(takes)}.", option=option)
    shape = ImageShape(preset.channels, preset.resolution, preset.resolution)
    count = bool(settings.get("count_targets") or False)
    if card.budget == "raw":
        return raw_budget(N, shape, count_targets=count, target_floats=d_y)
    if card.budget == "per-class":
        return _per_class(card, preset, N, shape, count)
    return _parameterized(preset, N, d_y, shape, settings)


def _parameterized(preset: Preset, N: int, d_y: int, shape: ImageShape,
                   given: dict[str, Any]) -> BudgetReport:
    """SSDD's `defaults` (the preset's Table-5 row, scale and hidden width), its config checks and
    `ssdd_budget`."""
    row = preset.budgets.row(N, preset.base_dim, d_y)

    def pick(option: str, default: Any) -> Any:
        value = given.get(option)
        return default if value is None else value

    U, V = pick("U", row.U), pick("V", row.V)
    scale, hidden = pick("scale", preset.distill.scale), pick("hidden", preset.distill.hidden)
    aug, targets = pick("aug", DEFAULT_AUGMENTATION), pick("targets", "approx")
    if hidden < 1:
        raise UsageError(f"the approximation networks need a hidden width of at least 1, got {hidden}.",
                         option="hidden")
    if aug not in AUGMENTATION_VIEWS:
        names = ", ".join(sorted(AUGMENTATION_VIEWS))
        raise UsageError(f"unknown augmentation {aug!r}; choose one of: {names}.", option="aug")
    if targets not in AUG_TARGETS:
        raise UsageError(f"unknown targets of the augmented views {targets!r}; choose one of: "
                         f"{', '.join(AUG_TARGETS)}.", option="targets")
    A = AUGMENTATION_VIEWS[aug]
    if targets != "approx" and not A:
        raise UsageError(f"targets {targets!r} model augmented views, but augmentation {aug!r} has none; "
                         "choose an augmentation or drop the targets.", option="targets")
    return ssdd_budget(N, U, V, shape, scale=scale, feature_dim=d_y, hidden=hidden, A=A, targets=targets)


def _per_class(card: MethodCard, preset: Preset, N: int, shape: ImageShape, count: bool) -> BudgetReport:
    """The DM family's `MatchingMethod.plan`: IPC per class, enough decoded images for the loss."""
    if preset.classes is None:
        raise UsageError(f"{card.name} distills class by class, and the source's classes are unknown; "
                         "use a labelled source.", option="source")
    report = class_budget(N, shape, preset.classes, count_targets=count)
    assert report.per_class is not None
    decoded = report.per_class * card.factor**2
    if decoded < card.min_samples:
        ipc = -(-card.min_samples // card.factor**2)
        need = -(-preset.classes * ipc * (shape.floats + count) // shape.floats)
        raise BudgetError(f"{card.name} matches a covariance, which needs at least {card.min_samples} "
                          f"synthetic images per class, but N = {N} buys {decoded}; use N ≥ {need}.",
                          option="budget")
    if shape.height % card.factor or shape.width % card.factor:
        raise UsageError(f"{shape.height}×{shape.width} images do not split into {card.factor}×"
                         f"{card.factor} tiles; use a factor that divides the resolution.", option="factor")
    return report
