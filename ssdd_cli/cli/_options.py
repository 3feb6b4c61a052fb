"""Option types the commands share, each declaring its domain (torch-free: `budget` imports it).

Domains are declared where Typer can check them while parsing, before anything runs: finite sets
as choices (shown in --help, completed by the shell, anything else refused), counts with `min=`,
learning rates as positive numbers, input files that must exist, outputs that must be writable
(the folder is probed). A refused value exits 2 with Typer's message; nothing is written.
`None` means the preset's value; 0 is 0, refused by the range where it means nothing.

Free-form values stay strings, checked by the library with a sentence naming the valid ones:
`--source` (a name or `imagefolder:PATH` / `npz:PATH`) and `--device` (`cuda:1` is valid);
both complete from their known names.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from ssdd_cli.cli._common import LOG_FORMATS
from ssdd_cli.data import list_sources
from ssdd_cli.device import DEVICE_CHOICES
from ssdd_cli.errors import OutputError
from ssdd_cli.io import check_writable
from ssdd_cli.presets import PRESETS


def choice(names: list[str] | tuple[str, ...]) -> Any:
    """A `Literal` of `names`: Typer lists them in --help, completes them, refuses the rest."""
    return Literal[tuple(names)]


PRECISION_NAMES = ("auto", "fp32", "bf16")  # kit.precision.PRECISIONS, restated torch-free
MEMORY_FORMAT_NAMES = ("auto", "nchw", "channels_last")  # kit.fastpath.MEMORY_FORMATS, restated

if TYPE_CHECKING:
    PresetName = str
    LogFormatName = str
    PrecisionName = str
    MemoryFormatName = str
else:
    PresetName = choice(PRESETS.names())
    LogFormatName = choice(LOG_FORMATS)
    PrecisionName = choice(PRECISION_NAMES)
    MemoryFormatName = choice(MEMORY_FORMAT_NAMES)


def positive(value: float | None) -> float | None:
    """Option callback: a number that must be greater than 0 (a learning rate)."""
    if value is not None and not value > 0:
        raise typer.BadParameter(f"{value} is not greater than 0.")
    return value


def writable(value: Path | None) -> Path | None:
    """Option callback: an output file whose folder exists and accepts files (probed now)."""
    if value is not None:
        try:
            check_writable(value)
        except OutputError as e:
            raise typer.BadParameter(str(e)) from None
    return value


def complete_sources(incomplete: str) -> list[str]:
    """Source names (and `imagefolder:` / `npz:` prefixes) that start with `incomplete`."""
    from ssdd_cli.data import SOURCES

    names = [f"{n}:" if SOURCES.get(n).takes_path else n for n in list_sources()]
    return [n for n in names if n.startswith(incomplete)]


def complete_devices(incomplete: str) -> list[str]:
    return [d for d in DEVICE_CHOICES if d.startswith(incomplete)]


Source = Annotated[str, typer.Option(help="Source (see `ssdd datasets`): a name, imagefolder:PATH or "
                                     "npz:PATH.", autocompletion=complete_sources)]
Preset = Annotated[PresetName | None, typer.Option(help="Preset: resolution and defaults (default: the "
                                                   "source's).")]
Device = Annotated[str, typer.Option(help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:I or mps.",
                                     autocompletion=complete_devices)]
Seed = Annotated[int, typer.Option(min=0, help="Random seed (initialisation, sampling, shuffling).")]
DataRoot = Annotated[Path | None, typer.Option(file_okay=False, help="Folder of real sources (default: "
                                               "$SSDD_DATA, else ~/.cache/ssdd/data).")]
Download = Annotated[bool, typer.Option(help="Download a missing source that can be fetched (CIFAR, "
                                        "Fashion-MNIST, MNIST) with torchvision's downloader; needs a "
                                        "network.")]
Resume = Annotated[bool, typer.Option(help="Continue from OUTPUT.ckpt; refused, naming the first "
                                      "difference, if an option or the data changed.")]
Precision = Annotated[PrecisionName, typer.Option(help="auto (bf16 where the device has bf16 units), "
                                                 "fp32 or bf16.")]
MemoryFormat = Annotated[MemoryFormatName, typer.Option(
    envvar="SSDD_MEMORY_FORMAT", help="Layout of network passes: auto (measured once on this machine "
    "and cached; `ssdd bench --probe` shows it), nchw or channels_last.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notices on stderr; errors and "
                                     "the result still print.")]
LogFormat = Annotated[LogFormatName, typer.Option(help="stderr's format: text (bars on a terminal, plain "
                                                  "lines off one) or json (one object per line).")]
Output = Annotated[Path, typer.Option("--output", "-o", callback=writable, dir_okay=False,
                                      help="File to write (its folder must exist).")]
