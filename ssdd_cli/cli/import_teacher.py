"""`ssdd import-teacher`: a teacher trained elsewhere (solo-learn, KRR-ST, torchvision) as a teacher file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ssdd_cli.cli._common import console
from ssdd_cli.data import load_source, normalize, source_preset
from ssdd_cli.io import check_writable
from ssdd_cli.kit.distributed import is_main
from ssdd_cli.models import backbone_options, save_backbone
from ssdd_cli.teacher.imports import import_teacher, imported_metadata, read_checkpoint
from ssdd_cli.teacher.trainer import PROBE_IMAGES

Opt = typer.Option


def register(app: typer.Typer) -> None:
    @app.command("import-teacher")
    def command(
        checkpoint: Annotated[Path, typer.Argument(help="A solo-learn checkpoint, a KRR-ST teacher "
                                                   "checkpoint or a torchvision-style state dict.")],
        source: Annotated[str, Opt(help="Source it was trained on (see `ssdd datasets`).")],
        output: Annotated[Path, Opt("--output", "-o", help="Teacher file to write.")],
        arch: Annotated[str, Opt(help="The backbone the checkpoint holds.")] = "resnet18",
        stem: Annotated[str | None, Opt(help="ResNet stem: cifar, cifar-same or imagenet "
                                        "(default: imagenet for a 7x7 conv1, else cifar).")] = None,
        ssl: Annotated[str, Opt(help="Its self-supervised method, recorded.")] = "barlow_twins",
        preset: Annotated[str | None, Opt(help="Preset of the source (default: the source's).")] = None,
        data_root: Annotated[Path | None, Opt(help="Folder of real sources.")] = None,
        download: Annotated[bool, Opt(help="Download CIFAR if missing.")] = False,
    ) -> None:
        """Import a teacher trained elsewhere; its weights are mapped and checked, never unpickled."""
        check_writable(output)
        backbone_options(arch)  # an unknown arch fails here
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
