"""`ssdd budget`: floats per component and the largest m that fits N images' worth of floats."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ssdd_cli.budget import ImageShape, raw_budget, ssdd_budget
from ssdd_cli.cli._common import console
from ssdd_cli.cli._tables import budget_table
from ssdd_cli.distill.augment import get_augmentation
from ssdd_cli.errors import UsageError
from ssdd_cli.presets import get_preset

# Raw-image methods and the size of what they pair with each image (d_y targets or a label).
RAW_TARGETS = {"krr-st": "targets", "random": "targets", "kmeans": "targets",
               "dm": "labels", "datadam": "labels", "iid": "labels", "dsdm": "labels"}


def register(app: typer.Typer) -> None:
    @app.command("budget")
    def command(
        U: Annotated[int | None, typer.Option("--U", help="Image bases (default: the preset's).")] = None,
        V: Annotated[int | None, typer.Option("--V", help="Representation bases.")] = None,
        budget: Annotated[int | None, typer.Option("--budget", help="N, in images.")] = None,
        source: Annotated[str, typer.Option(help="Source whose image shape counts.")] = "cifar100",
        method: Annotated[str, typer.Option(help="ssdd, or a raw-image method: "
                                            + ", ".join(RAW_TARGETS))] = "ssdd",
        scale: Annotated[int | None, typer.Option(help="Image bases at (h/s, w/s).")] = None,
        feature_dim: Annotated[int, typer.Option(help="d_y of the teacher.")] = 512,
        aug: Annotated[str, typer.Option(help="Predefined augmentation (sets A).")] = "rotate",
        hidden: Annotated[int | None, typer.Option(help="Approximation hidden width.")] = None,
        count_targets: Annotated[bool, typer.Option(help="Raw methods: charge targets/labels.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    ) -> None:
        """Print floats per component and the largest m that fits the budget."""
        preset = get_preset(source)
        shape = ImageShape(preset.channels, preset.resolution, preset.resolution)
        N = budget or preset.default_budget
        row = preset.budget(N)
        if method == "ssdd":
            A = get_augmentation(aug).A
            report = ssdd_budget(N, U or row.U, V or row.V, shape, scale=scale or preset.scale,
                                 feature_dim=feature_dim, hidden=hidden or preset.hidden, A=A)
        elif method in RAW_TARGETS:
            per = feature_dim if RAW_TARGETS[method] == "targets" else 1
            report = raw_budget(N, shape, count_targets=count_targets, target_floats=per)
        else:
            raise UsageError(f"unknown method {method!r}; use ssdd or one of {', '.join(RAW_TARGETS)}.")
        if as_json:
            doc = {"method": method, "source": source, "N": N, "m": report.m,
                   "convention": report.convention, "components": report.components,
                   "total": report.used, "allowed": report.allowed, "spare": report.spare}
            console.print_json(json.dumps(doc))
            return
        title = f"{method} budget · {source} {shape.channels}×{shape.height}×{shape.width}"
        console.print(budget_table(report.components, report.allowed, report.m, N,
                                   report.convention, title))
        console.print(f"largest m that fits: [bold]m = {report.m}[/]")
