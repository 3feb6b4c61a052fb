"""`ssdd distill`: distill a source into a .ssdd artifact within a budget of N images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ssdd_cli.cli._common import console
from ssdd_cli.cli._progress import progress_callback
from ssdd_cli.device import resolve_device
from ssdd_cli.distill.methods import list_methods
from ssdd_cli.distill.run import DistillRequest, run_distill
from ssdd_cli.kit.precision import resolve_precision

Opt = typer.Option


def register(app: typer.Typer) -> None:
    @app.command("distill")
    def command(
        source: Annotated[str, Opt(help="Source to distill (see `ssdd datasets`).")],
        output: Annotated[Path, Opt("--output", "-o", help="The .ssdd artifact to write.")],
        budget: Annotated[int | None, Opt(help="N: the budget in images (default: the preset's).")] = None,
        method: Annotated[str, Opt(help=", ".join(list_methods()))] = "ssdd",
        teacher: Annotated[Path | None, Opt(help="Teacher file (default: the cached one).")] = None,
        U: Annotated[int | None, Opt("--U", help="ssdd: image bases (default: Table 5).")] = None,
        V: Annotated[int | None, Opt("--V", help="ssdd: representation bases.")] = None,
        scale: Annotated[int | None, Opt(help="ssdd: image bases at 1/scale resolution.")] = None,
        aug: Annotated[str | None, Opt(help="ssdd: rotate (default), jigsaw, crop or none.")] = None,
        hidden: Annotated[int | None, Opt(help="ssdd: approximation network hidden width.")] = None,
        init: Annotated[str | None, Opt(help="ssdd: bases and coefficients from pca (default), "
                                        "real images or random (Table 4).")] = None,
        targets: Annotated[str | None, Opt(help="ssdd: augmented views' targets: approx (default), "
                                           "same, bias or ideal (Table 11).")] = None,
        steps: Annotated[int | None, Opt(help="Outer steps.")] = None,
        lr: Annotated[float | None, Opt(help="Outer lr (AdamW, linear decay; DM family: SGD).")] = None,
        batch_size: Annotated[int | None, Opt(help="Real images per step (DM family: per class).")] = None,
        pool_size: Annotated[int | None, Opt(help="L, models in the pool (dsdm, iid: pretrained).")] = None,
        pool_epochs: Annotated[int | None, Opt(help="dsdm, iid: epochs of each pretrained network.")] = None,
        width: Annotated[int | None, Opt(help="DM family: the matching ConvNet's width.")] = None,
        pool_steps: Annotated[int | None, Opt(help="Z, inner steps before a model is reset.")] = None,
        pool_reset: Annotated[str | None, Opt(help="paper (default: the counter restarts at a reset) "
                                              "or legacy (KRR-ST's code: it never does).")] = None,
        real_aug: Annotated[str | None, Opt(help="none (default), flip (cached) or crop-flip.")] = None,
        chunk: Annotated[int | None, Opt(help="ssdd, krr-st: support rows per network pass when the set "
                                         "is larger (512).")] = None,
        pool_full_batch: Annotated[bool | None, Opt("--pool-full-batch/--pool-chunked", help=(
            "ssdd, krr-st: pool's inner step in one pass with exact BatchNorm statistics (default: "
            "chunked when the support set exceeds the chunk)."))] = None,
        kmeans_targets: Annotated[str | None, Opt(help="kmeans: targets are the nearest image's "
                                                  "feature (nearest, default) or the centroid.")] = None,
        count_targets: Annotated[bool | None, Opt("--count-targets/--no-count-targets",
                                                  help="Raw-image methods: charge targets.")] = None,
        preset: Annotated[str | None, Opt(help="Preset (resolution and defaults; default: the "
                                          "source's), e.g. imagenette for imagefolder:PATH.")] = None,
        seed: Annotated[int, Opt(help="Random seed.")] = 0,
        device: Annotated[str, Opt(help="auto, cpu, cuda or mps.")] = "auto",
        precision: Annotated[str, Opt(help="auto (bf16 where the device has bf16 units), fp32 or bf16.")
                             ] = "auto",
        data_root: Annotated[Path | None, Opt(help="Where real datasets live.")] = None,
        resume: Annotated[bool, Opt(help="Continue from OUTPUT.ckpt.")] = False,
    ) -> None:
        """Distill a source into a .ssdd artifact within a budget of N images."""
        options = {"U": U, "V": V, "scale": scale, "aug": aug, "hidden": hidden, "init": init,
                   "targets": targets, "steps": steps, "lr": lr,
                   "batch_size": batch_size, "pool_size": pool_size, "pool_steps": pool_steps,
                   "pool_reset": pool_reset, "real_aug": real_aug, "count_targets": count_targets,
                   "kmeans_targets": kmeans_targets, "pool_epochs": pool_epochs, "width": width,
                   "chunk": chunk, "pool_full_batch": pool_full_batch}
        dev = resolve_device(device)
        req = DistillRequest(source=source, output=output, method=method, budget=budget, options=options,
                             seed=seed, device=dev, data_root=data_root, teacher=teacher, resume=resume,
                             preset=preset, precision=resolve_precision(precision, dev))
        with progress_callback() as callback:
            result = run_distill(req, callback)
        man, losses = result.manifest, result.losses
        console.print(f"wrote {result.path}: {man.method}, m = {man.m} images, "
                      f"{man.budget.floats_used:,} of {man.budget.floats_allowed:,} floats "
                      f"(N = {man.budget.images})")
        if losses:
            console.print(f"outer loss {losses[0]:.4g} → {losses[-1]:.4g} over {len(losses)} steps "
                          f"in {result.seconds:.0f} s")
