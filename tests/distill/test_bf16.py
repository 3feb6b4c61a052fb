"""Quality under bf16: the outer gradient keeps its direction (issue 14: cosine ≥ 0.99)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ssdd_cli.distill.augment import get_augmentation
from ssdd_cli.distill.inputs import DistillInputs, TeacherTargets
from ssdd_cli.distill.methods.ssdd import init_parameterization
from ssdd_cli.distill.objectives.krr import KRRConfig, KRRObjective
from ssdd_cli.distill.pool import PoolConfig
from ssdd_cli.kit.precision import FP32, Precision


def outer_gradient(precision: Precision) -> Tensor:
    """The gradient of one outer loss (fixed real batch, pool model after 3 inner steps) with
    respect to every distilled tensor, flattened; 3×32×32 images, ConvNet 32-64-128."""
    g = torch.Generator().manual_seed(0)
    source = torch.nn.functional.avg_pool2d(torch.randn(300, 3, 36, 36, generator=g), 5, stride=1)
    w = torch.randn(3 * 32 * 32, 16, generator=g) / 3072**0.5
    teacher = TeacherTargets(lambda x: torch.tanh(x.flatten(1) @ w), source, 16, precision=precision)
    inputs = DistillInputs(source, teacher, g, precision=precision)
    param = init_parameterization(inputs, m=20, U=32, V=8, scale=2, augmentation=get_augmentation("rotate"))
    pool = PoolConfig(size=1, max_steps=5, arch_kwargs={"widths": (32, 64, 128)})
    objective = KRRObjective(KRRConfig(batch_size=128, pool=pool), inputs)
    objective.pool.build()
    for _ in range(3):  # a trained network, not the initial one
        with torch.no_grad():
            x_s, y_s = param.support()
        objective.pool.step(0, x_s, y_s)
    next(objective.losses(param)).backward()
    return torch.cat([p.grad.flatten() for p in param.parameters() if p.grad is not None])


@pytest.mark.usefixtures("one_thread")
def test_bf16_outer_gradient_points_where_the_fp32_one_does() -> None:
    fp32, bf16 = outer_gradient(FP32), outer_gradient(Precision("bf16", "cpu", channels_last=True))
    assert not torch.equal(fp32, bf16)  # bf16 really ran
    assert torch.nn.functional.cosine_similarity(fp32, bf16, dim=0) >= 0.99
