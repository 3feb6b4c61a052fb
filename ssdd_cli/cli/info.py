"""`ssdd info FILE`: an artifact's manifest and budget table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ssdd_cli.bundle import read_manifest
from ssdd_cli.cli._common import console
from ssdd_cli.cli._tables import budget_table


def register(app: typer.Typer) -> None:
    @app.command("info")
    def command(
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .ssdd artifact.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    ) -> None:
        """Show an artifact's manifest and budget (reads the header only)."""
        manifest = read_manifest(file)
        if as_json:
            console.print_json(manifest.model_dump_json())
            return
        table = Table(title=str(file), show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value")
        for key, value in manifest.model_dump(mode="json", exclude={"budget"}).items():
            if value is not None:
                table.add_row(key, _flat(value))
        console.print(table)
        b = manifest.budget
        console.print(budget_table(b.components, b.floats_allowed, manifest.m, b.images,
                                   b.convention, title="budget"))


# A list of more numbers than this is shown as its length and range (a teacher's target means
# and stds are one a feature dimension, 128 to 2,048); `--json` prints every value.
SHOWN = 8


def _flat(value: object) -> str:
    if isinstance(value, dict):
        return "  ".join(f"{k}={_flat(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        if len(value) > SHOWN and all(isinstance(v, int | float) for v in value):
            return f"{len(value)} values in [{min(value):.4g}, {max(value):.4g}] (--json: all)"
        return ", ".join(_flat(v) if not isinstance(v, float) else f"{v:.4g}" for v in value)
    return str(value)
