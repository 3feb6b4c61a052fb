"""The `ssdd` Typer app: one module per command, registered here."""

from __future__ import annotations

from typing import Annotated

import typer

from ssdd_cli import __version__
from ssdd_cli.cli import (
    bench,
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
from ssdd_cli.kit import distributed

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
    # Under torchrun (`torchrun --nproc_per_node K -m ssdd_cli ...`) join the group; rank 0 alone
    # prints results (errors print on every rank, so a failure on any rank is seen).
    if distributed.init_from_environment() and not distributed.is_main():
        console.quiet = True


for module in (teacher, import_teacher, distill, reconstruct, pretrain, eval, compare, budget, info,
               datasets, bench):
    module.register(app)

if __name__ == "__main__":
    app()
