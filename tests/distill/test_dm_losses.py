"""The DM family's losses as pure functions, and the per-class budget by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ssdd_cli.budget import ImageShape, class_budget
from ssdd_cli.distill.labelled import decode_tiles
from ssdd_cli.distill.methods.datadam import attention_map, datadam_loss
from ssdd_cli.distill.methods.dm import mean_embedding_loss
from ssdd_cli.distill.methods.dsdm import covariance_distance, dsdm_loss
from ssdd_cli.distill.methods.idm import idm_loss
from ssdd_cli.distill.methods.iid import centralization_loss, iid_loss, local_covariance
from ssdd_cli.errors import BudgetError


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_dm_loss_is_the_squared_distance_of_the_means() -> None:
    real, syn = randn(50, 8), randn(4, 8, seed=1)
    assert float(mean_embedding_loss(real, real)) == 0.0
    expected = ((real.mean(0) - syn.mean(0)) ** 2).sum()
    assert float(mean_embedding_loss(real, syn)) == pytest.approx(float(expected)) and float(expected) > 0


def test_datadam_loss_is_zero_for_identical_batches_and_positive_otherwise() -> None:
    relus = (randn(6, 4, 8, 8).relu(), randn(6, 4, 4, 4, seed=1).relu(), randn(6, 4, 2, 2, seed=2).relu())
    out = randn(6, 16, seed=3)
    assert float(datadam_loss(relus, relus, out, out, power=4, task_balance=0.01)) == 0.0
    other = tuple(r.flip(0)[:3] * 1.5 for r in relus)
    assert float(datadam_loss(relus, other, out, out[:3] + 1, power=4, task_balance=0.01)) > 0


def test_datadam_matches_attention_on_all_blocks_but_the_last_and_scales_by_100() -> None:
    relus = (randn(5, 3, 4, 4).relu(), randn(5, 3, 2, 2, seed=1).relu())
    syn = (randn(2, 3, 4, 4, seed=2).relu(), randn(2, 3, 2, 2, seed=3).relu())
    out, out_s = randn(5, 6, seed=4), randn(2, 6, seed=5)
    # The last block's attention does not count: changing it changes nothing.
    changed = (syn[0], syn[1] * 7)
    a = datadam_loss(relus, syn, out, out_s, power=4, task_balance=0.01)
    assert float(a) == pytest.approx(float(datadam_loss(relus, changed, out, out_s, power=4, task_balance=0.01)))
    sam = ((attention_map(relus[0], 4).mean(0) - attention_map(syn[0], 4).mean(0)) ** 2).sum()
    mmd = ((out.mean(0) - out_s.mean(0)) ** 2).sum()
    assert float(a) == pytest.approx(float(100 * (sam + 0.01 * mmd)), rel=1e-5)


def test_attention_map_is_the_normalised_channel_sum_of_powers() -> None:
    f = randn(2, 3, 4, 4)
    a = f.abs().pow(4).sum(1).flatten(1)
    assert torch.allclose(attention_map(f, 4), a / a.norm(dim=1, keepdim=True))
    assert torch.allclose(attention_map(f, 4).norm(dim=1), torch.ones(2))


def test_local_covariance_is_the_batch_average_of_d_by_hw_outer_products() -> None:
    final = randn(5, 3, 2, 2)
    f = final.flatten(2)
    mean = f.mean(0)
    expected = sum((f[i] - mean) @ (f[i] - mean).T for i in range(5)) / 5
    assert torch.allclose(local_covariance(final), expected, atol=1e-6)


def test_iid_loss_is_zero_for_identical_batches_and_positive_otherwise() -> None:
    final = randn(6, 4, 2, 2)
    same_g = randn(1, 8, seed=1).repeat(6, 1)  # the centralisation term vanishes on one point
    assert float(iid_loss(final, final, same_g, cm_weight=0.01, cc_weight=0.05)) == 0.0
    assert float(iid_loss(final, final[:3] * 2, same_g[:3], cm_weight=0.01, cc_weight=0.05)) > 0
    g = randn(4, 8, seed=2)
    assert float(centralization_loss(g)) == pytest.approx(float(((g - g.mean(0)) ** 2).sum()))
    assert float(iid_loss(final, final, g, 0.01, 0.05)) == pytest.approx(0.05 * float(centralization_loss(g)))


def test_covariance_distance_is_the_frobenius_distance_of_unbiased_covariances() -> None:
    a, b = randn(40, 64), randn(7, 64, seed=1) * 1.5 + 0.3
    expected = (torch.cov(a.double().T) - torch.cov(b.double().T)).pow(2).sum()
    assert float(covariance_distance(a, b)) == pytest.approx(float(expected), rel=1e-5)
    assert float(covariance_distance(a, a)) == pytest.approx(0.0, abs=1e-6)


def test_dsdm_loss_is_zero_for_identical_batches_and_adds_the_history_term() -> None:
    real = randn(30, 16)
    assert float(dsdm_loss(real, real, None, cov_weight=50, history_weight=0.2)) == pytest.approx(0.0, abs=1e-6)
    assert float(dsdm_loss(real, real, real.mean(0), 50, 0.2)) == pytest.approx(0.0, abs=1e-6)
    syn = randn(4, 16, seed=1)
    proto = ((real.mean(0) - syn.mean(0)) ** 2).sum()
    cov = (torch.cov(syn.double().T) - torch.cov(real.double().T)).pow(2).sum()
    h = randn(16, seed=2)
    hist = ((syn.mean(0) - h) ** 2).sum()
    assert float(dsdm_loss(real, syn, None, 50, 0.2)) == pytest.approx(float(proto + 50 / 16 * cov), rel=1e-5)
    assert float(dsdm_loss(real, syn, h, 50, 0.2)) == pytest.approx(float(proto + 50 / 16 * cov + 0.2 / 16 * hist),
                                                                   rel=1e-5)


def test_idm_loss_adds_the_accuracy_weighted_cross_entropy() -> None:
    f = randn(8, 12)
    logits = randn(3, 5, seed=1)
    assert float(idm_loss(f, f, logits, 2, weight=0.0)) == 0.0  # an untrained network: no CE
    ce = F.cross_entropy(logits, torch.full((3,), 2))
    assert float(idm_loss(f, f[:3], logits, 2, weight=25.0)) == pytest.approx(
        float(mean_embedding_loss(f, f[:3]) + 25 * ce), rel=1e-6)


def test_decode_tiles_upsamples_each_tile_tile_major() -> None:
    x = randn(3, 1, 8, 8)
    out = decode_tiles(x, 2)
    assert out.shape == (12, 1, 8, 8)
    tile_10 = F.interpolate(x[:, :, 4:, :4], size=(8, 8), mode="bilinear", align_corners=False)
    assert torch.allclose(out[6:9], tile_10)  # tile t = i·2 + j = 2 holds rows 2·3 … 3·3 − 1
    assert decode_tiles(x, 1) is x


def test_ipc_and_floats_by_hand() -> None:
    digits = ImageShape(1, 16, 16)  # 256 floats an image
    r = class_budget(100, digits, 10)
    # 100·256 = 25,600 floats; 10 classes of 256-float images: IPC = 25,600 / 2,560 = 10.
    assert (r.per_class, r.m, r.allowed, r.used) == (10, 100, 25_600, 25_600)
    assert r.components == {"images": 25_600, "labels": 0} and r.convention == "raw-images"
    # Labels counted: 257 floats an image, IPC = ⌊25,600 / 2,570⌋ = 9; 90·256 + 90 = 23,130.
    c = class_budget(100, digits, 10, count_targets=True)
    assert (c.per_class, c.m, c.used) == (9, 90, 23_130) and c.components["labels"] == 90
    assert c.convention == "raw-images+targets"
    cifar = ImageShape(3, 32, 32)
    assert class_budget(100, cifar, 100).per_class == 1  # CIFAR-100, N = 100: IPC 1
    assert class_budget(1000, cifar, 100).per_class == 10
    assert class_budget(19, digits, 10).per_class == 1  # ⌊19·256 / 2,560⌋ = 1


def test_a_budget_below_one_image_per_class_is_refused() -> None:
    with pytest.raises(BudgetError, match=r"less than one image for each of the 10 classes; use N ≥ 10") as e:
        class_budget(9, ImageShape(1, 16, 16), 10)
    assert e.value.option == "budget"
