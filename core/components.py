"""The interfaces of the objects plugins hand to the core.

A hook (see :mod:`tsweep.hookspecs`) is how a plugin *offers* a component; these protocols
say what the component must do once the core has picked it. They are structural: a plugin
does not inherit from anything, it only has these methods.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, runtime_checkable

from tsweep.errors import UsageError
from tsweep.judge import Judge
from tsweep.reportcontext import ReportContext
from tsweep.records import (
    ConfigSpace,
    Constraint,
    LaunchSettings,
    LoadSettings,
    LoadWindow,
    Measurement,
    MetricInfo,
    RankedConfig,
    RunningServer,
    SearchGoal,
    Trial,
)


@runtime_checkable
class Launcher(Protocol):
    """Starts (or attaches to) one Triton server for the whole run.

    The core calls, in order: ``preflight()`` before anything is written (raise
    :class:`tsweep.errors.UsageError` for anything the user must fix, e.g. no binary or no
    container engine), ``start()``, and ``stop()`` at the end, also after errors and Ctrl-C,
    and also when ``start()`` itself raised or was interrupted half-way: so ``stop()`` must
    release whatever exists by then and be harmless when called again or for nothing. The
    server must run with explicit model control: the core loads and unloads variants through
    Triton's repository API. It serves ``settings.model_repository``, where the core writes
    each variant, unless the launcher class says ``serves_output_repository = False`` (a
    server on another host, as in remote mode): then each load request carries the variant
    (:mod:`tsweep.loading`).

    When the server dies mid-sweep the core calls ``stop()`` then ``start()`` again (at most
    a few times per run), so both must be repeatable. ``died()`` is asked after a point
    fails: None while the server runs (or when the launcher cannot tell, e.g. a remote
    server it does not own), else why it is gone (exit code, signal, last log lines); that
    text becomes the failed point's error. When it says None the core also probes liveness
    over HTTP.
    """

    def __init__(self, settings: LaunchSettings) -> None: ...

    def preflight(self) -> None: ...

    def start(self) -> RunningServer: ...

    def stop(self) -> None: ...

    def died(self) -> Optional[str]: ...


LauncherFactory = Callable[[LaunchSettings], Launcher]


@runtime_checkable
class SearchStrategy(Protocol):
    """Decides which trials to run next from what has been measured so far.

    ``propose(history)`` receives every measurement of this model so far (including ones
    resumed from the store) and returns the next trials, the first being what one lane
    should measure first; an empty list ends the search for this model. Trials already in
    ``history`` are not measured again even if proposed again, so a strategy may stay
    stateless.

    The trials of one answer must be independent of one another: with several lanes
    (:mod:`tsweep.lanes`) they are measured at once, none waiting for another's result. The
    runner asks again after every result of the model, also while trials of the previous
    answer are still in flight on other lanes: an answer lists every trial wanted now (those
    in flight are skipped), not only new ones.

    ``planned()`` is how many points the strategy expects to measure for this model, for the
    progress line (``[ 3/40 ...]``); asked once before the first ``propose``. Return 0 when
    it cannot say.
    """

    def propose(self, history: Sequence[Measurement]) -> List[Trial]: ...

    def planned(self) -> int: ...


SearchStrategyFactory = Callable[[ConfigSpace, SearchGoal], SearchStrategy]


@runtime_checkable
class LoadGenerator(Protocol):
    """Sends one trial's requests to the server and counts what comes back.

    Built by a :data:`LoadGeneratorFactory` per measured point (building must not send
    anything). The core calls ``start()`` once, then ``take_window()`` at every window
    boundary (the first after a short warm-up, discarded), then ``stop()`` once, also when the
    point fails or is interrupted after ``start()`` returned; ``stop()`` must not wait longer
    than the request timeout for requests in flight. A ``start()`` that raises must leave
    nothing running.

    ``take_window()`` returns what happened since the previous call (or since ``start()``)
    as a :class:`tsweep.records.LoadWindow` or an object with the same fields, and starts
    a new window; its histogram is handed over, not shared. Closed loop (the trial's load is
    ``concurrency``): keep that many requests in flight. Open loop (``request_rate``): send on
    the schedule ``LoadSettings.distribution`` gives (or the gaps ``LoadSettings.intervals_us``
    lists, cycled through, when set) and time each request from its intended send, counting
    late sends, so a server that falls behind shows its queueing.

    Optional: ``wait_responses(n, timeout_s) -> bool`` blocks until the current window holds
    ``n`` answered requests (or the timeout); ``measurement_mode: count_windows`` needs it and
    refuses a load generator without it. A load generator may name the client that measures
    (a ``client`` attribute, e.g. ``"native http"`` or ``"tritonclient grpc (TLS)"``); the
    stored point and the reports carry it, so that figures measured through different
    clients are not taken for alike."""

    def start(self) -> object: ...

    def take_window(self) -> LoadWindow: ...

    def stop(self) -> None: ...


#: ``factory(trial, server, settings)``: a load generator for one point. ``settings.protocol``
#: is the name it was offered under (``client_protocol``).
LoadGeneratorFactory = Callable[[Trial, RunningServer, LoadSettings], LoadGenerator]


@runtime_checkable
class MetricCollector(Protocol):
    """Samples metrics alongside one measurement.

    ``describe()`` names the metrics it reports (name, unit, direction); the same
    descriptions should come from the plugin's ``tsweep_metric_infos`` hook, so that
    objectives and constraints on them are accepted before any server runs. For every
    measured point the core calls ``start()`` before the load begins and ``stop(since)``
    after the point is judged; ``stop`` returns ``{metric name: value}`` (missing names are
    fine). ``since`` is the ``time.monotonic()`` at which the judged windows (all but the
    warm-up) began: a collector that keeps timestamped samples aggregates those taken since
    then, so the value covers the same interval as the point's latency and throughput; one
    that does not may ignore it and aggregate the whole point. Right after the server
    starts, before any variant is loaded, the core also runs one short
    ``start()``/``stop(0.0)`` pair: the idle server's baseline. Neither call may raise for a
    failed sample: leave the metric out instead.
    """

    def describe(self) -> Sequence[MetricInfo]: ...

    def start(self) -> None: ...

    def stop(self, since: float) -> Dict[str, float]: ...


class CollectorWarning(UserWarning):
    """A collector cannot work on this machine or server (no GPU, no metrics endpoint).

    Shown once, as one line, by the CLI; the run goes on without those metrics.
    """


@runtime_checkable
class Ranker(Protocol):
    """Orders a model's (or all models') variants by objectives under constraints.

    ``objectives`` maps a metric name to a weight; ``metrics`` describes every known metric
    (direction and unit). ``judge`` (:class:`tsweep.judge.Judge`) decides whether a point
    meets a constraint: ``judge.miss(point, constraint)`` is 0 only when the point is inside
    the bound with 95% confidence, so a ranker never crowns a point that meets the latency
    budget by luck. Returns one :class:`RankedConfig` per variant, best first; variants that
    meet every constraint rank above those that do not. Ties with the winner are marked by
    the core afterwards, with the same Judge.
    """

    def rank(
        self,
        measurements: Sequence[Measurement],
        objectives: Mapping[str, float],
        constraints: Sequence[Constraint],
        metrics: Mapping[str, MetricInfo],
        default_variants: Sequence[str],
        judge: Judge,
    ) -> List[RankedConfig]: ...


@runtime_checkable
class Reporter(Protocol):
    """Writes outputs of a finished (or resumed) run.

    ``write`` receives every stored measurement (a re-measured point once per look:
    :func:`tsweep.repeats.merge` combines them as the ranking does), the ranking (empty for
    ``tsweep report``), the export path and a :class:`tsweep.reportcontext.ReportContext`
    (the metric catalogue, where the results were measured, the mode, objectives and
    constraints, the idle server's baseline). It writes below ``export_dir`` only
    (``results/`` for data, ``reports/`` for documents; create folders as needed, write
    atomically) and returns the paths it wrote so the CLI can print them.
    """

    def write(
        self,
        measurements: Sequence[Measurement],
        ranking: Sequence[RankedConfig],
        export_dir: Path,
        context: ReportContext,
    ) -> List[Path]: ...


def check(component: Any, protocol: type, what: str) -> Any:
    """Return ``component`` if it has every method of ``protocol``, callable with the
    protocol's arguments; else raise one :class:`UsageError` line naming the first gap.

    The one place the contract is enforced: the core calls it on each component a plugin
    hands over, when it is handed over, so a plugin written against an older contract fails
    with a line naming the method, not with an AttributeError in the middle of a sweep."""
    for name, wanted in vars(protocol).items():
        if name.startswith("_") or not callable(wanted):
            continue
        params = list(inspect.signature(wanted).parameters.values())[1:]  # without self
        have = getattr(component, name, None)
        problem = "has no such method" if not callable(have) else _cannot_take(have, params)
        if problem:
            args = ", ".join(p.name for p in params)
            raise UsageError(
                f"{what} ({type(component).__name__}) does not implement {protocol.__name__}.{name}({args}): it {problem}; "
                f"update the plugin to the contract in tsweep.components"
            )
    return component


def _cannot_take(method: Callable, params: Sequence[inspect.Parameter]) -> str:
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):  # builtins without a signature: trust them
        return ""
    try:
        signature.bind(*(None for _ in params))
    except TypeError:
        return f"takes ({', '.join(signature.parameters)})"
    return ""
