"""Differentiable Siamese augmentation: one draw, the same transform on both sides, reproducible."""

from __future__ import annotations

import pytest
import torch

from ssdd_cli.distill import dsa
from ssdd_cli.errors import UsageError


def images(n: int = 6, c: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, c, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("group", list(dsa.GROUPS))
def test_a_shared_draw_transforms_real_and_synthetic_alike(group: str) -> None:
    real, syn = images(8, seed=1), images(3, seed=2)
    omega = dsa.sample(group, "dsa", (16, 16), torch.Generator().manual_seed(5))
    assert [op.name for op in omega] == list(dsa.GROUPS[group])
    assert all(op.params.shape[0] == 1 for op in omega)
    # The same draw on a batch and on its rows: each image gets the transform the other side gets.
    both = dsa.apply(omega, torch.cat([real, syn]))
    assert torch.allclose(dsa.apply(omega, real), both[:8], atol=1e-6)
    assert torch.allclose(dsa.apply(omega, syn), both[8:], atol=1e-6)


def test_every_image_of_a_shared_draw_gets_the_same_transform() -> None:
    x = images(1).repeat(5, 1, 1, 1)
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        out = dsa.apply(dsa.sample(dsa.DSA_STRATEGY, "dsa", (16, 16), g), x)
        assert torch.allclose(out, out[:1].expand_as(out), atol=1e-6)


def test_per_image_draws_differ_between_images() -> None:
    x = images(1).repeat(64, 1, 1, 1)
    omega = dsa.sample("crop", "dsa", (16, 16), torch.Generator().manual_seed(0), n=64, shared=False)
    assert omega[0].params.shape == (64, 2)
    out = dsa.apply(omega, x)
    assert len({tuple(p.tolist()) for p in omega[0].params}) > 10
    assert not torch.allclose(out, out[:1].expand_as(out))


def test_a_private_generator_makes_draws_reproducible_and_leaves_the_global_rng_alone() -> None:
    x = images()
    before = torch.get_rng_state()
    outs = []
    for _ in range(2):
        g = torch.Generator().manual_seed(42)
        outs.append([dsa.apply(dsa.sample(dsa.DSA_STRATEGY, "dsa", (16, 16), g), x) for _ in range(12)])
    assert all(torch.equal(a, b) for a, b in zip(*outs, strict=True))
    assert torch.equal(torch.get_rng_state(), before)
    other = torch.Generator().manual_seed(43)
    assert any(not torch.equal(a, dsa.apply(dsa.sample(dsa.DSA_STRATEGY, "dsa", (16, 16), other), x))
               for a in outs[0])


def test_idc_mode_applies_colour_one_other_group_and_cutout_in_order() -> None:
    g = torch.Generator().manual_seed(0)
    names = [op.name for op in dsa.sample(dsa.IDC_STRATEGY, "idc", (32, 32), g)]
    assert names == ["brightness", "saturation", "contrast", "crop", "cutout"]
    seen = {tuple(op.name for op in dsa.sample("color_crop_scale_rotate", "idc", (32, 32), g))[3] for _ in range(40)}
    assert seen == {"crop", "scale", "rotate"}


def test_the_ops_do_what_dc_does() -> None:
    x = images(2, c=3, size=16)
    one = torch.ones(1, 1)
    assert torch.allclose(dsa.brightness(x, one * 0.75), x + 0.25)
    assert torch.allclose(dsa.contrast(x, one * 0.5), x)  # factor u + 0.5 = 1
    assert torch.allclose(dsa.saturation(x, one * 0.5), x, atol=1e-6)  # factor 2u = 1
    assert torch.equal(dsa.flip(x, one * 0.1), x.flip(3)) and torch.equal(dsa.flip(x, one * 0.9), x)
    # Translation by one row down: row i reads row i + 1 of the input; the last row is zero.
    moved = dsa.crop(x, torch.tensor([[1, 0]]))
    assert torch.equal(moved[:, :, :-1], x[:, :, 1:]) and torch.equal(moved[:, :, -1], torch.zeros_like(x[:, :, -1]))
    # Cutout of half the side centred at (0, 0): the top-left 4×4 corner (rows −4..3) is zeroed.
    cut = dsa.cutout(x, torch.tensor([[0, 0]]))
    assert torch.equal(cut[:, :, :4, :4], torch.zeros(2, 3, 4, 4)) and torch.equal(cut[:, :, 4:], x[:, :, 4:])
    assert torch.allclose(dsa.scale(x, torch.ones(1, 2)), x, atol=1e-5)
    assert torch.allclose(dsa.rotate(x, torch.zeros(1, 1)), x, atol=1e-5)


def test_magnitudes_stay_in_dc_ranges() -> None:
    g = torch.Generator().manual_seed(0)
    t = dsa.sample("crop", "dsa", (32, 32), g, n=2000, shared=False)[0].params
    assert int(t.min()) == -4 and int(t.max()) == 4  # ±⌊32/8 + ½⌋
    s = dsa.sample("scale", "dsa", (32, 32), g, n=2000, shared=False)[0].params
    assert float(s.min()) >= 1 / 1.2 and float(s.max()) <= 1.2
    a = dsa.sample("rotate", "dsa", (32, 32), g, n=2000, shared=False)[0].params
    assert float(a.abs().max()) <= 15 / 180 * torch.pi


def test_gradients_reach_the_images_through_every_op() -> None:
    for group in dsa.GROUPS:
        x = images(2).requires_grad_(True)
        omega = dsa.sample(group, "dsa", (16, 16), torch.Generator().manual_seed(1))
        dsa.apply(omega, x).pow(2).sum().backward()
        assert x.grad is not None and float(x.grad.abs().sum()) > 0, group


def test_unknown_strategy_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown augmentation strategy 'color_mixup'") as e:
        dsa.sample("color_mixup", "dsa", (16, 16), torch.Generator())
    assert e.value.option == "dsa"
