"""The real side's bank of crop-flip views (`distill.real`, `KRRConfig.real_bank`): each
sampled image comes with its teacher's target of that very view, an image shows at most K views,
the teacher leaves the loop, and the bank depends on the run's seed alone."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ssdd_cli.distill.objectives.krr import KRRConfig
from ssdd_cli.distill.real import RealSampler
from ssdd_cli.errors import UsageError
from ssdd_cli.kit.checkpoint import flat_settings

N, K = 6, 3


class Teacher:
    """A fixed linear map of the flattened image, counting its calls."""

    def __init__(self) -> None:
        self.weight = torch.randn(1 * 8 * 8, 5, generator=torch.Generator().manual_seed(1))
        self.calls = 0

    def __call__(self, x: Tensor) -> Tensor:
        self.calls += 1
        return x.flatten(1) @ self.weight


def images() -> Tensor:
    return torch.randn(N, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def sampler(teacher: Teacher, bank: int = K, seed: int = 7) -> RealSampler:
    return RealSampler(images(), "crop-flip", N, teacher=teacher, black=[-1.0], bank=bank, bank_seed=seed)


def test_each_view_comes_with_its_own_target_and_an_image_shows_at_most_k_views() -> None:
    teacher, g = Teacher(), torch.Generator().manual_seed(3)
    real = sampler(teacher)
    real.build_bank()
    built = teacher.calls
    views = set()
    for _ in range(200):
        x, y = real.sample(g)
        torch.testing.assert_close(y, x.flatten(1) @ teacher.weight)
        views.update(tuple(row.tolist()) for row in x.flatten(1))
    assert teacher.calls == built  # no teacher pass inside the loop
    assert N < len(views) <= N * K  # more than one view per image, never more than K


def test_the_bank_depends_on_the_run_seed_alone() -> None:
    a, b, c = sampler(Teacher()), sampler(Teacher()), sampler(Teacher(), seed=8)
    for real in (a, b, c):
        real.build_bank()
    torch.randn(5, generator=torch.Generator())  # other draws do not move it
    assert a._bank is not None and b._bank is not None and c._bank is not None
    for left, right in zip(a._bank, b._bank, strict=True):
        assert torch.equal(left, right)
    assert not all(torch.equal(left, right) for left, right in zip(a._bank, c._bank, strict=True))


def test_without_a_bank_the_teacher_runs_on_every_batch() -> None:
    teacher, g = Teacher(), torch.Generator().manual_seed(3)
    real = sampler(teacher, bank=0)
    for _ in range(3):
        real.sample(g)
    assert teacher.calls == 3


def test_the_option_is_checked_and_keyed_only_when_set() -> None:
    with pytest.raises(UsageError, match="crop-flip") as e:
        KRRConfig(real_aug="none", real_bank=4)
    assert e.value.option == "real_bank"
    with pytest.raises(UsageError, match="whole number"):
        KRRConfig(real_aug="crop-flip", real_bank=-1)
    assert "real_bank" not in flat_settings(KRRConfig(real_aug="crop-flip"))  # stores keep their keys
    assert flat_settings(KRRConfig(real_aug="crop-flip", real_bank=8))["real_bank"] == 8
