"""`ssdd datasets`: List the known data sources and whether each is available here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ssdd_cli.cli._common import console
from ssdd_cli.data import default_data_root, list_sources, source_status


def register(app: typer.Typer) -> None:
    @app.command("datasets")
    def command(
        data_root: Annotated[
            Path | None,
            typer.Option(
                "--data-root",
                file_okay=False,
                help="Where real sources live (default: $SSDD_DATA, else ~/.cache/ssdd/data).",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        """List the known data sources and whether each is available here."""
        root = data_root if data_root is not None else default_data_root()
        table = Table(title=f"data sources (data root: {root})", title_justify="left")
        table.add_column("name", no_wrap=True)
        table.add_column("shape", no_wrap=True)
        table.add_column("train / val / test")
        table.add_column("available here?", overflow="fold")
        table.add_column("description")
        for name in list_sources():
            s = source_status(name, root)
            c, h, w = s.shape
            if s.available:
                here = f"[green]yes[/]: {escape(s.where)}"
            elif s.name.endswith(":PATH"):  # imagefolder/npz: nothing to find until given a path
                here = f"[yellow]give a path[/]: {escape(s.where)}"
            else:
                here = f"[red]no[/]: looked for {escape(s.where)}"
            table.add_row(s.name, f"{c}×{h}×{w}", s.sizes.replace("/", " / "), here, s.description)
        console.print(table)
