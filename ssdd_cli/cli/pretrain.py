"""`ssdd pretrain`: Pretrain a fresh backbone on an artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ssdd_cli.artifact import materialize
from ssdd_cli.bundle import load_bundle
from ssdd_cli.cli._common import console
from ssdd_cli.cli._progress import progress_callback
from ssdd_cli.data import source_preset
from ssdd_cli.device import resolve_device
from ssdd_cli.errors import UsageError
from ssdd_cli.io import check_writable, sha256_file
from ssdd_cli.kit.distributed import is_main
from ssdd_cli.kit.precision import resolve_precision
from ssdd_cli.models import backbone_options, save_backbone
from ssdd_cli.train.pretrain import PretrainConfig, pretrain, pretrain_metadata


def register(app: typer.Typer) -> None:
    @app.command("pretrain")
    def command(
        artifact: Annotated[Path, typer.Argument(help="The .ssdd artifact to pretrain on.")],
        output: Annotated[Path, typer.Option("--output", "-o", help="Backbone file to write.")],
        arch: Annotated[str, typer.Option(help="Backbone to train (see the models list).")] = "convnet",
        epochs: Annotated[int | None, typer.Option(help="Epochs (default: the source preset's).")] = None,
        batch_size: Annotated[int | None, typer.Option(help="Minibatch size (default 256).")] = None,
        lr: Annotated[float | None, typer.Option(
            help="SGD learning rate (default: 0.1 for targets; 0.01, ×0.1 at half, for labels).")] = None,
        weight_decay: Annotated[float | None, typer.Option(
            "--wd", help="Weight decay (default: the budget's; 5e-4 for labels).")] = None,
        preset: Annotated[str | None, typer.Option(help="Preset (default: the artifact's).")] = None,
        seed: Annotated[int, typer.Option(help="Seed of initialisation and shuffling.")] = 0,
        device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
        precision: Annotated[str, typer.Option(
            help="auto (bf16 where the device has bf16 units), fp32 or bf16.")] = "auto",
        resume: Annotated[bool, typer.Option(help="Continue from OUTPUT.ckpt.")] = False,
    ) -> None:
        """Pretrain a fresh backbone on an artifact (MSE to its targets, or CE to its labels under
        the DM family's protocol: SGD lr 0.01, weight decay 5e-4, ×0.1 at half, DSA)."""
        check_writable(output)
        backbone_options(arch)  # an unknown --arch fails here, before any work
        dev = resolve_device(device)
        bundle = load_bundle(artifact)
        src, budget = bundle.manifest.source, bundle.manifest.budget.images
        if src.height != src.width:
            raise UsageError(f"{artifact} holds {src.height}×{src.width} images but backbones "
                             "take square images; distill a square source.", option="artifact")
        raw = bundle.manifest.raw
        labelled = raw is not None and raw.labels and raw.target_dim is None
        chosen = source_preset(src.name, preset if preset is not None else src.preset)
        config = PretrainConfig.from_preset(chosen, budget=budget, arch=arch, epochs=epochs,
                                            batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                                            seed=seed, labelled=labelled)
        data = materialize(bundle, dev)
        ckpt = output.with_name(output.name + ".ckpt")
        with progress_callback() as callback:
            backbone, loss = pretrain(data.images, data.targets, data.labels, config,
                                      in_channels=src.channels, image_size=src.height, device=dev,
                                      callback=callback, checkpoint_path=ckpt, resume=resume,
                                      num_classes=src.classes, precision=resolve_precision(precision, dev))
        if not is_main():  # under torchrun rank 0 writes the file
            return
        meta = pretrain_metadata(config, final_loss=loss, source=src.name, mean=src.mean,
                                 std=src.std, artifact_sha256=sha256_file(artifact),
                                 method=bundle.manifest.method, images=len(data.images))
        save_backbone(output, backbone, meta)
        ckpt.unlink(missing_ok=True)
        console.print(f"backbone {arch} ({backbone.feature_dim}-d features) saved to {output}: "
                      f"{config.epochs} epochs on {len(data.images)} images, final loss {loss:.4g}",
                      highlight=False)
