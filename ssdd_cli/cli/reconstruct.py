"""`ssdd reconstruct FILE --out DIR`: the distilled images as PNGs and the targets (Algorithm 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ssdd_cli.artifact import write_reconstruction
from ssdd_cli.bundle import load_bundle
from ssdd_cli.cli._common import console


def register(app: typer.Typer) -> None:
    @app.command("reconstruct")
    def command(
        file: Annotated[Path, typer.Argument(help="A .ssdd artifact.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the PNGs and targets.")],
        views: Annotated[bool, typer.Option(help="Also write each augmented view.")] = True,
    ) -> None:
        """Rebuild the distilled images and targets of an artifact as PNGs and safetensors."""
        result = write_reconstruction(load_bundle(file), out, views=views)
        console.print(f"wrote {result.images} images and {result.views} augmented views to {out}/, "
                      f"contact sheet {result.grid}, targets {result.targets}")
