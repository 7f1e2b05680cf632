"""Search strategy ``brute``: every variant, each with a walk up its load levels.

A walk stops early, as Model Analyzer users expect, when raising the load no longer buys
throughput: the last two points gained less than 5%, or less than their measured noise,
over the best before them. A failed point ends its walk too (more load will not make it
succeed).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from tsweep.plugin import hookimpl
from tsweep.records import ConfigSpace, Measurement, SearchGoal, Trial, noise_margin


def walk_finished(points: Sequence[Measurement], min_gain: float) -> bool:
    """True when a load walk (points in load order) should not go higher.

    The last two points must beat the best before them by more than ``min_gain`` (5%, as
    Model Analyzer users expect) *and* by more than the two points' combined noise: on a
    noisy machine a 6% "gain" between points that each wobble by 5% is not a gain.
    """
    if any(p.status == "failed" for p in points):
        return True
    if len(points) < 3:
        return False
    before = max(points[:-2], key=lambda p: p.throughput or 0.0)
    recent = max(points[-2:], key=lambda p: p.throughput or 0.0)
    return (recent.throughput or 0.0) < (before.throughput or 0.0) * (1.0 + noise_margin(before, recent, min_gain))


def next_in_walk(space: ConfigSpace, variant, by_key: Dict[str, Measurement], min_gain: float) -> Tuple[Optional[Trial], List[Measurement]]:
    """The next unmeasured trial of ``variant``'s load walks (one per client batch size), or
    None and the walks' points when every walk is finished."""
    points: List[Measurement] = []
    for batch in space.batch_sizes:
        walked: List[Measurement] = []
        for load in space.load_levels:
            trial = Trial(variant, load, batch)
            done = by_key.get(trial.key)
            if done is None:
                if walk_finished(walked, min_gain):
                    break
                return trial, []
            walked.append(done)
        points.extend(walked)
    return None, points


class BruteSearch:
    def __init__(self, space: ConfigSpace, goal: SearchGoal, min_gain: float = 0.05):
        self.space = space
        self.min_gain = min_gain

    def propose(self, history: Sequence[Measurement]) -> List[Trial]:
        by_key: Dict[str, Measurement] = {m.key: m for m in history}
        for variant in self.space.variants:
            trial, _ = next_in_walk(self.space, variant, by_key, self.min_gain)
            if trial:
                return [trial]
        return []

    def planned(self) -> int:
        """Upper bound of trials, for progress display."""
        return len(self.space.variants) * len(self.space.batch_sizes) * len(self.space.load_levels)


@hookimpl
def tsweep_search_strategies():
    return {"brute": BruteSearch}
