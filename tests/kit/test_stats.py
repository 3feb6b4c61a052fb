"""The paired interval against a hand-computed example."""

from __future__ import annotations

import math

import pytest

from ssdd_cli.kit.stats import paired_by_seed, paired_difference, t_quantile


def test_the_paired_interval_matches_a_hand_computed_example() -> None:
    # d = (1, 2, 2): mean 5/3, sd √(1/3), se 1/3, t(0.975, 2) = 4.302653 → 5/3 ± 1.434218
    diff = paired_difference([1.0, 2.0, 3.0], [0.0, 0.0, 1.0])
    assert diff.mean == pytest.approx(5 / 3)
    assert diff.low == pytest.approx(0.232449, abs=1e-6)
    assert diff.high == pytest.approx(3.100884, abs=1e-6)
    assert diff.n == 3 and diff.excludes_zero


def test_an_interval_across_zero_is_not_a_difference() -> None:
    diff = paired_difference([1.0, 0.0, 2.0], [0.0, 1.0, 1.0])  # d = (1, −1, 1)
    assert diff.low < 0 < diff.high and not diff.excludes_zero


def test_pairing_removes_the_seeds_shared_variation() -> None:
    # The seeds differ by 10 points, the rows by 1 on every seed: unpaired this is noise,
    # paired it is an exact difference of 1.
    a, b = [60.0, 70.0, 80.0], [59.0, 69.0, 79.0]
    diff = paired_difference(a, b)
    assert diff.low == pytest.approx(1.0) and diff.high == pytest.approx(1.0)


def test_one_seed_gives_an_unbounded_interval() -> None:
    diff = paired_difference([2.0], [1.0])
    assert diff.mean == 1.0 and diff.low == -math.inf and diff.high == math.inf
    assert not diff.excludes_zero


def test_rows_pair_on_the_seeds_they_share() -> None:
    diff = paired_by_seed({0: 3.0, 1: 4.0, 2: 9.0}, {1: 3.0, 2: 8.0, 5: 0.0})
    assert diff is not None and diff.n == 2 and diff.mean == pytest.approx(1.0)
    assert paired_by_seed({0: 1.0}, {1: 1.0}) is None


def test_unequal_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="same non-zero count"):
        paired_difference([1.0, 2.0], [1.0])


def test_t_quantile_known_values() -> None:
    assert t_quantile(0.975, 4) == pytest.approx(2.776445, abs=1e-6)
    assert t_quantile(0.975, 1000) == pytest.approx(1.962339, abs=1e-6)
