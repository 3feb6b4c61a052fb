"""`ssdd distill`: distill a source into a .ssdd artifact within a budget of N images."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ssdd_cli.budget import AUG_TARGETS
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
    choice,
    positive,
)
from ssdd_cli.cli._progress import progress_callback
from ssdd_cli.cli._record import record_path, run_record
from ssdd_cli.device import resolve_device
from ssdd_cli.distill.catalog import AUGMENTATION_VIEWS, method_names
from ssdd_cli.distill.methods.select import KMEANS_TARGETS
from ssdd_cli.distill.methods.ssdd import INITS
from ssdd_cli.distill.pool import RESETS
from ssdd_cli.distill.real import REAL_AUGS
from ssdd_cli.distill.run import DistillRequest, run_distill
from ssdd_cli.kit.precision import resolve_precision
from ssdd_cli.progress import Callback, ProgressEvent
from ssdd_cli.teacher.targets import DEFAULT_TARGETS, TARGET_SCALINGS

if TYPE_CHECKING:
    MethodName = str
    AugName = str
    InitName = str
    TargetsName = str
    ResetName = str
    RealAugName = str
    KMeansTargets = str
    ScalingName = str
else:
    MethodName, AugName = choice(method_names()), choice(sorted(AUGMENTATION_VIEWS))
    InitName, TargetsName, ResetName = choice(INITS), choice(AUG_TARGETS), choice(RESETS)
    RealAugName, KMeansTargets = choice(REAL_AUGS), choice(KMEANS_TARGETS)
    ScalingName = choice(TARGET_SCALINGS)

Opt = typer.Option


def register(app: typer.Typer) -> None:
    @app.command("distill")
    def command(
        source: Source,
        output: Output,
        budget: Annotated[int | None, Opt(min=1, help="N: the budget in images (default: the "
                                          "preset's).")] = None,
        method: Annotated[MethodName, Opt(help="Distillation method (`ssdd budget --method` shows its "
                                          "budget).")] = "ssdd",
        teacher: Annotated[Path | None, Opt(exists=True, dir_okay=False, help="Teacher file (default: the "
                                            "cached one, trained first if absent).")] = None,
        U: Annotated[int | None, Opt("--U", min=1, help="ssdd: image bases (default: Table 5).")] = None,
        V: Annotated[int | None, Opt("--V", min=1, help="ssdd: representation bases.")] = None,
        scale: Annotated[int | None, Opt(min=1, help="ssdd: image bases at 1/scale resolution.")] = None,
        aug: Annotated[AugName | None, Opt(help="ssdd: predefined augmentation (default: rotate).")] = None,
        hidden: Annotated[int | None, Opt(min=1, help="ssdd: approximation network hidden width.")] = None,
        init: Annotated[InitName | None, Opt(help="ssdd: bases and coefficients from pca (default), "
                                             "real images or random (Table 4).")] = None,
        targets: Annotated[TargetsName | None, Opt(help="ssdd: augmented views' targets (default: "
                                                   "approx; Table 11).")] = None,
        steps: Annotated[int | None, Opt(min=0, help="Outer steps (0: the initialisation as it is).")] = None,
        lr: Annotated[float | None, Opt(callback=positive, help="Outer lr (AdamW, linear decay; DM "
                                        "family: SGD).")] = None,
        lr_images: Annotated[float | None, Opt(callback=positive, help="ssdd, krr-st: the outer lr of the "
                                               "tensors that make the images (default: --lr).")] = None,
        lr_targets: Annotated[float | None, Opt(callback=positive, help="ssdd, krr-st: the outer lr of the "
                                                "tensors that make the targets (default: --lr).")] = None,
        batch_size: Annotated[int | None, Opt(min=1, help="Real images per step (DM family: per "
                                              "class).")] = None,
        pool_size: Annotated[int | None, Opt(min=1, help="L, models in the pool (dsdm, iid: "
                                             "pretrained).")] = None,
        pool_epochs: Annotated[int | None, Opt(min=1, help="dsdm, iid: epochs of each pretrained "
                                               "network.")] = None,
        width: Annotated[int | None, Opt(min=1, help="DM family: the matching ConvNet's width.")] = None,
        pool_steps: Annotated[int | None, Opt(min=1, help="Z, inner steps before a model is reset; the "
                                              "pool's initial training is up to Z steps per model.")] = None,
        pool_reset: Annotated[ResetName | None, Opt(help="paper (default: the counter restarts at a "
                                                    "reset) or legacy (KRR-ST's code: it never "
                                                    "does).")] = None,
        real_aug: Annotated[RealAugName | None, Opt(help="The real side's views (default: the "
                                                    "preset's).")] = None,
        real_bank: Annotated[int | None, Opt(min=0, help="ssdd, krr-st with crop-flip: K views per source "
                                             "image whose teacher targets are computed once, each step "
                                             "taking one (0: the teacher on every batch, the "
                                             "default).")] = None,
        chunk: Annotated[int | None, Opt(min=1, help="ssdd, krr-st: support rows per network pass when "
                                         "the set is larger (512).")] = None,
        pool_full_batch: Annotated[bool | None, Opt("--pool-full-batch/--pool-chunked", help=(
            "ssdd, krr-st: pool's inner step in one pass with exact BatchNorm statistics (default: "
            "chunked when the support set exceeds the chunk)."))] = None,
        kmeans_targets: Annotated[KMeansTargets | None, Opt(help="kmeans: the nearest image's feature "
                                                            "(default) or the centroid.")] = None,
        per_class: Annotated[bool | None, Opt("--per-class/--uniform", help="random: ⌊m/C⌋ images of "
                                              "each class (the DM papers' Random rows) instead of m "
                                              "uniformly (default).")] = None,
        count_targets: Annotated[bool | None, Opt("--count-targets/--no-count-targets",
                                                  help="Raw-image methods: charge targets.")] = None,
        probe_every: Annotated[int | None, Opt(min=0, help="ssdd, krr-st: every K outer steps, pretrain a "
                                               "fresh network on the set (--probe-steps) and report its "
                                               "k-NN and CKA on validation images (0: never, the "
                                               "default).")] = None,
        probe_steps: Annotated[int | None, Opt(min=1, help="ssdd, krr-st: SGD steps of each probe's "
                                               "pretraining (default 200; the set's own pretraining "
                                               "takes 1,000 epochs).")] = None,
        target_scaling: Annotated[ScalingName, Opt(help="Regression targets: the teacher's features "
                                                   "standardized per dimension (default) or raw (the "
                                                   "papers' code).")] = DEFAULT_TARGETS,
        preset: Preset = None,
        seed: Seed = 0,
        device: Device = "auto",
        precision: Precision = "auto",
        memory_format: MemoryFormat = "auto",
        data_root: DataRoot = None,
        download: Download = False,
        resume: Resume = False,
        quiet: Quiet = False,
        log_format: LogFormat = "text",
    ) -> None:
        """Distill a source into a .ssdd artifact within a budget of N images."""
        set_output(quiet, log_format)
        options = {"U": U, "V": V, "scale": scale, "aug": aug, "hidden": hidden, "init": init,
                   "targets": targets, "steps": steps, "lr": lr, "lr_images": lr_images,
                   "lr_targets": lr_targets,
                   "batch_size": batch_size, "pool_size": pool_size, "pool_steps": pool_steps,
                   "pool_reset": pool_reset, "real_aug": real_aug, "real_bank": real_bank,
                   "count_targets": count_targets,
                   "kmeans_targets": kmeans_targets, "per_class": per_class, "pool_epochs": pool_epochs,
                   "width": width,
                   "chunk": chunk, "pool_full_batch": pool_full_batch, "probe_every": probe_every,
                   "probe_steps": probe_steps}
        dev = resolve_device(device)
        req = DistillRequest(source=source, output=output, method=method, budget=budget, options=options,
                             seed=seed, device=dev, data_root=data_root, teacher=teacher,
                             resume=resume, preset=preset, download=download,
                             precision=resolve_precision(precision, dev, memory_format, say=notice),
                             target_scaling=target_scaling)
        given = {"source": source, "method": method, "budget": budget, "teacher": teacher, "preset": preset,
                 "data_root": data_root, "resume": resume, "precision": precision,
                 "target_scaling": target_scaling, **options}
        with run_record(output, "distill", given, device=str(dev), seed=seed, append=resume) as record, \
                progress_callback(record) as callback:
            result = run_distill(req, _pool_notice(callback))
            man = result.manifest
            record.finish(config={"budget": man.budget.model_dump(mode="json"),
                                  "distill": man.distill.model_dump(mode="json") if man.distill else None,
                                  "teacher": man.teacher.model_dump(mode="json") if man.teacher else None,
                                  "preset": man.source.preset}, output=str(result.path))
        losses = result.losses
        console.print(f"wrote {result.path}: {man.method}, m = {man.m} images, "
                      f"{man.budget.floats_used:,} of {man.budget.floats_allowed:,} floats "
                      f"(N = {man.budget.images}); run record {record_path(output)}", highlight=False)
        if losses:
            held_out = man.distill.held_out if man.distill else []
            held = f", held-out {held_out[-1][1]:.4g}" if held_out else ""
            probes = man.distill.probe if man.distill else []
            if probes:
                held += "; trained-network signal " + ", ".join(
                    f"{k} {100 * probes[0][1][k]:.1f} → {100 * v:.1f}%" for k, v in probes[-1][1].items())
            console.print(f"outer loss {losses[0]:.4g} → {losses[-1]:.4g} over {len(losses)} steps{held} "
                          f"in {result.seconds:.0f} s", highlight=False)


def _pool_notice(callback: Callback) -> Callback:
    """Say, once, why a run spends time before its first outer step: the pool's initial training
    (each of the L models trained up to Z inner steps, whatever the number of outer steps)."""
    told = False

    def on_event(event: ProgressEvent) -> None:
        nonlocal told
        if event.stage == "pool init" and not told:
            told = True
            notice(f"training the model pool before the first outer step ({event.total} inner steps in "
                   "all, set by --pool-size and --pool-steps; a quick run lowers them)")
        callback(event)

    return on_event
