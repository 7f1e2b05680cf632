"""The (instances, max_batch_size) grid that the quick and adaptive strategies move on.

A pipeline's variant (an ensemble or BLS model with its composing models, tsweep.pipeline)
sits at one (instances, max_batch_size) pair per composing model, in step order, flattened:
(i1, b1, i2, b2, ...). A move changes one component's pair (:func:`neighbours`)."""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Tuple

from tsweep.records import Variant

Coord = Tuple[int, ...]  # (instances, max_batch_size), per composing model for a pipeline


def coord(v: Variant) -> Coord:
    if v.composing:
        return tuple(x for part in v.composing for x in (part.coordinates.instances, part.coordinates.max_batch_size))
    return v.coordinates.instances, v.coordinates.max_batch_size


def is_pipeline(variants: Iterable[Variant]) -> bool:
    return any(v.composing for v in variants)


def neighbours(c: Coord, component: Optional[int] = None) -> List[Coord]:
    """One step on one component's axes: an instance more or fewer, max_batch_size doubled
    or halved (for a single model, its one pair); ``component`` limits it to that one."""
    found = []
    for i in range(0, len(c), 2) if component is None else (2 * component,):
        instances, mbs = c[i], c[i + 1]
        for pair in ((instances - 1, mbs), (instances + 1, mbs), (instances, mbs // 2), (instances, mbs * 2)):
            found.append(c[:i] + pair + c[i + 2:])
    return found


def by_coord(variants: Iterable[Variant]) -> Dict[Coord, List[Variant]]:
    """Variants grouped by (instances, max_batch_size). A manual space may hold several per
    coordinate (differing in, say, max_queue_delay_microseconds): strategies walk them all,
    and the coordinate counts with the best of them."""
    grid: Dict[Coord, List[Variant]] = {}
    for v in variants:
        grid.setdefault(coord(v), []).append(v)
    return grid
