"""`ssdd teacher`: Train the self-supervised (Barlow Twins) teacher on a source."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ssdd_cli.cli._archs import ArchName
from ssdd_cli.cli._common import console, notice, set_output
from ssdd_cli.cli._options import (
    DataRoot,
    Device,
    Download,
    LogFormat,
    MemoryFormat,
    Output,
    Precision,
    Preset,
    Quiet,
    Resume,
    Seed,
    Source,
    positive,
)
from ssdd_cli.cli._progress import progress_callback
from ssdd_cli.cli._record import run_record
from ssdd_cli.data import load_source, source_preset
from ssdd_cli.device import resolve_device
from ssdd_cli.kit.distributed import is_main
from ssdd_cli.kit.precision import resolve_precision
from ssdd_cli.teacher import TeacherConfig, save_teacher, train_teacher

Opt = typer.Option


def register(app: typer.Typer) -> None:
    @app.command("teacher")
    def command(
        source: Source,
        output: Output,
        arch: Annotated[ArchName | None, Opt(help="Backbone (default: the preset's).")] = None,
        epochs: Annotated[int | None, Opt(min=1, help="Epochs (default: the preset's).")] = None,
        batch_size: Annotated[int | None, Opt(min=2, help="Batch size (default: the preset's).")] = None,
        lr: Annotated[float | None, Opt(callback=positive, help="Peak learning rate (default: the preset's; "
                                        "on the paper presets, for a batch of 256, scaled with the "
                                        "batch).")] = None,
        device: Device = "auto",
        precision: Precision = "auto",
        memory_format: MemoryFormat = "auto",
        seed: Seed = 0,
        preset: Preset = None,
        data_root: DataRoot = None,
        download: Download = False,
        resume: Resume = False,
        quiet: Quiet = False,
        log_format: LogFormat = "text",
    ) -> None:
        """Train the self-supervised (Barlow Twins) teacher on a source."""
        set_output(quiet, log_format)
        ckpt = output.with_name(output.name + ".ckpt")
        dev = resolve_device(device)
        chosen = source_preset(source, preset)
        config = TeacherConfig.from_preset(chosen.teacher, arch=arch, epochs=epochs,
                                           batch_size=batch_size, lr=lr, seed=seed)
        images = load_source(source, data_root=data_root, download=download, resolution=chosen.resolution)
        passes = resolve_precision(precision, dev, memory_format, say=notice)
        options = {"source": source, "arch": arch, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                   "preset": preset, "data_root": data_root, "resume": resume}
        with run_record(output, "teacher", options, device=str(dev), seed=seed, append=resume) as record, \
                progress_callback(record) as callback:
            result = train_teacher(images.source, images.mean, images.std, config, device=dev,
                                   callback=callback, checkpoint_path=ckpt, resume=resume,
                                   precision=passes)
            if not is_main():  # under torchrun rank 0 writes the file
                return
            meta = save_teacher(output, result, source=source, mean=images.mean, std=images.std)
            record.finish(config=json.loads(config.to_json()), preset=chosen.name, output=str(output),
                          sha256=meta["ssdd.sha256"], final_loss=result.final_loss)
        ckpt.unlink(missing_ok=True)
        console.print(
            f"teacher {config.arch} ({result.backbone.feature_dim}-d features) "
            f"saved to {output}: {len(result.losses)} epochs, final loss {result.final_loss:.4g}, "
            f"sha256 {meta['ssdd.sha256'][:12]}",
            highlight=False,
        )
