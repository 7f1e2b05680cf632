"""Lanes on a virtual clock that replay stored measurements: how a sweep would scale, in seconds.

Sizing a Ray cluster for a sweep ("is 16 lanes worth it for 50 models, or does it stop at
8?") needs the schedule tsweep would follow, not a formula: which trials a strategy hands
out at once, which lane already has a variant loaded, how long the driver takes per
decision. :class:`VirtualLanePool` is a :class:`tsweep.lanes.LanePool` whose lanes measure
nothing: a trial submitted to a lane comes back, on a virtual clock, as the stored
measurement of the same point (a real one, from a real results store), after that point's
stored ``duration_s`` plus the time to load its variant when the lane has another loaded.
The trial runner drives it as it drives real lanes, so the decisions, their order and the
store writes are tsweep's own; only time is simulated.

The driver's own work is not simulated: the real time the runner spends between two
:meth:`VirtualLanePool.wait` calls (the strategy's ``propose``, the Judge, the store commit)
is added to the virtual clock, so a slow driver shows up as what bounds the sweep, as it
would on a cluster.

``bench/scaleout_sim.py`` uses it to tabulate a 50-model sweep against 1 to 64 lanes.
"""
from __future__ import annotations

import dataclasses
import heapq
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from tsweep.lanes import Finished, Lane
from tsweep.records import Measurement, ModelSpec, Trial, point_key


class VirtualClock:
    """Virtual seconds since the sweep began; only :class:`VirtualLanePool` moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def advance_to(self, t: float) -> None:
        self.now = max(self.now, t)


@dataclass
class LaneBooks:
    """What one virtual lane did: seconds busy measuring and loading, points per model."""

    name: str
    loaded: Optional[str] = None  # digest of the variant loaded, None before the first
    busy_until: float = 0.0
    measuring_s: float = 0.0
    loading_s: float = 0.0
    loads: int = 0
    points: int = 0


@dataclass
class Replay:
    """The stored measurements a virtual lane hands back, by the point they measured.

    ``rows`` are real measurements; ``source_of(model, digest)`` names the stored model and
    variant digest a simulated one copies (``add_sub_17``'s variant -> ``add_sub``'s). A trial whose point was never stored (a
    strategy may go elsewhere once the schedule changes) gets the stored point of the same
    variant and batch size nearest in load, and is counted in ``nearest``; a variant never
    stored at all fails, counted in ``missing``."""

    rows: Iterable[Measurement]
    source_of: Callable[[str, str], Tuple[str, str]] = lambda model, digest: (model, digest)
    exact: int = 0
    nearest: int = 0
    missing: int = 0
    _by_key: Dict[str, Measurement] = field(default_factory=dict)
    _by_variant: Dict[Tuple[str, str, str, int], List[Measurement]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for m in self.rows:
            if m.combination:
                continue  # a combination's rows were measured together: not one lane's point
            self._by_key[m.key] = m
            self._by_variant.setdefault((m.model, m.variant_digest, m.load_kind, m.batch_size), []).append(m)

    def of(self, trial: Trial) -> Measurement:
        """The measurement of ``trial`` as a lane would return it (named as the trial is)."""
        source, digest = self.source_of(trial.variant.model, trial.variant.digest)
        key = point_key(source, digest, trial.load, trial.batch_size, trial.repeat)
        stored = self._by_key.get(key)
        if stored is not None:
            self.exact += 1
        else:
            same = self._by_variant.get((source, digest, trial.load.kind, trial.batch_size), [])
            if not same:
                self.missing += 1
                return Measurement(
                    model=trial.variant.model, variant=trial.variant.name, variant_digest=trial.variant.digest,
                    load_kind=trial.load.kind, load_value=trial.load.value, batch_size=trial.batch_size, repeat=trial.repeat,
                    status="failed", error=f"{source} variant {digest} is not in the replayed store",
                )  # fmt: skip
            self.nearest += 1
            stored = min(same, key=lambda m: (abs(m.load_value - trial.load.value), m.repeat != trial.repeat))
        m = dataclasses.replace(
            stored, model=trial.variant.model, variant=trial.variant.name, variant_digest=trial.variant.digest,
            load_value=trial.load.value, repeat=trial.repeat,
            variant_params=dict(trial.variant.params), metrics=dict(stored.metrics),
        )  # fmt: skip
        m.id = None
        return m


class VirtualLanePool:
    """``lanes`` virtual lanes replaying ``replay`` (see the module docstring).

    ``load_s``: seconds a lane takes to load a variant it does not have loaded (measured on
    a real server); ``start_s``: seconds every lane's server takes to start (in parallel).
    ``driver_clock`` is the real clock whose elapsed time between two ``wait`` calls is the
    driver's work; tests pass a fake one to make the driver free or fixed."""

    def __init__(
        self, lanes: int, replay: Replay, load_s: float, start_s: float = 0.0,
        driver_clock: Callable[[], float] = time.perf_counter,
    ):  # fmt: skip
        if lanes < 1:
            raise ValueError("a pool needs at least one lane")
        self.replay, self.load_s, self.start_s = replay, load_s, start_s
        self.clock = VirtualClock()
        self.books = {f"lane {i + 1}": LaneBooks(f"lane {i + 1}") for i in range(lanes)}
        self._flight: List[Tuple[float, int, Finished]] = []  # (ends at, order, result) heap
        self._busy: Dict[str, bool] = {name: False for name in self.books}
        self._order = 0
        self._driver_clock = driver_clock
        self._driver_since: Optional[float] = None
        self.driver_s = 0.0  # real seconds the driver worked, all added to the virtual clock
        self.decisions = 0  # wait() calls that returned points: one driver turn each
        self.spans: Dict[str, List[float]] = {}  # model -> [its first trial sent, its last result]

    # -- the LanePool protocol ----------------------------------------------------------
    def start(self) -> List[Lane]:
        self.clock.advance_to(self.start_s)
        self._driver_since = self._driver_clock()
        return [Lane(name, "virtual, replaying stored measurements") for name in self.books]

    def idle(self) -> List[str]:
        return [name for name, busy in self._busy.items() if not busy]

    def loaded(self, lane: str) -> Optional[str]:
        return self.books[lane].loaded

    def submit(self, lane: str, model: ModelSpec, trial: Trial, decided=None) -> None:
        if self._busy[lane]:
            raise RuntimeError(f"{lane} already has a point in flight")
        self._charge_driver()
        books = self.books[lane]
        m = self.replay.of(trial)
        if hasattr(m, "lane"):  # the store's lane column (schema 7)
            m.lane = lane
        load = 0.0
        if books.loaded != trial.variant.digest:
            load, books.loaded = self.load_s, trial.variant.digest
            books.loads += 1
        ends = self.clock.now + load + m.duration_s
        books.loading_s += load
        books.measuring_s += m.duration_s
        books.points += 1
        books.busy_until = ends
        self._busy[lane] = True
        self._order += 1
        heapq.heappush(self._flight, (ends, self._order, Finished(lane, model.name, trial, m)))
        self.spans.setdefault(model.name, [self.clock.now, ends])

    def wait(self, timeout_s: Optional[float] = None) -> List[Finished]:
        """Every point that ends at the earliest end time in flight; the clock moves there.
        (``timeout_s`` is real time and nothing here waits in real time, so it is unused.)"""
        self._charge_driver()
        if not self._flight:
            self._driver_since = self._driver_clock()
            return []
        first = self._flight[0][0]
        self.clock.advance_to(first)
        done = []
        while self._flight and self._flight[0][0] <= first:
            done.append(heapq.heappop(self._flight)[2])
        for f in done:
            self._busy[f.lane] = False
            self.spans[f.model][1] = first
        self.decisions += 1
        self._driver_since = self._driver_clock()
        return done

    def model_done(self, model: str) -> None:
        pass  # a virtual lane holds nothing: its variant stays loaded until another comes

    def stop(self) -> None:
        self._charge_driver()
        self._driver_since = None

    def description(self) -> str:
        return f"{len(self.books)} virtual lanes replaying stored measurements"

    # -- the figures --------------------------------------------------------------------
    def _charge_driver(self) -> None:
        """The real time since the driver got its last answer is driver work: on the clock."""
        if self._driver_since is None:
            return
        now = self._driver_clock()
        spent = max(0.0, now - self._driver_since)
        self.driver_s += spent
        self.clock.now += spent
        self._driver_since = now

    def wall_s(self) -> float:
        """The sweep's virtual wall time so far: the clock, or the last point's end if later."""
        return max([self.clock.now, *(b.busy_until for b in self.books.values())])

    def utilisation(self) -> float:
        """The share of lane time spent measuring or loading, over the sweep after start-up."""
        span = self.wall_s() - self.start_s
        if span <= 0:
            return 0.0
        busy = sum(b.measuring_s + b.loading_s for b in self.books.values())
        return busy / (span * len(self.books))

    def points_per_lane(self) -> Mapping[str, int]:
        return {name: b.points for name, b in self.books.items()}


def load_time_s(trials: Sequence[Mapping[str, object]]) -> Dict[str, float]:
    """The time a lane takes to load a variant, from a real run's trials in the order run.

    Each trial (``digest``, ``duration_s`` of measuring, ``wall_s`` from being handed to the
    executor to its result) spent ``wall_s - duration_s`` setting up; a trial on another
    variant than the one before it includes the load (and the previous one's unload). The
    load is the difference of the two medians (never below 0); the counts come with it."""
    with_load, without = [], []
    previous = None
    for t in trials:
        extra = float(t["wall_s"]) - float(t["duration_s"])
        (with_load if t["digest"] != previous else without).append(extra)
        previous = t["digest"]
    overhead = statistics.median(without) if without else 0.0
    loading = statistics.median(with_load) if with_load else 0.0
    return {"load_s": max(0.0, loading - overhead), "per_trial_overhead_s": overhead, "loads": len(with_load), "others": len(without)}
