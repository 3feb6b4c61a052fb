"""`ssdd --help`, `--version`, `budget`, `info` and `datasets` start without torch or torchvision
(importing torch takes seconds, more on a busy machine); the lazy command list stays true to the
commands it stands for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command

from ssdd_cli.cli.main import COMMANDS, app

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "formats" / "golden" / "v1-ssdd.ssdd"
HEAVY = ("torch", "torchvision")

RUN_AND_LIST = """
import json, sys
from ssdd_cli.cli import main
sys.argv = ["ssdd", *{args!r}]
try:
    main()
except SystemExit as e:
    code = e.code
sys.stderr.write("\\nMODULES " + json.dumps([code, sorted({{m.split(".")[0] for m in sys.modules}})]) + "\\n")
"""


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["budget", "--source", "digits", "--budget", "20"],
                                  ["budget", "--method", "dm", "--json"], ["info", str(GOLDEN)],
                                  ["info", str(GOLDEN), "--json"], ["datasets"], ["budget", "--help"]],
                         ids=" ".join)
def test_light_commands_import_neither_torch_nor_torchvision(args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", RUN_AND_LIST.format(args=args)], capture_output=True,
                          text=True, env=env, timeout=120)
    code, modules = json.loads(done.stderr.rsplit("MODULES ", 1)[1])
    assert code in (0, None), done.stderr
    assert not set(HEAVY) & set(modules), f"ssdd {' '.join(args)} imported {set(HEAVY) & set(modules)}"


def test_the_command_list_matches_the_commands() -> None:
    group = get_command(app)
    for name, (_, help_line) in COMMANDS.items():
        command = group.load(name)  # type: ignore[attr-defined]
        assert command.name == name
        first = " ".join((command.help or "").split("\n\n")[0].split())  # the docstring's first paragraph
        assert first.startswith(help_line.rstrip(".")), name
