"""Confidence intervals for a point's figures: batch means over its windows, and looks combined.

Consecutive windows of one point are not independent draws: on a shared machine a slow
second tends to be followed by another, so the textbook interval (standard error of n window
values) is too narrow. Batch means fixes that: adjacent windows are grouped into batches,
larger while the batches still look correlated (lag-1 autocorrelation of the batch values
above :data:`MAX_LAG1`), and the interval is Student's t over the batch values. A statistic
that does not average (a percentile) is computed per batch from the batch's own data
("sectioning"), so the p99 interval comes from p99s of merged histograms, not from a mean
of per-window p99s.

Several looks at one point (measured at different times) combine by inverse-variance
weighting: the combined interval is never wider than the narrowest look's, and each look
narrows it. Whether the looks disagree more than their intervals allow (the machine's
mood changed between them) is the :class:`tsweep.judge.Judge`'s business, not this module's.

Everything here is pure: numbers in, numbers out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, TypeVar

T = TypeVar("T")

#: The level of every interval tsweep reports (two-sided).
CONFIDENCE = 0.95
#: Fewest batches an interval is built from (two degrees of freedom).
MIN_BATCHES = 3
#: Batches whose lag-1 autocorrelation exceeds this are merged pairwise (if enough remain).
MAX_LAG1 = 0.2

# Two-sided 95% quantiles of Student's t by degrees of freedom; 1/df interpolation between.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042, 60: 2.000, 120: 1.980}  # fmt: skip
_Z95 = 1.960


def t95(df: int) -> float:
    """The two-sided 95% quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        return math.inf
    if df in _T95:
        return _T95[df]
    known = sorted(_T95)
    if df > known[-1]:
        lo_df, lo_t, hi_inv, hi_t = known[-1], _T95[known[-1]], 0.0, _Z95
    else:
        lo_df = max(k for k in known if k < df)
        hi_df = min(k for k in known if k > df)
        lo_t, hi_inv, hi_t = _T95[lo_df], 1.0 / hi_df, _T95[hi_df]
    # t is close to linear in 1/df
    frac = (1.0 / lo_df - 1.0 / df) / (1.0 / lo_df - hi_inv)
    return lo_t + frac * (hi_t - lo_t)


@dataclass(frozen=True)
class Interval:
    """An estimate and the half-width of its 95% confidence interval (same unit).

    ``half_width`` is ``inf`` when there is too little data to say anything."""

    value: float
    half_width: float

    @property
    def low(self) -> float:
        return self.value - self.half_width

    @property
    def high(self) -> float:
        return self.value + self.half_width

    @property
    def relative(self) -> float:
        """Half-width over the estimate (inf for an estimate of 0 with any uncertainty)."""
        if self.value == 0:
            return 0.0 if self.half_width == 0 else math.inf
        return self.half_width / abs(self.value)


def lag1(values: Sequence[float]) -> float:
    """Lag-1 autocorrelation of ``values`` (0 for fewer than 3 values or no variance)."""
    n = len(values)
    if n < 3:
        return 0.0
    mean = sum(values) / n
    dev = [v - mean for v in values]
    denominator = sum(d * d for d in dev)
    if denominator == 0:
        return 0.0
    return sum(dev[i] * dev[i + 1] for i in range(n - 1)) / denominator


def batches(items: Sequence[T], size: int) -> List[Sequence[T]]:
    """Adjacent groups of ``size`` items; a remainder is merged into the first group, so no
    window is left out and the latest batches (the machine as it is now) stay whole."""
    count = len(items) // size
    if count == 0:
        return [items]
    extra = len(items) - count * size
    groups = [items[: size + extra]]
    groups += [items[i : i + size] for i in range(size + extra, len(items), size)]
    return groups


def batch_means(items: Sequence[T], statistic: Callable[[Sequence[T]], float], estimate: Optional[float] = None) -> Interval:
    """The 95% interval of ``statistic`` over ``items`` (windows in time order).

    ``statistic`` maps a group of items to one figure (throughput of the group, p99 of the
    group's merged histogram); the estimate is ``statistic(items)`` unless given. Batches
    double in size while their values' lag-1 autocorrelation exceeds :data:`MAX_LAG1` and
    at least :data:`MIN_BATCHES` would remain. Fewer than two items: an infinite interval."""
    value = statistic(items) if estimate is None else estimate
    if len(items) < 2:
        return Interval(value, math.inf)
    size = 1
    values = [statistic(b) for b in batches(items, size)]
    while len(items) // (size * 2) >= MIN_BATCHES and lag1(values) > MAX_LAG1:
        size *= 2
        values = [statistic(b) for b in batches(items, size)]
    k = len(values)
    mean = sum(values) / k
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (k - 1))
    return Interval(value, t95(k - 1) * sd / math.sqrt(k))


def of_values(values: Sequence[float]) -> Interval:
    """:func:`batch_means` of plain per-window values whose statistic is their mean (for
    rows that kept only per-window figures, such as stores written before intervals)."""
    return batch_means(list(values), lambda group: sum(group) / len(group))


def combine(looks: Sequence[Interval]) -> Interval:
    """Several looks at the same quantity as one: inverse-variance weighted.

    Looks with an infinite interval carry no weight (their plain mean is used when every
    look is like that). A look with a zero-width interval dominates. The result is never
    wider than the narrowest look, and adding a look never widens it."""
    if not looks:
        raise ValueError("combine() needs at least one look")
    finite = [i for i in looks if math.isfinite(i.half_width)]
    if not finite:
        return Interval(sum(i.value for i in looks) / len(looks), math.inf)
    exact = [i for i in finite if i.half_width**2 == 0.0]  # zero, or too small to square
    if exact:
        return Interval(sum(i.value for i in exact) / len(exact), 0.0)
    weights = [1.0 / (i.half_width**2) for i in finite]
    total = sum(weights)
    value = sum(w * i.value for w, i in zip(weights, finite)) / total
    return Interval(value, 1.0 / math.sqrt(total))
