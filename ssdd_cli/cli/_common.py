"""Shared CLI pieces: consoles, the user-error boundary, and stub commands."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from ssdd_cli.errors import NotImplementedYet, SSDDError

console = Console()
err_console = Console(stderr=True)


class UserErrorGroup(TyperGroup):
    """Turns every `SSDDError` into one line on stderr and its exit code, with no traceback."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except SSDDError as e:
            err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; rerun the same command with --resume to continue.")
            raise typer.Exit(130) from None


STUB_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def not_implemented(command: str, issue: str) -> None:
    raise NotImplementedYet(f"`ssdd {command}` is not implemented yet ({issue}); see docs/.")
