"""Budget arithmetic: DESIGN.md §7's worked example and other Table-5 presets, by hand."""

from __future__ import annotations

import pytest

from ssdd_cli.budget import ImageShape, approx_floats, raw_budget, ssdd_budget
from ssdd_cli.errors import BudgetError

CIFAR = ImageShape(3, 32, 32)
TINY = ImageShape(3, 64, 64)


def test_worked_example_cifar100_n100() -> None:
    # 100·3·32·32 = 307,200 allowed; B^x = 200·3·16·16 = 153,600; B^y = 200·512 = 102,400;
    # Q_a = 3·(200·4 + 4 + 4·200 + 200) = 3·1,804 = 5,412; left 45,788; m = ⌊45,788/400⌋ = 114.
    r = ssdd_budget(100, 200, 200, CIFAR, scale=2, feature_dim=512, hidden=4, A=3)
    assert r.m == 114
    assert r.components == {"B^x": 153_600, "C^x": 22_800, "B^y": 102_400, "C^y": 22_800, "Q_a": 5_412}
    assert r.used == 307_012 and r.allowed == 307_200 and r.spare == 188


def test_cifar100_n25() -> None:
    # 25·3072 = 76,800; B^x = 50·768 = 38,400; B^y = 50·512 = 25,600;
    # Q_a = 3·(50·4 + 4 + 4·50 + 50) = 3·454 = 1,362; left 11,438; m = ⌊11,438/100⌋ = 114.
    r = ssdd_budget(25, 50, 50, CIFAR)
    assert r.components["Q_a"] == 1_362
    assert r.m == 114


def test_cifar100_n1000() -> None:
    # 1000·3072 = 3,072,000; B^x = 500·768 = 384,000; B^y = 500·512 = 256,000;
    # Q_a = 3·(500·4 + 4 + 2000 + 500) = 3·4,504 = 13,512; left 2,418,488; m = ⌊2,418,488/1000⌋ = 2,418.
    r = ssdd_budget(1000, 500, 500, CIFAR)
    assert r.m == 2_418


def test_cifar100_n5000_unequal_bases() -> None:
    # 5000·3072 = 15,360,000; B^x = 700·768 = 537,600; B^y = 500·512 = 256,000; Q_a = 13,512;
    # left 14,552,888; m = ⌊14,552,888/1200⌋ = 12,127.
    r = ssdd_budget(5000, 700, 500, CIFAR)
    assert r.m == 12_127


def test_tinyimagenet_n200_quarter_scale_hidden16() -> None:
    # 200·3·64·64 = 2,457,600; B^x = 400·3·16·16 = 307,200; B^y = 400·512 = 204,800;
    # Q_a = 3·(400·16 + 16 + 16·400 + 400) = 3·13,216 = 39,648; left 1,905,952; m = ⌊1,905,952/800⌋ = 2,382.
    r = ssdd_budget(200, 400, 400, TINY, scale=4, hidden=16)
    assert r.components["Q_a"] == 39_648
    assert r.m == 2_382


def test_no_augmentation_has_no_approx_networks() -> None:
    # A = 0: 307,200 − 153,600 − 102,400 = 51,200; m = 128.
    r = ssdd_budget(100, 200, 200, CIFAR, A=0)
    assert r.components["Q_a"] == 0 and r.m == 128


def test_approx_floats_formula() -> None:
    assert approx_floats(V=10, hidden=2, A=1) == 10 * 2 + 2 + 2 * 10 + 10


def test_impossible_budget_says_by_how_much_and_what_fits() -> None:
    with pytest.raises(BudgetError) as e:
        ssdd_budget(10, 200, 200, CIFAR)
    msg = str(e.value)
    # fixed 261,412 + 400 for one image − 30,720 allowed = 231,092 over.
    assert "231,092" in msg and "N ≥ 86" in msg and "U = V ≤" in msg


def test_bases_larger_than_their_dimension_are_refused() -> None:
    with pytest.raises(BudgetError, match="U ≤ 768"):
        ssdd_budget(1000, 800, 100, CIFAR)
    with pytest.raises(BudgetError, match="V ≤ 512"):
        ssdd_budget(1000, 100, 600, CIFAR)


def test_raw_images_convention() -> None:
    # No targets counted: ⌊307,200 / 3,072⌋ = 100 images.
    assert raw_budget(100, CIFAR, target_floats=512).m == 100
    # Targets counted: ⌊307,200 / (3,072 + 512)⌋ = ⌊85.71⌋ = 85.
    r = raw_budget(100, CIFAR, count_targets=True, target_floats=512)
    assert r.m == 85 and r.components == {"images": 85 * 3072, "targets": 85 * 512}
    # Labels counted as one float each: ⌊307,200 / 3,073⌋ = 99.
    assert raw_budget(100, CIFAR, count_targets=True, target_floats=1).m == 99
