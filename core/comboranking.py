"""The ranking of combinations: models measured together, judged as a set.

Each model's rows are ranked by the run's ranker with that model's own objectives and
constraints, one entry per combination point (the ranker sees each point as a "variant",
so its normalisation and the Judge's constraint calls are the same as for a model measured
alone). A combination point meets the constraints when every model's row does; its score
is the models' scores weighted by ``weighting`` (:func:`tsweep.combination.weighted_score`).
A combination (one variant per model) is represented by its best load step, as a variant is
by its best load point: the best-scoring step that meets every constraint, else the one
that misses them least. The search (:mod:`tsweep.combosearch`), the reports and the CLI
all read this one ranking.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Sequence, Tuple

from tsweep.combination import grouped, weighted_score, weights
from tsweep.judge import Judge
from tsweep.records import Measurement


@dataclass(frozen=True)
class RankedCombination:
    """A combination's place in the ranking, with the load step that represents it.

    ``rows`` are that step's rows, one per model in the models' order (same windows);
    ``scores`` each model's objective score there, ``misses`` each model's constraint
    misses (empty when met), ``weights`` the ``weighting`` the score used."""

    rank: int
    name: str
    point: str
    rows: Tuple[Measurement, ...]
    passes: bool
    score: float
    scores: Mapping[str, float] = field(default_factory=dict)
    misses: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    weights: Mapping[str, float] = field(default_factory=dict)
    steps: int = 1  # how many load steps of the combination were measured successfully

    @property
    def variants(self) -> Tuple[str, ...]:
        return tuple(m.variant for m in self.rows)

    @property
    def miss(self) -> float:
        return sum(sum(m.values()) for m in self.misses.values())

    @property
    def value(self) -> Tuple[bool, float, float]:
        """What the search compares: meets every constraint, then misses least, then score."""
        return (self.passes, -self.miss, self.score)


def name_of(rows: Sequence[Measurement]) -> str:
    """``add_sub_config_1 + mlp_config_default``: a combination point's variants."""
    return " + ".join(m.variant for m in rows)


def score_points(rows: Sequence[Measurement], run, models: Sequence[str]) -> List[RankedCombination]:
    """Every combination point whose rows all succeeded, scored (unordered; rank 0)."""
    points = {
        pid: sorted(found, key=lambda m: models.index(m.model))
        for pid, found in grouped(rows).items()
        if {m.model for m in found} == set(models) and all(m.status != "failed" and m.throughput for m in found)
    }  # fmt: skip
    per_model: Dict[str, Dict[str, object]] = {}
    for model in models:
        relabelled = [dataclasses.replace(m, variant=pid) for pid, found in points.items() for m in found if m.model == model]
        wanted = run.goals_of(model)
        judge = Judge.from_history(wanted.goal, relabelled)
        ranked = run.ranker.rank(relabelled, dict(wanted.objectives), list(wanted.constraints), run.catalogue, [], judge)
        per_model[model] = {r.variant: r for r in ranked}
    weighting = weights(run.config.per_model, models)
    scored = []
    for pid, found in points.items():
        entries = {m: per_model[m][pid] for m in models}
        scores = {m: e.score for m, e in entries.items()}
        scored.append(RankedCombination(
            rank=0, name=name_of(found), point=pid, rows=tuple(found), passes=all(e.passes for e in entries.values()),
            score=weighted_score(scores, weighting), scores=scores,
            misses={m: dict(e.misses) for m, e in entries.items() if e.misses}, weights=weighting,
        ))  # fmt: skip
    return scored


def rank_combinations(rows: Sequence[Measurement], run, models: Sequence[str]) -> List[RankedCombination]:
    """The combinations measured in ``rows``, best first, each by its best load step."""
    best: Dict[str, RankedCombination] = {}
    steps: Dict[str, int] = {}
    for c in score_points(rows, run, models):
        steps[c.name] = steps.get(c.name, 0) + 1
        if c.name not in best or c.value > best[c.name].value:
            best[c.name] = c
    ordered = sorted(best.values(), key=lambda c: (not c.passes, c.miss if not c.passes else 0.0, -c.score, c.name))
    return [dataclasses.replace(c, rank=i + 1, steps=steps[c.name]) for i, c in enumerate(ordered)]


def failed_points(rows: Sequence[Measurement]) -> List[List[Measurement]]:
    """The combination points with a failed row, each as its rows (every model's, with why)."""
    return [found for found in grouped(rows).values() if any(m.status == "failed" for m in found)]
