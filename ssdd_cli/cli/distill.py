"""`ssdd distill`: Distill a source into a .ssdd artifact within a budget of N images."""

from __future__ import annotations

import typer

from ssdd_cli.cli._common import STUB_SETTINGS, not_implemented


def register(app: typer.Typer) -> None:
    @app.command("distill", context_settings=STUB_SETTINGS)
    def command() -> None:
        """Distill a source into a .ssdd artifact within a budget of N images."""
        not_implemented("distill", "issue 5")
