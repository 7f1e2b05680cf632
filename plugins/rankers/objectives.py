"""Ranker ``objectives``: weighted objectives under constraints, Model Analyzer style.

Each variant is represented by its best load point: the best-scoring point that meets every
constraint, or, if none does, the point that misses them least. Whether a point meets a
constraint is the Judge's call: a p99 inside the budget only by luck (its interval
straddles the budget) does not meet it. Variants that meet the
constraints rank above those that do not; failing ones are ordered by how far they miss.
Scores weight each objective metric normalised to the best value seen, so a weight of 1 on
throughput and 1 on p99 latency means "equally important", whatever the units.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Mapping, Sequence

from tsweep.judge import Judge
from tsweep.plugin import hookimpl
from tsweep.records import Constraint, Measurement, MetricInfo, RankedConfig


def _normalisers(points: Sequence[Measurement], objectives: Mapping[str, float], metrics: Mapping[str, MetricInfo]):
    best = {}
    for metric in objectives:
        values = [v for v in (p.value(metric) for p in points) if v is not None and v > 0]
        if values:
            best[metric] = max(values) if metrics[metric].higher_is_better else min(values)
    return best


def score(point: Measurement, objectives: Mapping[str, float], metrics: Mapping[str, MetricInfo], best: Mapping[str, float]) -> float:
    total = 0.0
    for metric, weight in objectives.items():
        value = point.value(metric)
        if value is None or value <= 0 or metric not in best:
            continue
        ratio = value / best[metric] if metrics[metric].higher_is_better else best[metric] / value
        total += weight * ratio
    return total


class ObjectivesRanker:
    def rank(self, measurements, objectives, constraints: Sequence[Constraint], metrics, default_variants, judge: Judge) -> List[RankedConfig]:
        usable = [m for m in measurements if m.status != "failed" and m.throughput]
        best = _normalisers(usable, objectives, metrics)
        by_variant: Dict[str, List[Measurement]] = defaultdict(list)
        for m in usable:
            by_variant[m.variant].append(m)
        entries = []
        for variant, points in by_variant.items():
            def key(p: Measurement):
                misses = {c.metric: judge.miss(p, c) for c in constraints}
                return (sum(misses.values()) == 0, -sum(misses.values()), score(p, objectives, metrics, best)), misses

            chosen, (passes, neg_miss, points_score), misses = max(((p, *key(p)) for p in points), key=lambda t: t[1])
            entries.append((passes, neg_miss, points_score, variant, chosen, misses))
        entries.sort(key=lambda e: (not e[0], -e[1] if not e[0] else 0.0, -e[2], e[3]))
        return [
            RankedConfig(
                rank=i + 1, variant=variant, model=chosen.model, best=chosen, passes=passes, score=s,
                misses={k: v for k, v in misses.items() if v > 0}, is_default=variant in default_variants,
            )
            for i, (passes, _, s, variant, chosen, misses) in enumerate(entries)
        ]  # fmt: skip


@hookimpl
def tsweep_rankers():
    return {"objectives": ObjectivesRanker()}
