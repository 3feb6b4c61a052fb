"""`ssdd budget`: floats per component and the largest m that fits N images' worth of floats.

Torch-free (the methods' budget arithmetic comes from `distill.catalog`), so it answers at once.
d_y defaults to the preset's teacher feature dimension (`TeacherPreset.feature_dim`: 128 for the
embedded sources' teachers, 512 for the paper presets' ResNet-18).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from ssdd_cli.budget import AUG_TARGETS
from ssdd_cli.cli._common import console
from ssdd_cli.cli._options import Preset, Source, choice
from ssdd_cli.cli._tables import budget_table
from ssdd_cli.data import source_preset
from ssdd_cli.distill.catalog import AUGMENTATION_VIEWS, method_card, method_names, plan_budget
from ssdd_cli.errors import UsageError

if TYPE_CHECKING:
    MethodName = str
    AugName = str
    TargetsName = str
else:
    MethodName = choice(method_names())
    AugName = choice(sorted(AUGMENTATION_VIEWS))
    TargetsName = choice(AUG_TARGETS)

Opt = typer.Option


def register(app: typer.Typer) -> None:
    @app.command("budget")
    def command(
        U: Annotated[int | None, Opt("--U", min=1, help="ssdd: image bases (default: the preset's).")] = None,
        V: Annotated[int | None, Opt("--V", min=1, help="ssdd: representation bases.")] = None,
        budget: Annotated[int | None, Opt("--budget", min=1, help="N, in images (default: the "
                                          "preset's).")] = None,
        source: Source = "cifar100",
        preset: Preset = None,
        method: Annotated[MethodName, Opt(help="Distillation method.")] = "ssdd",
        scale: Annotated[int | None, Opt(min=1, help="ssdd: image bases at (h/s, w/s).")] = None,
        feature_dim: Annotated[int | None, Opt(min=1, help="d_y of the teacher (default: the preset's "
                                               "teacher's).")] = None,
        aug: Annotated[AugName | None, Opt(help="ssdd: predefined augmentation (sets A).")] = None,
        hidden: Annotated[int | None, Opt(min=1, help="ssdd: approximation hidden width.")] = None,
        targets: Annotated[TargetsName | None, Opt(help="ssdd: augmented views' targets.")] = None,
        count_targets: Annotated[bool | None, Opt(
            "--count-targets/--no-count-targets", help="Raw-image methods: charge targets.")] = None,
        as_json: Annotated[bool, Opt("--json", help="Print JSON instead of a table.")] = False,
    ) -> None:
        """Print floats per component and the largest m that fits the budget."""
        chosen_preset = source_preset(source, preset)
        card = method_card(method)
        if feature_dim is not None and not card.needs_teacher:
            raise UsageError(f"method {method!r} has no teacher, so no feature dimension; drop it.",
                             option="feature_dim")
        d_y = (feature_dim or chosen_preset.teacher.feature_dim) if card.needs_teacher else 0
        N = chosen_preset.budgets.default if budget is None else budget
        report = plan_budget(method, chosen_preset, N, d_y, U=U, V=V, scale=scale, aug=aug, hidden=hidden,
                             targets=targets, count_targets=count_targets)
        res = chosen_preset.resolution
        if as_json:
            doc = {"method": method, "source": source, "preset": chosen_preset.name, "N": N,
                   "feature_dim": d_y, "m": report.m, "per_class": report.per_class,
                   "convention": report.convention, "components": report.components,
                   "total": report.used, "allowed": report.allowed, "spare": report.spare,
                   "note": report.shortfall}
            console.print_json(json.dumps(doc))
            return
        teacher = f", d_y = {d_y}" if d_y else ""
        title = f"{method} budget · {source} {chosen_preset.channels}×{res}×{res}{teacher}"
        console.print(budget_table(report.components, report.allowed, report.m, N, report.convention, title))
        per_class = f" ({report.per_class} per class)" if report.per_class is not None else ""
        console.print(f"largest m that fits: [bold]m = {report.m}[/]{per_class}")
        if report.shortfall:
            console.print(f"note: {report.shortfall}")
