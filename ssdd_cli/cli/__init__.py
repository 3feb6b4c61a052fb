"""The command line: the only package that imports typer or rich.

`main()` is the `ssdd` console script. It imports the app itself, so that an interrupt while
Python is still importing (typer, rich, then a command's library) ends like any other: one
line and exit code 130, never a traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the `ssdd` command line (exit 130 on an interrupt, even during start-up)."""
    try:
        from ssdd_cli.cli.main import app
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted.\n")
        sys.exit(130)
    app(prog_name="ssdd")
