"""The `--arch` choice: the backbone registry's names (imports torch, as the commands that train
or load networks do anyway; `budget`, `info` and `datasets` never import this)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ssdd_cli.cli._options import choice
from ssdd_cli.models import list_backbones

if TYPE_CHECKING:
    ArchName = str
else:
    ArchName = choice(list_backbones())
