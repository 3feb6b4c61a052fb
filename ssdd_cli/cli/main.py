"""The `ssdd` Typer app: one module per command, registered here."""

from __future__ import annotations

from typing import Annotated

import typer

from ssdd_cli import __version__
from ssdd_cli.cli import (
    budget,
    compare,
    datasets,
    distill,
    eval,
    import_teacher,
    info,
    pretrain,
    reconstruct,
    teacher,
)
from ssdd_cli.cli._common import UserErrorGroup, console

app = typer.Typer(
    name="ssdd",
    cls=UserErrorGroup,
    help="Self-supervised dataset distillation: compress an unlabeled image set into a .ssdd artifact.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"ssdd {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Self-supervised dataset distillation."""


for module in (teacher, import_teacher, distill, reconstruct, pretrain, eval, compare, budget, info,
               datasets):
    module.register(app)

if __name__ == "__main__":
    app()
