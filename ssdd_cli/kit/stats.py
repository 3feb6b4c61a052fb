"""Paired differences between two methods run on the same seeds, with their 95% interval.

Two rows of a comparison that share a seed share their initial set and their network's
initialisation, so their difference is measured per seed and the seeds' variation cancels: the
paired t interval on the differences d_s = a_s − b_s,

    mean(d) ± t_{1−α/2, n−1} · sd(d) / √n      (sd with n − 1 degrees of freedom),

is what says whether a difference is real (the interval excludes 0), not "above one std".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

LEVEL = 0.95


@dataclass(frozen=True)
class PairedDifference:
    """mean(a − b) over n paired seeds and its two-sided interval [low, high] at `level`.

    With one pair the interval is unbounded (−inf, inf): one seed says nothing about the spread.
    """

    mean: float
    low: float
    high: float
    n: int
    level: float = LEVEL

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0: the difference is real at `level`."""
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict[str, float | int | bool]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n, "level": self.level,
                "excludes_zero": self.excludes_zero}


def t_quantile(p: float, dof: int) -> float:
    """The p-quantile of Student's t with `dof` degrees of freedom."""
    from scipy.stats import t  # scipy comes with scikit-learn; imported here to keep this module light

    return float(t.ppf(p, dof))


def paired_difference(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> PairedDifference:
    """The paired t interval of mean(a − b); a[i] and b[i] come from the same seed.

    a, b: (n,) one value per seed, in the same seed order, n ≥ 1.
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"paired values need the same non-zero count, got {len(a)} and {len(b)}")
    d = [x - y for x, y in zip(a, b, strict=True)]
    mean = statistics.fmean(d)
    if len(d) == 1:
        return PairedDifference(mean, -math.inf, math.inf, 1, level)
    half = t_quantile(0.5 + level / 2, len(d) - 1) * statistics.stdev(d) / math.sqrt(len(d))
    return PairedDifference(mean, mean - half, mean + half, len(d), level)


def paired_by_seed(a: Mapping[int, float], b: Mapping[int, float],
                   level: float = LEVEL) -> PairedDifference | None:
    """`paired_difference` over the seeds both rows have (None when they share none)."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    return paired_difference([a[s] for s in seeds], [b[s] for s in seeds], level)
