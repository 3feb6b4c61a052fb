"""Tiny distillation setups: 16 px, 1 channel, a linear 'teacher', a narrow ConvNet pool."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from ssdd_cli.distill.augment import get_augmentation
from ssdd_cli.distill.engine import OuterConfig, OuterLoop
from ssdd_cli.distill.inputs import DistillInputs, TeacherTargets
from ssdd_cli.distill.methods.ssdd import init_parameterization
from ssdd_cli.distill.objectives.krr import KRRConfig, KRRObjective
from ssdd_cli.distill.pool import PoolConfig
from ssdd_cli.progress import silent

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
              aug: str = "rotate", m: int = 6, held_out: Tensor | None = None) -> OuterLoop:
    g = torch.Generator().manual_seed(seed)
    inputs = DistillInputs(source, TeacherTargets(teacher, source, D_Y), g, held_out=held_out)
    param = init_parameterization(inputs, m=m, U=16, V=8, scale=2, augmentation=get_augmentation(aug))
    pool = PoolConfig(size=2, max_steps=3, arch="convnet", arch_kwargs={"widths": (8, 16)})
    objective = KRRObjective(KRRConfig(batch_size=32, pool=pool), inputs)
    loop = OuterLoop(param, objective, OuterConfig(steps=steps, lr=1e-2, checkpoint_every=2, held_out_every=2), g)
    objective.prepare(param, silent)
    return loop
