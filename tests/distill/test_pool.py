"""The pool's inner step over chunks of a large support set."""

from __future__ import annotations

import torch
from torch import Tensor

from ssdd_cli.distill.pool import ModelPool, PoolConfig

D_Y = 5


def stepped(norm: str, chunk: int, full_batch: bool = False) -> ModelPool:
    """One pool model (same seed every call) after one inner step on 48 support rows."""
    g = torch.Generator().manual_seed(0)
    config = PoolConfig(size=1, max_steps=10, arch_kwargs={"widths": (4, 8), "norm": norm}, full_batch=full_batch)
    pool = ModelPool(config, 1, 16, D_Y, torch.device("cpu"), g, chunk=chunk)
    pool.build()
    x, y = torch.randn(48, 1, 16, 16, generator=g), torch.randn(48, D_Y, generator=g)
    pool.step(0, x, y)
    return pool


def weights(pool: ModelPool) -> dict[str, Tensor]:
    return {k: v for k, v in pool.models[0].state_dict().items() if "running" not in k and "tracked" not in k}


def test_chunked_inner_step_is_the_full_batch_step_without_batchnorm() -> None:
    for norm in ("none", "in"):  # no batch statistics: gradient accumulation is exact
        full, chunked = weights(stepped(norm, chunk=1000)), weights(stepped(norm, chunk=7))
        assert full.keys() == chunked.keys()
        for name in full:
            torch.testing.assert_close(chunked[name], full[name], rtol=1e-5, atol=1e-6)


def test_full_batch_option_keeps_the_exact_step_with_batchnorm() -> None:
    exact, forced = stepped("bn", chunk=1000), stepped("bn", chunk=7, full_batch=True)
    for (name, a), b in zip(exact.models[0].state_dict().items(), forced.models[0].state_dict().values(),
                            strict=True):
        torch.testing.assert_close(b, a, msg=name)
    chunked = stepped("bn", chunk=7)  # per-chunk statistics: a different (documented) step
    assert not torch.allclose(weights(chunked)["backbone.blocks.0.weight"], weights(exact)["backbone.blocks.0.weight"])


def test_chunked_step_keeps_the_running_statistics_weight_on_their_past() -> None:
    g = torch.Generator().manual_seed(1)
    pool = ModelPool(PoolConfig(size=1, arch_kwargs={"widths": (4, 8)}), 1, 16, D_Y, torch.device("cpu"), g,
                     chunk=8)
    pool.build()
    norm = pool.models[0].backbone.blocks[1]
    assert isinstance(norm, torch.nn.BatchNorm2d)
    norm.running_mean.fill_(1000.0)  # far from any batch mean, so the past's weight shows
    pool.step(0, torch.rand(48, 1, 16, 16, generator=g), torch.randn(48, D_Y, generator=g))  # 6 chunks
    # One full-batch update keeps 0.9 of the past; six updates at momentum 0.1 would keep 0.9⁶ ≈ 0.53.
    assert torch.all((norm.running_mean - 900).abs() < 5)
    assert norm.momentum == 0.1
