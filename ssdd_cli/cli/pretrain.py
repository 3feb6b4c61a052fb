"""`ssdd pretrain`: Pretrain a fresh backbone on an artifact."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from ssdd_cli.api import load_artifact, pretrain_artifact
from ssdd_cli.cli._archs import ArchName
from ssdd_cli.cli._common import console, notice, set_output
from ssdd_cli.cli._options import (
    Device,
    LogFormat,
    MemoryFormat,
    Output,
    Precision,
    Preset,
    Quiet,
    Resume,
    Seed,
    positive,
)
from ssdd_cli.cli._progress import progress_callback
from ssdd_cli.cli._record import record_path, run_record
from ssdd_cli.device import resolve_device
from ssdd_cli.kit.distributed import is_main
from ssdd_cli.kit.precision import resolve_precision

Opt = typer.Option


def register(app: typer.Typer) -> None:
    @app.command("pretrain")
    def command(
        artifact: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                                 help="The .ssdd artifact to pretrain on.")],
        output: Output,
        arch: Annotated[ArchName, Opt(help="Backbone to train (see `ssdd models`).")] = "convnet",
        epochs: Annotated[int | None, Opt(min=1, help="Epochs (default: the source preset's).")] = None,
        batch_size: Annotated[int | None, Opt(min=1, help="Minibatch size (default 256).")] = None,
        lr: Annotated[float | None, Opt(callback=positive, help="SGD learning rate (default: 0.1 for "
                                        "targets; 0.01, ×0.1 at half, for labels).")] = None,
        weight_decay: Annotated[float | None, Opt("--wd", min=0.0, help="Weight decay (default: the "
                                                  "budget's; 5e-4 for labels).")] = None,
        decay_norm_bias: Annotated[bool | None, Opt("--decay-norm-bias/--no-decay-norm-bias",
                                                    help="Weight decay on BatchNorm weights and biases "
                                                    "too (default: yes, as the papers' code).")] = None,
        preset: Preset = None,
        seed: Seed = 0,
        device: Device = "auto",
        precision: Precision = "auto",
        memory_format: MemoryFormat = "auto",
        resume: Resume = False,
        quiet: Quiet = False,
        log_format: LogFormat = "text",
    ) -> None:
        """Pretrain a fresh backbone on an artifact.

        MSE to its targets, or cross-entropy to its labels under the DM family's protocol (SGD lr
        0.01, weight decay 5e-4, ×0.1 at half, DSA).
        """
        set_output(quiet, log_format)
        dev = resolve_device(device)
        art = load_artifact(artifact)
        passes = resolve_precision(precision, dev, memory_format, say=notice)
        ckpt = output.with_name(output.name + ".ckpt")
        given = {"artifact": artifact, "arch": arch, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                 "weight_decay": weight_decay, "decay_norm_bias": decay_norm_bias, "preset": preset,
                 "resume": resume, "precision": precision}
        with run_record(output, "pretrain", given, device=str(dev), seed=seed, append=resume) as record, \
                progress_callback(record) as callback:
            result = pretrain_artifact(art, arch=arch, epochs=epochs, batch_size=batch_size, lr=lr,
                                       weight_decay=weight_decay, decay_norm_bias=decay_norm_bias,
                                       preset=preset, seed=seed, device=dev,
                                       callback=callback, checkpoint_path=ckpt, resume=resume,
                                       precision=passes, output=output)
            if not is_main():  # under torchrun rank 0 wrote the file and reports
                return
            record.finish(config=asdict(result.config), preset=result.preset, output=str(output),
                          final_loss=result.final_loss, drift=result.drift.to_dict())
        ckpt.unlink(missing_ok=True)
        config, images = result.config, result.metadata["ssdd.pretrain_images"]
        console.print(f"backbone {config.arch} ({result.backbone.feature_dim}-d features) saved to {output}: "
                      f"{config.epochs} epochs on {images} images, final loss {result.final_loss:.4g}; "
                      f"run record {record_path(output)}", highlight=False)
        console.print(f"drift of {result.drift.summary()}", highlight=False)
        warning = result.drift.warning()
        if warning:
            notice(warning)
