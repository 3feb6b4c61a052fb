"""`ssdd reconstruct FILE --out DIR`: the distilled images as PNGs and paged grids, and the
targets (Algorithm 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ssdd_cli.artifact import write_reconstruction
from ssdd_cli.bundle import load_bundle
from ssdd_cli.cli._common import console, notice

Opt = typer.Option


def register(app: typer.Typer) -> None:
    @app.command("reconstruct")
    def command(
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .ssdd artifact.")],
        out: Annotated[Path, Opt("--out", "-o", file_okay=False, help="Folder for the PNGs and targets; "
                                 "its earlier reconstruction is replaced, any other file left alone.")],
        views: Annotated[bool, Opt(help="Also write each augmented view as PNGs.")] = True,
        per_page: Annotated[int, Opt(min=1, help="Images per grid page (a column each).")] = 16,
        initial: Annotated[Path | None, Opt(exists=True, dir_okay=False, help="The same run distilled with "
                                            "--steps 0 (its initialisation), shown beside the distilled "
                                            "images.")] = None,
    ) -> None:
        """Write an artifact's distilled images as paged PNG grids, and its targets.

        Every image as `image_0000.png`… (and `views/VIEW/`), every image again in grid pages
        `grid_001.png`… with a titled row per view, and `targets.safetensors`.
        """
        result = write_reconstruction(load_bundle(file), out, views=views, per_page=per_page,
                                      initial=load_bundle(initial) if initial is not None else None)
        if result.removed:
            notice(f"removed the {result.removed} files of the folder's earlier reconstruction")
        if result.clamped > 0:
            lo, hi = result.value_range
            notice(f"note: {100 * result.clamped:.2g}% of the pixel values lie outside [0, 1] (from "
                   f"{lo:.3g} to {hi:.3g}) and are clamped in the PNGs; the artifact and targets keep them "
                   "as they are")
        pages = result.pages
        grids = str(pages[0]) if len(pages) == 1 else f"{pages[0]} … {pages[-1].name}"
        console.print(f"wrote {result.images} images and {result.views} augmented views to {out}/, "
                      f"{len(pages)} grid page(s) {grids}, targets {result.targets}", highlight=False)
