"""`ssdd teacher`: Train the self-supervised (Barlow Twins) teacher on a source."""

from __future__ import annotations

import typer

from ssdd_cli.cli._common import STUB_SETTINGS, not_implemented


def register(app: typer.Typer) -> None:
    @app.command("teacher", context_settings=STUB_SETTINGS)
    def command() -> None:
        """Train the self-supervised (Barlow Twins) teacher on a source."""
        not_implemented("teacher", "issue 4")
