"""Shared CLI pieces: consoles and the user-error boundary."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup, TyperOption

from ssdd_cli.errors import SSDDError

console = Console()
err_console = Console(stderr=True)


class UserErrorGroup(TyperGroup):
    """Turns every `SSDDError` into one line on stderr and its exit code, with no traceback.

    A library error names the setting it concerns by its Python keyword (`error.option`); the
    line starts with the command's flag for it (`--pool-size: ...`) when the command has one.
    """

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except SSDDError as e:
            flag = _flag(self, ctx, e.option)
            prefix = f"{flag}: " if flag else ""
            line = escape(prefix + str(e))
            err_console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; rerun the same command with --resume to continue.")
            raise typer.Exit(130) from None


def _flag(group: TyperGroup, ctx: typer.Context, option: str | None) -> str | None:
    """The invoked command's flag for the parameter named `option` (e.g. "--pool-size")."""
    if option is None or ctx.invoked_subcommand is None:
        return None
    command = group.get_command(ctx, ctx.invoked_subcommand)
    for param in command.params if command is not None else []:
        if param.name == option and isinstance(param, TyperOption):
            return max(param.opts, key=len)
    return None
