"""Outer-step time and achieved GFLOP/s at CIFAR-100 shape, on random tensors (not a test).

3×32×32 images, U = V = 200, m from the budget (114 at N = 100), rotate (A = 3), real batch 256,
the 128-256-512 ConvNet pool, a ResNet18 teacher (d_y = 512). `--method krr-st` uses m = 100 raw
images. "cached" draws teacher targets from the precomputed cache (`--real-aug none`);
"recompute" runs the teacher on every real batch (`--real-aug crop-flip`, as KRR-ST's code does).

    python examples/benchmark_distill.py [--steps 3] [--batch 256] [--source-size 2048]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch
from torch.utils.flop_counter import FlopCounterMode

from ssdd_cli.budget import ImageShape, ssdd_budget
from ssdd_cli.distill.augment import get_augmentation
from ssdd_cli.distill.engine import OuterConfig, OuterLoop
from ssdd_cli.distill.methods.base import InitInputs
from ssdd_cli.distill.methods.krr_st import RawDistilled
from ssdd_cli.distill.methods.ssdd import init_parameterization
from ssdd_cli.distill.pool import ModelPool, PoolConfig
from ssdd_cli.distill.real import RealSampler
from ssdd_cli.models import create_backbone, extract_features


def build(method: str, real_aug: str, args: argparse.Namespace) -> OuterLoop:
    g = torch.Generator().manual_seed(0)
    source = torch.randn(args.source_size, 3, 32, 32, generator=g)
    teacher_fn = partial(extract_features, create_backbone("resnet18", 3, 32))

    feats = teacher_fn(source)
    if method == "ssdd":
        m = ssdd_budget(100, 200, 200, ImageShape(3, 32, 32)).m
        aug = get_augmentation("rotate")
        distilled = init_parameterization(InitInputs(source, feats, teacher_fn, g), m, 200, 200, 2, aug)
    else:
        aug = get_augmentation("none")
        distilled = RawDistilled(source[:100], feats[:100])
    pool = ModelPool(PoolConfig(size=1, max_steps=10**9), 3, 32, 512, torch.device("cpu"), g)
    pool.build()
    real = RealSampler(source, real_aug, args.batch, {"identity": feats}, teacher_fn)
    return OuterLoop(distilled, aug, pool, real, OuterConfig(steps=10**6), g)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--source-size", type=int, default=2048)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, real batch {args.batch}")
    print(f"{'method':8} {'teacher':10} {'M':>5} {'s/step':>8} {'GFLOP/s':>8}")
    for method in ("ssdd", "krr-st"):
        for label, real_aug in (("cached", "none"), ("recompute", "crop-flip")):
            loop = build(method, real_aug, args)
            rows = loop.augmentation.expand(loop.distilled.images()).shape[0]
            seconds, gflops = measure(loop, args.steps)
            print(f"{method:8} {label:10} {rows:>5} {seconds:>8.2f} {gflops:>8.1f}")


if __name__ == "__main__":
    main()
