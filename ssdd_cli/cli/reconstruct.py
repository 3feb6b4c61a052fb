"""`ssdd reconstruct`: Rebuild the distilled images and targets of an artifact as PNGs and safetensors."""

from __future__ import annotations

import typer

from ssdd_cli.cli._common import STUB_SETTINGS, not_implemented


def register(app: typer.Typer) -> None:
    @app.command("reconstruct", context_settings=STUB_SETTINGS)
    def command() -> None:
        """Rebuild the distilled images and targets of an artifact as PNGs and safetensors."""
        not_implemented("reconstruct", "issue 5")
