"""Outer-step time and achieved GFLOP/s at CIFAR-100 shape, on random tensors (not a test).

3×32×32 images, U = V = 200, m from the budget (114 at N = 100), rotate (A = 3), real batch 256,
the 128-256-512 ConvNet pool, a ResNet18 teacher (d_y = 512). `krr-st` uses m = 100 raw images.
"cached" draws teacher targets from the precomputed cache (`real_aug` none); "recompute" runs the
teacher on every real batch (`real_aug` crop-flip, as KRR-ST's code does). Built on the public API
(`Distillation`), as a user would time their own setting.

    python examples/benchmark_distill.py [--steps 3] [--batch 256] [--source-size 2048]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ssdd_cli.distill.distillation import Distillation
from ssdd_cli.distill.engine import OuterLoop
from ssdd_cli.distill.inputs import DistillInputs, TeacherTargets
from ssdd_cli.distill.methods import get_method
from ssdd_cli.distill.methods.base import replace_path
from ssdd_cli.distill.objectives.krr import KRRObjective
from ssdd_cli.models import create_backbone
from ssdd_cli.presets import get_preset


def build(method: str, real_aug: str, args: argparse.Namespace) -> OuterLoop:
    g = torch.Generator().manual_seed(0)
    r = args.resolution
    source = torch.randn(args.source_size, 3, r, r, generator=g)
    teacher = create_backbone("resnet18", 3, r, width=args.teacher_width)
    inputs = DistillInputs(source, TeacherTargets.from_backbone(teacher, {}, source, torch.device("cpu")), g)
    d_y = teacher.feature_dim
    chosen = get_method(method)
    options = {"U": args.bases, "V": args.bases} if method == "ssdd" else {}
    config = chosen.configure(get_preset("cifar100"), args.budget, d_y, steps=10**6, real_aug=real_aug,
                              batch_size=args.batch, pool_size=1, pool_steps=10**9, **options)
    if args.inner_widths:
        config = replace_path(config, "krr.pool.arch_kwargs", {"widths": tuple(args.inner_widths)})
    run = Distillation.create(chosen, config, inputs)
    assert run.loop is not None and isinstance(run.loop.objective, KRRObjective)
    run.loop.objective.pool.build()  # fresh models, no initial training: only the step is timed
    return run.loop


def measure(loop: OuterLoop, steps: int) -> tuple[float, float]:
    loop.outer_step()  # warm-up
    with FlopCounterMode(display=False) as counter:
        loop.outer_step()
    flops = counter.get_total_flops()
    t0 = time.perf_counter()
    for _ in range(steps):
        loop.outer_step()
    seconds = (time.perf_counter() - t0) / steps
    return seconds, flops / seconds / 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--source-size", type=int, default=2048)
    parser.add_argument("--budget", type=int, default=100, help="N; krr-st stores N raw images")
    parser.add_argument("--bases", type=int, default=200, help="U = V of ssdd")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--teacher-width", type=int, default=64)
    parser.add_argument("--inner-widths", type=int, nargs="*", default=[], help="default: the preset's")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, real batch {args.batch}")
    print(f"{'method':8} {'teacher':10} {'M':>5} {'s/step':>8} {'GFLOP/s':>8}")
    for method in ("ssdd", "krr-st"):
        for label, real_aug in (("cached", "none"), ("recompute", "crop-flip")):
            loop = build(method, real_aug, args)
            rows = loop.distilled.support()[0].shape[0]
            seconds, gflops = measure(loop, args.steps)
            print(f"{method:8} {label:10} {rows:>5} {seconds:>8.3f} {gflops:>8.1f}")


if __name__ == "__main__":
    main()
