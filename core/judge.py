"""The Judge: the one place that decides "meets the goal", "beats" and "tied".

Every search strategy, the final race and the ranking ask the Judge; none of them compares
two throughputs or a p99 and a budget by itself. The Judge decides from each point's 95%
confidence intervals (:mod:`tsweep.intervals`, stored with the point), widened by the
machine's drift between looks:

* A point's windows say how well the point is known *while it was measured*. A machine
  whose speed wanders over minutes (a shared VM, a GPU another job uses) moves the whole
  point between one look and the next, which no window-level interval can see. When some
  points have been looked at more than once, the Judge estimates that drift from how much
  their looks disagree beyond their own intervals, and adds it (in quadrature, divided by
  the number of looks) to every point's interval. With no repeated points it adds nothing.

Verdicts:

* :meth:`Judge.meets`: True when the goal (latency budget, minimum throughput) holds even at
  the unfavourable end of the intervals, False when it fails even at the favourable end,
  None when the interval straddles the bound (more looks can tell).
* :meth:`Judge.decided`: whether a point in flight can stop early, because no decision it
  feeds can change with more windows (it misses the goal, or surely loses to the best).
* :meth:`Judge.compare`: ``beats`` / ``loses`` when the difference exceeds the uncertainty
  of the difference (and the ``by`` gain a search step may ask for, e.g. Model Analyzer's
  5%); ``tied`` when even the ends of the difference's interval are within
  :data:`TIE_MARGIN`: more looks would not make either a better choice; otherwise
  ``unsure``.

Properties (tested): a point never beats itself; beating is antisymmetric; a point looked
at more often never gets a wider interval.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from tsweep import repeats
from tsweep.intervals import Interval
from tsweep.records import Constraint, Measurement, SearchGoal

#: Two configs whose throughputs differ by less than this (relative, at 95% confidence) are tied.
TIE_MARGIN = 0.03
#: Drift is estimated only from at least this many points with two or more looks: one pair
#: of looks says almost nothing about a machine's variance (one degree of freedom).
MIN_REPEATED_POINTS = 3
#: 95% two-sided normal quantile: turns a standard deviation into a half-width.
_Z = 1.96

BEATS, LOSES, TIED, UNSURE = "beats", "loses", "tied", "unsure"

#: Metrics that carry an interval, and the Measurement field holding its half-width.
_INTERVALS = {"throughput": "throughput_ci", "latency_p99_ms": "latency_p99_ci_ms"}


def looks(p: Measurement) -> int:
    """How many looks a (possibly combined) point stands for."""
    return max(1, p.looks)


@dataclass(frozen=True)
class Judge:
    """Decisions under uncertainty for one model's points (see the module docstring).

    ``drift`` is the relative standard deviation of one look's value from look to look,
    beyond its own interval (0: none seen)."""

    goal: SearchGoal = SearchGoal()
    drift: float = 0.0
    tie_margin: float = TIE_MARGIN

    @classmethod
    def from_history(cls, goal: SearchGoal, history: Sequence[Measurement]) -> "Judge":
        """A Judge whose drift is estimated from the repeated points in ``history``."""
        return cls(goal, estimate_drift(history))

    # -- intervals ----------------------------------------------------------------------

    def interval(self, p: Measurement, metric: str = "throughput") -> Interval:
        """``p``'s figure for ``metric`` with its 95% interval, drift included. A metric
        without an interval (collectors' figures) comes back exact."""
        value = p.value(metric)
        if value is None:
            return Interval(math.nan, math.inf)
        field = _INTERVALS.get(metric)
        if field is None:
            return Interval(value, 0.0)
        own = getattr(p, field) or 0.0  # None: a row that records no interval counts as exact
        drift = _Z * self.drift * abs(value) / math.sqrt(looks(p))
        return Interval(value, math.sqrt(own**2 + drift**2))

    # -- the goal -----------------------------------------------------------------------

    def meets(self, p: Measurement) -> Optional[bool]:
        """Does ``p`` meet the goal? True/False when its intervals say so, None when they
        straddle a bound. A failed point or one without throughput never does."""
        if p.status == "failed" or not p.throughput:
            return False
        verdicts = [self.within(p, c) for c in goal_constraints(self.goal)]
        if any(v is False for v in verdicts):
            return False
        return None if any(v is None for v in verdicts) else True

    def within(self, p: Measurement, c: Constraint) -> Optional[bool]:
        """Is ``p``'s ``c.metric`` inside the constraint's bounds? None when unsure."""
        at = self.interval(p, c.metric)
        if math.isnan(at.value):
            return False
        low_ok = c.min is None or at.low >= c.min
        high_ok = c.max is None or at.high <= c.max
        if low_ok and high_ok:
            return True
        if (c.min is not None and at.high < c.min) or (c.max is not None and at.low > c.max):
            return False
        return None

    def miss(self, p: Measurement, c: Constraint) -> float:
        """How far ``p`` misses ``c`` (relative, 0 when surely inside): a figure inside the
        bound only by luck (its interval straddles it) misses by its unfavourable end."""
        if self.within(p, c) is True:
            return 0.0
        at = self.interval(p, c.metric)
        worst = at.high if c.max is not None and at.high > c.max else at.low
        return c.miss(worst if math.isfinite(worst) else None)

    # -- comparisons --------------------------------------------------------------------

    def difference(self, a: Measurement, b: Measurement, metric: str = "throughput") -> Interval:
        """``a - b`` for ``metric`` with the 95% interval of the difference."""
        ia, ib = self.interval(a, metric), self.interval(b, metric)
        return Interval(ia.value - ib.value, math.sqrt(ia.half_width**2 + ib.half_width**2))

    def compare(self, a: Measurement, b: Measurement, by: float = 0.0, metric: str = "throughput", higher_is_better: bool = True) -> str:
        """``beats`` / ``loses`` / ``tied`` / ``unsure`` for ``a`` against ``b``.

        ``tied`` comes first: the difference's whole interval lies within :attr:`tie_margin`
        of the larger figure (one may be surely ahead, but by too little to matter). Else
        ``beats`` needs the difference to exceed both its own uncertainty and ``by`` times the
        smaller figure (a search step's minimum gain)."""
        d = self.difference(a, b, metric)
        if not higher_is_better:
            d = Interval(-d.value, d.half_width)
        if math.isnan(d.value):
            return UNSURE
        sizes = (abs(self.interval(a, metric).value), abs(self.interval(b, metric).value))
        if abs(d.value) + d.half_width <= self.tie_margin * max(sizes):
            return TIED  # even if one is surely ahead, it is by less than the tie margin
        need = max(d.half_width, by * min(sizes))
        if d.value > need:
            return BEATS
        if -d.value > need:
            return LOSES
        return UNSURE

    def beats(self, a: Measurement, b: Measurement, by: float = 0.0) -> bool:
        """``a``'s throughput is surely higher than ``b``'s (and by more than ``by``)."""
        return self.compare(a, b, by) == BEATS

    def falls(self, a: Measurement, b: Measurement, by: float = 0.0) -> bool:
        """``a``'s throughput is surely lower than ``b``'s (and by more than ``by``)."""
        return self.compare(a, b, by) == LOSES

    def decided(self, p: Measurement, rival: Optional[Measurement]) -> bool:
        """Is enough known of ``p`` (a point still being measured) for every decision it feeds?

        True when it surely misses the goal (it cannot count, so its throughput needs no
        precision), or when its goal verdict is settled and its throughput surely loses to
        ``rival`` (the best other point surely meeting the goal): it cannot win, so more
        windows would narrow its interval without changing which way any comparison goes.
        A point that may still win is never decided here: it earns its precision."""
        verdict = self.meets(p)
        if verdict is False:
            return True
        return verdict is True and rival is not None and self.compare(p, rival) == LOSES

    def could_reach(self, reach: float, best: Measurement, by: float = 0.0) -> Optional[bool]:
        """Could a config whose throughput is at most ``reach`` beat ``best`` by ``by``?
        False when not even against the low end of ``best``'s interval, True when even
        against its high end, None in between (a closer look at ``best`` can tell)."""
        at = self.interval(best)
        if reach <= at.low * (1.0 + by):
            return False
        if reach > at.high * (1.0 + by):
            return True
        return None


def best_rival(points: Sequence[Measurement], judge: Judge, point: str) -> Optional[Measurement]:
    """The highest-throughput point among ``points`` (looks combined) that surely meets the
    goal, other than ``point`` (the point being measured: a look never races itself)."""
    meeting = [m for m in repeats.merge(points) if m.point != point and judge.meets(m) is True]
    return max(meeting, key=lambda m: m.throughput or 0.0, default=None)


def goal_constraints(goal: SearchGoal) -> List[Constraint]:
    """The goal as constraints: the latency (p99, or the ``percentile`` asked for) at most the
    budget, a streamed model's token latency at most its bound, throughput at least the minimum."""
    found = []
    if goal.latency_budget_ms is not None:
        found.append(Constraint(goal.latency_metric, max=goal.latency_budget_ms))
    if goal.token_metric and goal.token_budget_ms is not None:
        found.append(Constraint(goal.token_metric, max=goal.token_budget_ms))
    if goal.min_throughput is not None:
        found.append(Constraint("throughput", min=goal.min_throughput))
    return found


def estimate_drift(history: Sequence[Measurement]) -> float:
    """The look-to-look drift of throughput beyond each look's own interval, relative.

    For every point looked at more than once: the variance of its looks' throughputs minus
    the variance their own intervals explain, over the squared mean. The median over such
    points (robust to one point that met a hiccup); 0 while fewer than
    :data:`MIN_REPEATED_POINTS` points have two usable looks."""
    groups: Dict[str, List[Measurement]] = {}
    for m in history:
        if m.status != "failed" and m.throughput:
            groups.setdefault(m.point, []).append(m)
    excess = []
    for rows in groups.values():
        if len(rows) < 2:
            continue
        values = [m.throughput for m in rows]
        mean = sum(values) / len(values)
        between = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
        own = [(m.throughput_ci or 0.0) / _Z for m in rows if m.throughput_ci is not None and math.isfinite(m.throughput_ci)]
        within = sum(s * s for s in own) / len(own) if own else 0.0
        excess.append(max(0.0, between - within) / (mean * mean))
    if len(excess) < MIN_REPEATED_POINTS:
        return 0.0
    excess.sort()
    return math.sqrt(excess[len(excess) // 2])

