"""Tiny distillation setups: 16 px, 1 channel, a linear 'teacher', a narrow ConvNet pool."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from ssdd_cli.distill.augment import get_augmentation
from ssdd_cli.distill.engine import OuterConfig, OuterLoop
from ssdd_cli.distill.methods.base import InitInputs
from ssdd_cli.distill.methods.ssdd import init_parameterization
from ssdd_cli.distill.pool import ModelPool, PoolConfig
from ssdd_cli.distill.real import RealSampler

D_Y = 12


@pytest.fixture
def source() -> Tensor:
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.randn(200, 1, 20, 20, generator=g), 5, stride=1)
    return (smooth[:, :, :16, :16] + 0.5) * 2


@pytest.fixture
def teacher() -> Callable[[Tensor], Tensor]:
    w = torch.randn(256, D_Y, generator=torch.Generator().manual_seed(1)) / 16

    def fn(x: Tensor) -> Tensor:
        return torch.tanh(x.flatten(1) @ w)

    return fn


def make_loop(source: Tensor, teacher: Callable[[Tensor], Tensor], seed: int = 0, steps: int = 6,
              aug: str = "rotate", m: int = 6) -> OuterLoop:
    g = torch.Generator().manual_seed(seed)
    feats = teacher(source)
    augmentation = get_augmentation(aug)
    param = init_parameterization(InitInputs(source, feats, teacher, g), m=m, U=16, V=8, scale=2,
                                  augmentation=augmentation)
    pool = ModelPool(PoolConfig(size=2, max_steps=3, arch="convnet", arch_kwargs={"widths": (8, 16)}),
                     1, 16, D_Y, torch.device("cpu"), g)
    real = RealSampler(source, "none", 32, {"identity": feats})
    loop = OuterLoop(param, augmentation, pool, real, OuterConfig(steps=steps, lr=1e-2, checkpoint_every=2), g)
    with torch.no_grad():
        x, y = loop.support()
    pool.initialize(x, y)
    return loop
