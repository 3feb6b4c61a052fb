"""LARS against a hand computation of its update (solo-learn's `solo/utils/lars.py`)."""

from __future__ import annotations

import pytest
import torch

from ssdd_cli.kit.lars import LARS


def _params() -> tuple[torch.nn.Parameter, torch.nn.Parameter]:
    weight = torch.nn.Parameter(torch.tensor([[3.0, 4.0]]))  # ‖w‖ = 5
    bias = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    weight.grad = torch.tensor([[0.6, 0.8]])  # ‖g‖ = 1
    bias.grad = torch.tensor([0.5, -0.5])
    return weight, bias


def test_one_step_without_clipping_matches_the_hand_computation() -> None:
    weight, bias = _params()
    LARS([weight, bias], lr=0.3, momentum=0.9, weight_decay=0.1, eta=0.02, eps=0.0,
         exclude_bias_n_norm=True).step()
    # ρ = η‖w‖ / (‖g‖ + λ‖w‖) = 0.02·5 / (1 + 0.1·5) = 1/15;
    # d = ρ(g + λw) = (0.9, 1.2)/15 = (0.06, 0.08); w ← w − 0.3·d.
    assert weight.detach().flatten().tolist() == pytest.approx([3.0 - 0.018, 4.0 - 0.024])
    # The bias is neither adapted nor decayed: b ← b − 0.3·g.
    assert bias.detach().tolist() == pytest.approx([1.0 - 0.15, 2.0 + 0.15])


def test_clip_lr_caps_the_trust_ratio_at_one() -> None:
    weight, bias = _params()
    LARS([weight, bias], lr=0.3, weight_decay=0.1, eta=0.02, eps=0.0, clip_lr=True,
         exclude_bias_n_norm=True).step()
    # clip: ρ = min((1/15) / 0.3, 1) = 2/9; w ← w − 0.3·(2/9)·(0.9, 1.2) = w − (0.06, 0.08).
    assert weight.detach().flatten().tolist() == pytest.approx([2.94, 3.92])
    weight, bias = _params()
    LARS([weight], lr=1e-3, weight_decay=0.1, eta=0.02, eps=0.0, clip_lr=True).step()
    # ρ/lr = 66.7 > 1, so ρ = 1: a plain SGD step with weight decay.
    assert weight.detach().flatten().tolist() == pytest.approx([3.0 - 1e-3 * 0.9, 4.0 - 1e-3 * 1.2])


def test_momentum_accumulates_the_scaled_update() -> None:
    weight, _ = _params()
    opt = LARS([weight], lr=0.3, momentum=0.9, eta=0.02, eps=0.0)
    opt.step()  # ρ = 0.02·5 / 1 = 0.1, d = (0.06, 0.08), v = d
    after_one = weight.detach().clone()
    assert after_one.flatten().tolist() == pytest.approx([3.0 - 0.018, 4.0 - 0.024])
    weight.grad = torch.tensor([[0.6, 0.8]])
    opt.step()
    norm = float(torch.linalg.vector_norm(after_one))
    d2 = 0.02 * norm * torch.tensor([[0.6, 0.8]])  # ρ = η‖w₁‖ / ‖g‖, ‖g‖ = 1
    expected = after_one - 0.3 * (0.9 * torch.tensor([[0.06, 0.08]]) + d2)
    assert torch.allclose(weight.detach(), expected)


def test_bias_and_norm_are_adapted_when_not_excluded_and_zero_tensors_are_not() -> None:
    weight, bias = _params()
    LARS([bias], lr=0.3, eta=0.02, eps=0.0).step()
    # ‖b‖ = √5, ‖g‖ = √0.5: ρ = 0.02·√10, b ← b − 0.3·ρ·g.
    rho = 0.02 * 10 ** 0.5
    assert bias.detach().tolist() == pytest.approx([1.0 - 0.3 * rho * 0.5, 2.0 + 0.3 * rho * 0.5])
    zero = torch.nn.Parameter(torch.zeros(2, 2))
    zero.grad = torch.ones(2, 2)
    LARS([zero], lr=0.3, weight_decay=0.1, eta=0.02).step()
    assert zero.detach().flatten().tolist() == pytest.approx([-0.3] * 4)
