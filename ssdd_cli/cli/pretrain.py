"""`ssdd pretrain`: Pretrain a fresh backbone on an artifact."""

from __future__ import annotations

import typer

from ssdd_cli.cli._common import STUB_SETTINGS, not_implemented


def register(app: typer.Typer) -> None:
    @app.command("pretrain", context_settings=STUB_SETTINGS)
    def command() -> None:
        """Pretrain a fresh backbone on an artifact."""
        not_implemented("pretrain", "issue 6")
