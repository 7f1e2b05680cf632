"""The final race: look again, interleaved, only where the choice is still open.

After a search, the winner may be separated from a runner-up by less than the uncertainty,
or sit so close to the latency budget that its p99 interval straddles it. Measuring
everything again would be waste; measuring the close ones back to back would mostly measure
the machine's mood of that minute. So the race takes the contenders (the leader and the
points the Judge cannot yet rank below it) and measures each once more per round, in turn
(A B C, A B C, ...), so a slow minute hits them alike. After every round the Judge decides
again with the combined looks; a contender leaves the race as soon as the leader beats it,
it is tied with the leader (the difference surely below the tie margin), or it surely
misses the goal. The race ends when nobody is left to separate, or when every contender
has had ``max_looks`` looks: the verdict then says which configs could not be told apart.

Like the search strategies, the race keeps no state: :func:`next_looks` works from the
stored rows, so a run killed mid-race resumes where it stopped.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

from tsweep import repeats
from tsweep.judge import BEATS, TIED, UNSURE, Judge
from tsweep.records import Measurement, RankedConfig, Trial, Variant


def contenders(ranking: Sequence[RankedConfig], points: Sequence[Measurement], judge: Judge, top: int) -> List[Measurement]:
    """The points that need another look, leader first (combined looks; at most ``top``).

    The leader is the ranking's winner when it meets the goal. A challenger is, per other
    variant, its highest-throughput point that may still meet the goal, unless the leader
    surely beats it or is tied with it. The leader itself needs looks only while some
    challenger's throughput is undecided against it (a challenger that surely beats it and
    waits only for its p99 to settle against the budget is decided by its own looks).
    With no leader (nothing surely meets the goal yet), the challengers are the points whose
    goal is still undecided."""
    leader: Optional[Measurement] = ranking[0].best if ranking and ranking[0].passes else None
    best_per_variant: Dict[str, Measurement] = {}
    for p in points:
        if judge.meets(p) is False or (leader is not None and p.variant_digest == leader.variant_digest):
            continue  # the race chooses between configs: the leader's own other loads are not rivals
        held = best_per_variant.get(p.variant_digest)
        if held is None or (p.throughput or 0.0) > (held.throughput or 0.0):
            best_per_variant[p.variant_digest] = p
    verdicts = {d: (judge.compare(leader, p) if leader is not None else UNSURE) for d, p in best_per_variant.items()}
    challengers = [p for d, p in best_per_variant.items() if verdicts[d] not in (BEATS, TIED)]
    challengers.sort(key=lambda p: -(p.throughput or 0.0))
    leader_needed = leader is not None and any(verdicts[p.variant_digest] == UNSURE for p in challengers)
    return (([leader] if leader_needed else []) + challengers)[:top]


def next_looks(ranking: Sequence[RankedConfig], history: Sequence[Measurement], judge: Judge, top: int, max_looks: int, variants: Mapping[str, Variant]) -> List[Trial]:
    """One round of the race: one more look at each contender with fewer than ``max_looks``
    looks, in the contenders' order; empty when the race is over.

    ``variants`` maps a variant digest to the Variant to load (stored rows may carry a twin's
    name); ``history`` is every stored row of the model."""
    looks_of: Dict[str, int] = {}
    for m in history:
        looks_of[m.point] = max(looks_of.get(m.point, 0), m.repeat + 1)
    trials = []
    for p in contenders(ranking, repeats.merge(history), judge, top):
        taken = looks_of.get(p.point, 1)
        if taken < max_looks and p.variant_digest in variants:
            trials.append(Trial(variants[p.variant_digest], p.load, p.batch_size, repeat=taken))
    return trials
