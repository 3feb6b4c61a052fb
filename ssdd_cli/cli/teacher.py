"""`ssdd teacher`: Train the self-supervised (Barlow Twins) teacher on a source."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ssdd_cli.cli._common import console
from ssdd_cli.cli._progress import progress_callback
from ssdd_cli.data import load_source, source_preset
from ssdd_cli.device import resolve_device
from ssdd_cli.io import check_writable
from ssdd_cli.kit.distributed import is_main
from ssdd_cli.kit.precision import resolve_precision
from ssdd_cli.models import backbone_options
from ssdd_cli.teacher import TeacherConfig, save_teacher, train_teacher


def register(app: typer.Typer) -> None:
    @app.command("teacher")
    def command(
        source: Annotated[str, typer.Option(help="Source to train on (see `ssdd datasets`).")],
        output: Annotated[Path, typer.Option("--output", "-o", help="Teacher file to write.")],
        arch: Annotated[str | None, typer.Option(help="Backbone (default: the preset's).")] = None,
        epochs: Annotated[int | None, typer.Option(help="Epochs (default: the preset's).")] = None,
        batch_size: Annotated[int | None, typer.Option(help="Batch size (default: preset).")] = None,
        lr: Annotated[float | None, typer.Option(help="Peak learning rate (default: the preset's; on "
                                                 "the paper presets, for a batch of 256, scaled "
                                                 "with the batch).")] = None,
        device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
        precision: Annotated[str, typer.Option(
            help="auto (bf16 where the device has bf16 units), fp32 or bf16.")] = "auto",
        seed: Annotated[int, typer.Option(help="Seed of initialisation, shuffling, augmentation.")] = 0,
        preset: Annotated[str | None, typer.Option(help="Preset (resolution and recipe; default: "
                                                   "the source's).")] = None,
        data_root: Annotated[Path | None, typer.Option(help="Folder of real sources.")] = None,
        download: Annotated[bool, typer.Option(help="Download CIFAR if missing.")] = False,
        resume: Annotated[bool, typer.Option(help="Continue from OUTPUT.ckpt.")] = False,
    ) -> None:
        """Train the self-supervised (Barlow Twins) teacher on a source."""
        ckpt = output.with_name(output.name + ".ckpt")
        check_writable(output)
        dev = resolve_device(device)
        chosen = source_preset(source, preset)
        config = TeacherConfig.from_preset(chosen.teacher, arch=arch, epochs=epochs,
                                           batch_size=batch_size, lr=lr, seed=seed)
        backbone_options(config.arch)  # an unknown arch fails here, before any training
        images = load_source(source, data_root=data_root, download=download, resolution=chosen.resolution)
        with progress_callback() as callback:
            result = train_teacher(images.source, images.mean, images.std, config, device=dev,
                                   callback=callback, checkpoint_path=ckpt, resume=resume,
                                   precision=resolve_precision(precision, dev))
        if not is_main():  # under torchrun rank 0 writes the file
            return
        meta = save_teacher(output, result, source=source, mean=images.mean, std=images.std)
        ckpt.unlink(missing_ok=True)
        console.print(
            f"teacher {config.arch} ({result.backbone.feature_dim}-d features) "
            f"saved to {output}: {len(result.losses)} epochs, final loss {result.final_loss:.4g}, "
            f"sha256 {meta['ssdd.sha256'][:12]}",
            highlight=False,
        )
