"""The user's objectives and constraints, from config keys and flags to typed values."""
from __future__ import annotations

from typing import Dict, List

from tsweep.catalogue import Catalogue
from tsweep.config import Config, canonical_metric
from tsweep.errors import UsageError
from tsweep.judge import goal_constraints
from tsweep.records import Constraint, SearchGoal


def objectives(config: Config, known: Catalogue) -> Dict[str, float]:
    result = {}
    for name, weight in config.objectives.items():
        metric = _known(canonical_metric(name, "objectives"), known, "objective")
        try:
            result[metric] = float(weight)
        except (TypeError, ValueError):
            raise UsageError(f"objective {name!r} needs a numeric weight, got {weight!r}") from None
    return result


def constraints(config: Config, known: Catalogue) -> List[Constraint]:
    found: List[Constraint] = []
    for name, bounds in config.constraints.items():
        metric = _known(canonical_metric(name, "constraints"), known, "constraint")
        if not isinstance(bounds, dict) or not bounds or set(bounds) - {"min", "max"}:
            raise UsageError(f"constraint {name!r} must be a mapping with min and/or max, got {bounds!r}")
        try:
            found.append(Constraint(metric, _num(bounds.get("min")), _num(bounds.get("max"))))
        except (TypeError, ValueError):
            raise UsageError(f"constraint {name!r} bounds must be numbers, got {bounds!r}") from None
    return found + goal_constraints(search_goal(config))


def search_goal(config: Config) -> SearchGoal:
    return SearchGoal(latency_budget_ms=config.latency_budget, min_throughput=config.min_throughput)


def _num(value):
    return None if value is None else float(value)


def _known(metric: str, known: Catalogue, what: str) -> str:
    """``metric`` when the catalogue lets it be an objective or a constraint."""
    rankable = known.rankable()
    if metric not in rankable:
        raise UsageError(f"unknown {what} metric {metric!r}: choose from {', '.join(sorted(rankable))}")
    return metric
