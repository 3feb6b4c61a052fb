"""Imports run one way: cli → library → bundle. The library never imports typer or rich."""

from __future__ import annotations

import subprocess
import sys

LIBRARY = ["ssdd_cli.budget", "ssdd_cli.bundle", "ssdd_cli.presets", "ssdd_cli.distill.augment"]


def test_library_does_not_import_typer_or_rich() -> None:
    code = (
        "import sys, importlib\n"
        f"for m in {LIBRARY!r}:\n"
        "    importlib.import_module(m)\n"
        "for pkg in ('ssdd_cli.data', 'ssdd_cli.models', 'ssdd_cli.teacher', 'ssdd_cli.train',\n"
        "            'ssdd_cli.distill.engine'):\n"
        "    try:\n"
        "        importlib.import_module(pkg)\n"
        "    except ModuleNotFoundError as e:\n"
        "        if e.name != pkg: raise\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('typer', 'rich')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
