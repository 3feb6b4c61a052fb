"""`ssdd distill`: distill a source into a .ssdd artifact within a budget of N images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ssdd_cli.cli._common import console
from ssdd_cli.cli._progress import progress_callback
from ssdd_cli.device import resolve_device
from ssdd_cli.distill.engine import OuterConfig
from ssdd_cli.distill.methods.base import MethodOptions
from ssdd_cli.distill.pool import PoolConfig
from ssdd_cli.distill.run import DistillRequest, run_distill
from ssdd_cli.presets import get_preset

Opt = typer.Option


def register(app: typer.Typer) -> None:
    @app.command("distill")
    def command(
        source: Annotated[str, Opt(help="Source to distill (see `ssdd datasets`).")],
        output: Annotated[Path, Opt("--output", "-o", help="The .ssdd artifact to write.")],
        budget: Annotated[int | None, Opt(help="N: the budget in images (default: the preset's).")] = None,
        method: Annotated[str, Opt(help="ssdd or krr-st.")] = "ssdd",
        teacher: Annotated[Path | None, Opt(help="Teacher file (default: the cached one).")] = None,
        U: Annotated[int | None, Opt("--U", help="Image bases (default: Table 5).")] = None,
        V: Annotated[int | None, Opt("--V", help="Representation bases.")] = None,
        scale: Annotated[int | None, Opt(help="Image bases at 1/scale resolution.")] = None,
        aug: Annotated[str, Opt(help="rotate, jigsaw, crop or none.")] = "rotate",
        hidden: Annotated[int | None, Opt(help="Approximation network hidden width.")] = None,
        steps: Annotated[int | None, Opt(help="Outer steps.")] = None,
        lr: Annotated[float | None, Opt(help="AdamW learning rate (linear decay).")] = None,
        batch_size: Annotated[int | None, Opt(help="Real images per outer step.")] = None,
        pool_size: Annotated[int | None, Opt(help="L, models in the pool.")] = None,
        pool_steps: Annotated[int | None, Opt(help="Z, inner steps before a model is reset.")] = None,
        real_aug: Annotated[str, Opt(help="none, flip (cached targets) or crop-flip.")] = "none",
        count_targets: Annotated[bool, Opt(help="krr-st: charge targets to the budget.")] = False,
        seed: Annotated[int, Opt(help="Random seed.")] = 0,
        device: Annotated[str, Opt(help="auto, cpu, cuda or mps.")] = "auto",
        data_root: Annotated[Path | None, Opt(help="Where real datasets live.")] = None,
        resume: Annotated[bool, Opt(help="Continue from OUTPUT.ckpt.")] = False,
    ) -> None:
        """Distill a source into a .ssdd artifact within a budget of N images."""
        p = get_preset(source)
        N = budget or p.default_budget
        row = p.budget(N)
        options = MethodOptions(N=N, U=U or row.U, V=V or row.V, scale=scale or p.scale, aug=aug,
                                hidden=hidden or p.hidden, count_targets=count_targets, cap_bases=V is None)
        req = DistillRequest(
            source=source, method=method, options=options,
            outer=OuterConfig(steps=p.steps if steps is None else steps, lr=lr or p.distill_lr),
            pool=PoolConfig(size=pool_size or p.pool_size, max_steps=pool_steps or p.pool_max_steps,
                            arch=p.inner_arch, arch_kwargs=dict(p.inner_kwargs)),
            real_aug=real_aug, batch_size=batch_size or p.real_batch, seed=seed, output=output,
            device=resolve_device(device), data_root=data_root, teacher=teacher, resume=resume)
        with progress_callback() as callback:
            result = run_distill(req, callback)
        man, losses = result.manifest, result.losses
        console.print(f"wrote {result.path}: {man.method}, m = {man.m} images, "
                      f"{man.budget.floats_used:,} of {man.budget.floats_allowed:,} floats (N = {N})")
        if losses:
            console.print(f"outer loss {losses[0]:.4g} → {losses[-1]:.4g} over {len(losses)} steps "
                          f"in {result.seconds:.0f} s")
