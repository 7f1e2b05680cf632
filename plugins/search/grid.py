"""The (instances, max_batch_size) grid that the quick and adaptive strategies move on."""
from __future__ import annotations

from typing import Dict, Iterable, List, Tuple

from tsweep.records import Variant

Coord = Tuple[int, int]  # (instances, max_batch_size)


def coord(v: Variant) -> Coord:
    return v.coordinates.instances, v.coordinates.max_batch_size


def by_coord(variants: Iterable[Variant]) -> Dict[Coord, List[Variant]]:
    """Variants grouped by (instances, max_batch_size). A manual space may hold several per
    coordinate (differing in, say, max_queue_delay_microseconds): strategies walk them all,
    and the coordinate counts with the best of them."""
    grid: Dict[Coord, List[Variant]] = {}
    for v in variants:
        grid.setdefault(coord(v), []).append(v)
    return grid
