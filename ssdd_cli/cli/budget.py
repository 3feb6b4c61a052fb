"""`ssdd budget`: floats per component and the largest m that fits N images' worth of floats."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ssdd_cli.budget import ImageShape
from ssdd_cli.cli._common import console
from ssdd_cli.cli._tables import budget_table
from ssdd_cli.data import source_preset
from ssdd_cli.distill.methods import get_method, list_methods


def register(app: typer.Typer) -> None:
    @app.command("budget")
    def command(
        U: Annotated[int | None, typer.Option("--U", help="ssdd: image bases (default: preset).")] = None,
        V: Annotated[int | None, typer.Option("--V", help="ssdd: representation bases.")] = None,
        budget: Annotated[int | None, typer.Option("--budget", help="N, in images.")] = None,
        source: Annotated[str, typer.Option(help="Source whose image shape counts.")] = "cifar100",
        preset: Annotated[str | None, typer.Option(help="Preset (default: the source's).")] = None,
        method: Annotated[str, typer.Option(help=", ".join(list_methods()))] = "ssdd",
        scale: Annotated[int | None, typer.Option(help="ssdd: image bases at (h/s, w/s).")] = None,
        feature_dim: Annotated[int, typer.Option(help="d_y of the teacher.")] = 512,
        aug: Annotated[str | None, typer.Option(help="ssdd: predefined augmentation (sets A).")] = None,
        hidden: Annotated[int | None, typer.Option(help="ssdd: approximation hidden width.")] = None,
        targets: Annotated[str | None, typer.Option(
            help="ssdd: augmented views' targets: approx, same, bias or ideal.")] = None,
        count_targets: Annotated[bool | None, typer.Option(
            "--count-targets/--no-count-targets", help="Raw-image methods: charge targets.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    ) -> None:
        """Print floats per component and the largest m that fits the budget."""
        chosen_preset = source_preset(source, preset)
        shape = ImageShape(chosen_preset.channels, chosen_preset.resolution, chosen_preset.resolution)
        N = chosen_preset.budgets.default if budget is None else budget
        chosen = get_method(method)
        config = chosen.configure(chosen_preset, N, feature_dim, U=U, V=V, scale=scale, aug=aug,
                                  hidden=hidden, targets=targets, count_targets=count_targets)
        report = chosen.plan(config, shape, feature_dim)
        if as_json:
            doc = {"method": method, "source": source, "N": N, "m": report.m, "per_class": report.per_class,
                   "convention": report.convention, "components": report.components,
                   "total": report.used, "allowed": report.allowed, "spare": report.spare}
            console.print_json(json.dumps(doc))
            return
        title = f"{method} budget · {source} {shape.channels}×{shape.height}×{shape.width}"
        console.print(budget_table(report.components, report.allowed, report.m, N,
                                   report.convention, title))
        per_class = f" ({report.per_class} per class)" if report.per_class is not None else ""
        console.print(f"largest m that fits: [bold]m = {report.m}[/]{per_class}")
