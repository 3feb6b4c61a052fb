from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ssdd_cli.distill.approx import ApproxConfig, approx_targets, fit_approx
from ssdd_cli.distill.objectives.krr import KRRObjective
from ssdd_cli.distill.pool import ModelPool, PoolConfig
from ssdd_cli.errors import DivergedError, UsageError
from ssdd_cli.kit.checkpoint import Checkpointer
from tests.distill.conftest import D_Y, make_loop


def test_gradients_reach_every_distilled_tensor(source: Tensor, teacher) -> None:  # type: ignore[no-untyped-def]
    loop = make_loop(source, teacher)
    before = {k: v.detach().clone() for k, v in loop.distilled.named_parameters()}
    loop.outer_step()
    for name, p in loop.distilled.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert not torch.equal(p.detach(), before[name]), name


def test_outer_loss_falls(source: Tensor, teacher) -> None:  # type: ignore[no-untyped-def]
    loop = make_loop(source, teacher, steps=40)
    losses = loop.run()
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


def test_pool_resets_counter_at_Z() -> None:
    g = torch.Generator().manual_seed(0)
    pool = ModelPool(PoolConfig(size=1, max_steps=2, arch_kwargs={"widths": (4, 8)}), 1, 16, D_Y,
                     torch.device("cpu"), g)
    x, y = torch.randn(4, 1, 16, 16), torch.randn(4, D_Y)
    pool.build()
    first = pool.models[0]
    pool.step(0, x, y)
    pool.step(0, x, y)
    assert pool.steps == [2] and pool.models[0] is first
    pool.step(0, x, y)  # z = Z: re-initialise and reset
    assert pool.steps == [0] and pool.models[0] is not first
    pool.step(0, x, y)
    assert pool.steps == [1]


def test_pool_initial_steps_are_within_1_to_Z(source: Tensor, teacher) -> None:  # type: ignore[no-untyped-def]
    loop = make_loop(source, teacher)
    assert isinstance(loop.objective, KRRObjective)
    assert all(1 <= s <= 3 for s in loop.objective.pool.steps)


def test_approx_training_reduces_mse() -> None:
    g = torch.Generator().manual_seed(0)
    c_y = torch.randn(40, 6, generator=g)
    c_aug = torch.stack([c_y + torch.tanh(c_y @ torch.randn(6, 6, generator=g)) for _ in range(3)])
    fit = fit_approx(c_y, c_aug, ApproxConfig(hidden=4, steps=300), g)
    assert len(fit.mse_before) == len(fit.mse_after) == 3
    assert all(after < 0.6 * before for before, after in zip(fit.mse_before, fit.mse_after, strict=True))
    targets = approx_targets(c_y, torch.eye(6), fit.nets)
    assert targets.shape == (160, 6) and torch.equal(targets[:40], c_y)


def test_checkpoint_resume_is_exact(source: Tensor, teacher, tmp_path) -> None:  # type: ignore[no-untyped-def]
    full = make_loop(source, teacher, steps=8)
    full.run()
    part = make_loop(source, teacher, steps=8)
    ckpt = Checkpointer(tmp_path / "d.ckpt", "distill", {})
    # Interrupt after 5 steps (last checkpoint at step 4), then resume in a fresh loop.
    for _ in range(4):
        part.outer_step()
    part.save(ckpt)
    part.outer_step()
    resumed = make_loop(source, teacher, steps=8, seed=123)  # different seed: state must come from disk
    resumed.load_state(*ckpt.load())
    assert resumed.step == 4
    resumed.run()
    a, b = full.distilled.state_dict(), resumed.distilled.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert full.losses == resumed.losses


def test_held_out_loss_falls_and_leaves_the_run_unchanged(source: Tensor, teacher) -> None:  # type: ignore[no-untyped-def]
    held_out = source.flip(-1)[:64]  # images the distillation never samples
    loop = make_loop(source, teacher, steps=40, held_out=held_out)
    before = loop.record_held_out()
    loop.run()
    assert before is not None and [s for s, _ in loop.held_out] == list(range(0, 41, 2))
    assert loop.held_out[-1][1] < 0.8 * before
    plain = make_loop(source, teacher, steps=40)
    plain.run()
    assert plain.held_out == [] and plain.losses == loop.losses  # the signal draws no randomness


def test_losses_read_every_few_steps_are_the_per_step_losses(source: Tensor, teacher) -> None:  # type: ignore[no-untyped-def]
    eager = make_loop(source, teacher, steps=7)
    eager.run()
    deferred = make_loop(source, teacher, steps=7)
    deferred.read_every = 3  # as on an accelerator: losses stay on the device between reads
    deferred.outer_step()
    assert deferred.losses == []  # not read yet
    deferred.run()
    assert deferred.losses == eager.losses


def test_a_deferred_read_names_the_first_non_finite_step(source: Tensor, teacher) -> None:  # type: ignore[no-untyped-def]
    loop = make_loop(source, teacher, steps=8)
    loop.read_every = 4
    loop.outer_step()
    loop.outer_step()
    with torch.no_grad():
        loop.distilled.repr_coeffs.fill_(float("nan"))  # Ỹ_s, hence the loss, become NaN at step 3
    loop.outer_step()
    assert len(loop.losses) == 0  # nothing read yet: no synchronisation so far
    with pytest.raises(DivergedError, match="at step 3"):
        loop.read_losses()


def test_the_folded_pool_network_gives_the_outer_loss_and_gradient_of_the_unfolded_one(  # type: ignore[no-untyped-def]
        source: Tensor, teacher, monkeypatch: pytest.MonkeyPatch) -> None:
    def step(loop) -> tuple[float, dict[str, Tensor]]:  # type: ignore[no-untyped-def]
        loss = next(iter(loop.objective.losses(loop.distilled)))
        loss.backward()
        return float(loss.detach()), {n: p.grad.clone() for n, p in loop.distilled.named_parameters()}

    folded_loss, folded_grads = step(make_loop(source, teacher))
    monkeypatch.setattr("ssdd_cli.distill.objectives.krr.fold_batchnorm", lambda net: net)
    loss, grads = step(make_loop(source, teacher))
    assert folded_loss == pytest.approx(loss, rel=1e-4)
    for name, g in grads.items():  # float32 rounding through a nearly interpolating solve: 2e-4 here
        assert float((folded_grads[name] - g).norm() / g.norm()) < 1e-3, name


def test_each_kind_of_tensor_takes_its_own_learning_rate(source: Tensor, teacher) -> None:  # type: ignore[no-untyped-def]
    from ssdd_cli.distill.engine import OuterConfig, OuterLoop

    base = make_loop(source, teacher)
    config = OuterConfig(steps=10, lr=1e-3, lr_images=1e-1, lr_targets=1e-4)
    loop = OuterLoop(base.distilled, base.objective, config, torch.Generator().manual_seed(0))
    before = {n: p.detach().clone() for n, p in loop.distilled.named_parameters()}
    loop.outer_step()
    # AdamW's first step moves every entry by about lr (m/√v = ±1), times the schedule's 1 at step 0.
    for name, p in loop.distilled.named_parameters():
        moved = float((p.detach() - before[name]).abs().max())
        lr = 1e-1 if name in ("image_bases", "image_coeffs") else 1e-4
        assert 0.5 * lr < moved < 1.5 * lr, (name, moved)
    assert {g["base_lr"] for g in loop.optimizer.param_groups} == {1e-1, 1e-4}
    with pytest.raises(UsageError, match="lr_images must be positive"):
        OuterConfig(steps=1, lr_images=0.0)
