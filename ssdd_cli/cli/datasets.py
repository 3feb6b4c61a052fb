"""`ssdd datasets`: List the known data sources and whether each is available here."""

from __future__ import annotations

import typer

from ssdd_cli.cli._common import STUB_SETTINGS, not_implemented


def register(app: typer.Typer) -> None:
    @app.command("datasets", context_settings=STUB_SETTINGS)
    def command() -> None:
        """List the known data sources and whether each is available here."""
        not_implemented("datasets", "issue 3")
