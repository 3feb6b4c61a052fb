"""Rich tables shared by several commands."""

from __future__ import annotations

from rich.table import Table

_DESCRIPTIONS = {
    "B^x": "image bases",
    "C^x": "image coefficients",
    "B^y": "representation bases",
    "C^y": "representation coefficients",
    "Q_a": "approximation networks",
    "b_a": "shift of each augmented view",
    "C^y_a": "coefficients of the augmented views",
    "images": "raw images",
    "targets": "target representations",
    "labels": "labels",
}


def budget_table(
    components: dict[str, int], allowed: int, m: int, N: int, convention: str, title: str = "budget"
) -> Table:
    """Floats per component, then total, allowed and spare, with m and the convention below."""
    table = Table(title=title, caption=f"m = {m} images, N = {N}, {convention}", caption_justify="left")
    table.add_column("component")
    table.add_column("what")
    table.add_column("floats", justify="right")
    for name, floats in components.items():
        table.add_row(name, _DESCRIPTIONS.get(name, ""), f"{floats:,}")
    used = sum(components.values())
    table.add_section()
    table.add_row("total", "stored", f"{used:,}", style="bold")
    table.add_row("allowed", "N·c·h·w", f"{allowed:,}")
    table.add_row("spare", "", f"{allowed - used:,}")
    return table
