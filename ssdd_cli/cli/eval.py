"""`ssdd eval`: Evaluate a backbone on a target dataset."""

from __future__ import annotations

import typer

from ssdd_cli.cli._common import STUB_SETTINGS, not_implemented


def register(app: typer.Typer) -> None:
    @app.command("eval", context_settings=STUB_SETTINGS)
    def command() -> None:
        """Evaluate a backbone on a target dataset."""
        not_implemented("eval", "issue 6")
