"""`ssdd models`: the backbone registry, with each architecture's options and feature width."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from ssdd_cli.cli._common import console
from ssdd_cli.models import backbone_options, create_backbone, list_backbones
from ssdd_cli.models.registry import BACKBONES

Opt = typer.Option


def register(app: typer.Typer) -> None:
    @app.command("models")
    def command(
        channels: Annotated[int, Opt(min=1, help="Image channels the feature widths are shown for.")] = 3,
        resolution: Annotated[int, Opt(min=8, help="Image side the feature widths are shown for.")] = 32,
        as_json: Annotated[bool, Opt("--json", help="Print JSON instead of a table.")] = False,
    ) -> None:
        """List the backbones (architectures) and their options."""
        rows: list[dict[str, Any]] = []
        for name in list_backbones():
            summary = (BACKBONES.get(name).__doc__ or "").strip().splitlines()
            dim = create_backbone(name, channels, resolution).feature_dim
            rows.append({"name": name, "options": backbone_options(name), "feature_dim": dim,
                         "summary": summary[0] if summary else ""})
        if as_json:
            console.print_json(json.dumps({"channels": channels, "resolution": resolution, "models": rows}))
            return
        table = Table(title=f"backbones (--arch); features at {channels}×{resolution}×{resolution}",
                      title_justify="left")
        for column in ("name", "options", "d_h", "description"):
            table.add_column(column, justify="right" if column == "d_h" else "left")
        for row in rows:
            table.add_row(row["name"], ", ".join(row["options"]) or "-", f"{row['feature_dim']:,}",
                          row["summary"])
        console.print(table)
