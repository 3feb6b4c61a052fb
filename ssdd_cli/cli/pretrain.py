"""`ssdd pretrain`: Pretrain a fresh backbone on an artifact."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from ssdd_cli.artifact import materialize
from ssdd_cli.bundle import load_bundle
from ssdd_cli.cli._archs import ArchName
from ssdd_cli.cli._common import console, set_output
from ssdd_cli.cli._options import Device, LogFormat, Output, Preset, Quiet, Resume, Seed, positive
from ssdd_cli.cli._progress import progress_callback
from ssdd_cli.cli._record import record_path, run_record
from ssdd_cli.data import source_preset
from ssdd_cli.device import resolve_device
from ssdd_cli.errors import UsageError
from ssdd_cli.io import sha256_file
from ssdd_cli.models import save_backbone
from ssdd_cli.train.pretrain import PretrainConfig, pretrain, pretrain_metadata

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
        preset: Preset = None,
        seed: Seed = 0,
        device: Device = "auto",
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
        bundle = load_bundle(artifact)
        man = bundle.manifest
        src, budget = man.source, man.budget.images
        if src.height != src.width:
            raise UsageError(f"{artifact} holds {src.height}×{src.width} images but backbones "
                             "take square images; distill a square source.", option="artifact")
        raw = man.raw
        labelled = raw is not None and raw.labels and raw.target_dim is None
        chosen = source_preset(src.name, preset if preset is not None else src.preset)
        config = PretrainConfig.from_preset(chosen, budget=budget, arch=arch, epochs=epochs,
                                            batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                                            seed=seed, labelled=labelled)
        data = materialize(bundle, dev)
        ckpt = output.with_name(output.name + ".ckpt")
        given = {"artifact": artifact, "arch": arch, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                 "weight_decay": weight_decay, "preset": preset, "resume": resume}
        with run_record(output, "pretrain", given, device=str(dev), seed=seed, append=resume) as record, \
                progress_callback(record) as callback:
            backbone, loss = pretrain(data.images, data.targets, data.labels, config,
                                      in_channels=src.channels, image_size=src.height, device=dev,
                                      callback=callback, checkpoint_path=ckpt, resume=resume,
                                      num_classes=src.classes)
            meta = pretrain_metadata(config, final_loss=loss, source=src.name, mean=src.mean,
                                     std=src.std, artifact_sha256=sha256_file(artifact),
                                     method=man.method, images=len(data.images),
                                     teacher_sha256=man.teacher.sha256 if man.teacher else None)
            save_backbone(output, backbone, meta)
            record.finish(config=asdict(config), preset=chosen.name, output=str(output), final_loss=loss)
        ckpt.unlink(missing_ok=True)
        console.print(f"backbone {config.arch} ({backbone.feature_dim}-d features) saved to {output}: "
                      f"{config.epochs} epochs on {len(data.images)} images, final loss {loss:.4g}; "
                      f"run record {record_path(output)}", highlight=False)
