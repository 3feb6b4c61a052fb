"""`ssdd import-teacher`: a teacher trained elsewhere (solo-learn, KRR-ST, torchvision) as a teacher file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ssdd_cli.cli._archs import ArchName
from ssdd_cli.cli._common import console
from ssdd_cli.cli._options import DataRoot, Download, Output, Preset, Source, choice
from ssdd_cli.data import load_source, normalize, source_preset
from ssdd_cli.kit.distributed import is_main
from ssdd_cli.models import save_backbone
from ssdd_cli.models.resnet import STEMS
from ssdd_cli.teacher.imports import import_teacher, imported_metadata, read_checkpoint
from ssdd_cli.teacher.trainer import PROBE_IMAGES

if TYPE_CHECKING:
    StemName = str
else:
    StemName = choice(STEMS)

Opt = typer.Option


def register(app: typer.Typer) -> None:
    @app.command("import-teacher")
    def command(
        checkpoint: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A solo-learn "
                                                   "checkpoint, a KRR-ST teacher checkpoint or a "
                                                   "torchvision-style state dict.")],
        source: Source,
        output: Output,
        arch: Annotated[ArchName, Opt(help="The backbone the checkpoint holds.")] = "resnet18",
        stem: Annotated[StemName | None, Opt(help="ResNet stem (default: imagenet for a 7x7 conv1, "
                                             "else cifar).")] = None,
        ssl: Annotated[str, Opt(help="Its self-supervised method, recorded.")] = "barlow_twins",
        preset: Preset = None,
        data_root: DataRoot = None,
        download: Download = False,
    ) -> None:
        """Import a teacher trained elsewhere; its weights are mapped and checked, never unpickled."""
        chosen = source_preset(source, preset)
        data = load_source(source, data_root=data_root, download=download, resolution=chosen.resolution)
        loaded = read_checkpoint(checkpoint)
        probe = normalize(data.source[:PROBE_IMAGES], data.mean, data.std)
        model = import_teacher(loaded, arch, data.channels, data.resolution, stem=stem, probe=probe)
        meta = imported_metadata(model, loaded, checkpoint, source=source, mean=data.mean, std=data.std,
                                 ssl=ssl)
        if not is_main():  # under torchrun rank 0 writes the file
            return
        save_backbone(output, model, meta)
        dropped = ", ".join(f"{k} ({n})" for k, n in loaded.dropped.items()) or "nothing"
        console.print(f"teacher {arch} ({model.feature_dim}-d features) imported from a {loaded.layout} "
                      f"checkpoint to {output}; dropped: {dropped}; sha256 {meta['ssdd.sha256'][:12]}",
                      highlight=False)
