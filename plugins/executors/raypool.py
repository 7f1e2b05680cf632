"""The driver's side of the ``ray`` executor: a :class:`tsweep.lanes.LanePool` of Ray actors.

Each lane is a :class:`tsweep.plugins.executors.raylane.LaneWorker` actor holding the
resources one lane asks for. The pool only moves trials out and points back; what to
measure, the Judge, the store and the progress lines stay with the trial runner on the
driver. A lane whose worker or node is lost takes its point in flight with it: ``wait()``
hands that point back as lost, with the cause, and the lane is retired (its server dies
with its worker: the local launcher ties tritonserver to its parent).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tsweep.errors import ServerError, TsweepError, UsageError
from tsweep.lanes import Finished, Lane
from tsweep.measure import Decided
from tsweep.records import LaunchSettings, ModelSpec, Trial

from tsweep.plugins.executors import rayship

#: Seconds Ray gets to place every lane's actor before a lane that is still pending is retired.
PLACE_TIMEOUT_S = 120.0
#: Seconds each lane gets to stop its server before its worker is killed (which kills the server too).
STOP_TIMEOUT_S = 20.0
#: A path prefix lanes treat as unreadable (tests: a node without the driver's file system).
HIDE_ENV = "TSWEEP_RAY_LANES_CANNOT_READ"


@dataclass
class LaneState:
    """The driver's books on one lane."""

    name: str
    actor: Any
    ip: str = ""
    node: str = ""  # Ray's node id
    pid: int = 0  # its worker's
    server_pid: Optional[int] = None
    where: str = ""
    loaded: Optional[str] = None  # digest of the variant loaded there
    model: str = ""  # the model it belongs to
    running: Optional[Tuple[Any, str, Trial]] = None  # (object ref, model, trial) in flight
    restarts: int = 0
    alive: bool = True


@dataclass
class LaneRequest:
    """What every lane gets: resources per lane, the run's config and launch settings."""

    count: int
    cpus: float
    gpus: float
    resources: Dict[str, float] = field(default_factory=dict)
    ship_limit_mb: float = 512.0


class RayLanePool:
    """Lanes on a Ray cluster; see the module docstring and :class:`tsweep.lanes.LanePool`.

    ``cluster`` is the connection (:class:`tsweep.plugins.executors.ray.Cluster`), shut down
    by :meth:`stop` when it is the run's private cluster."""

    def __init__(
        self, cluster, request: LaneRequest, config, models: Sequence[ModelSpec], launch: LaunchSettings,
        warn: Callable[[str], None] = print,
    ):  # fmt: skip
        self.cluster, self.request, self.config, self.launch, self.warn = cluster, request, config, launch, warn
        self.models = [_absolute(m) for m in models]
        self.lanes: Dict[str, LaneState] = {}
        self.stopped = False

    # -- start ------------------------------------------------------------------------
    def start(self) -> List[Lane]:
        import ray

        from tsweep.plugins.executors.raylane import LaneWorker

        r = self.request
        actor = ray.remote(LaneWorker).options(
            num_cpus=r.cpus, num_gpus=r.gpus, resources=dict(r.resources) or None, max_restarts=0, max_task_retries=0,
        )  # fmt: skip
        hidden = os.environ.get(HIDE_ENV, "")
        for i in range(r.count):
            name = f"lane {i + 1}"
            self.lanes[name] = LaneState(name, actor.remote(name, self.config, self.launch, os.getcwd(), hidden))
        self._place()
        self._check_models()
        ranks: Dict[str, int] = {}
        starting = {}
        for lane in self._live():
            rank = ranks.get(lane.node, 0)  # the lane's rank on its node: which cores it takes
            ranks[lane.node] = rank + 1
            starting[lane.name] = lane.actor.start.remote(rank, r.cpus)
        for name, ref in starting.items():
            lane = self.lanes[name]
            try:
                started = ray.get(ref)
            except Exception as exc:
                self._retire(lane, f"{lane.name} on {lane.ip or '?'} retired: its server would not start: {_cause(exc)}")
                continue
            lane.where, lane.server_pid = started["where"], started["pid"]
        live = self._live()
        if not live:
            raise ServerError(f"no lane could start its server ({r.count} tried; the warnings above say why)")
        return [Lane(lane.name, lane.where) for lane in live]

    def _place(self) -> None:
        """Wait for Ray to place every lane's actor; retire those it cannot place in time."""
        import ray

        asked = {lane.actor.node.remote(): lane for lane in self._live()}
        ready, pending = ray.wait(list(asked), num_returns=len(asked), timeout=PLACE_TIMEOUT_S)
        for ref in ready:
            lane = asked[ref]
            try:
                info = ray.get(ref)
            except Exception as exc:
                self._retire(lane, f"{lane.name} retired: its worker did not start: {_cause(exc)}")
                continue
            lane.ip, lane.node, lane.pid = info["ip"], info["node"], info["pid"]
        for ref in pending:
            lane = asked[ref]
            self._retire(lane, f"{lane.name} retired: Ray could not place it within {PLACE_TIMEOUT_S:.0f} s (other jobs hold the cluster's resources?)")

    def _check_models(self) -> None:
        """Every lane must see the driver's model folders, or get them shipped (within the limit)."""
        import ray

        specs = list(rayship.every_model(self.models))
        prints = {m.name: (str(m.path), rayship.fingerprint(m.path)) for m in specs}
        asked = {lane.name: lane.actor.unreadable.remote(prints) for lane in self._live()}
        blocked = {}
        for name, ref in asked.items():
            try:
                wrong = ray.get(ref)
            except Exception as exc:
                self._retire(self.lanes[name], f"{name} retired: its worker failed: {_cause(exc)}")
                continue
            if wrong:
                blocked[name] = wrong
        if not blocked:
            return
        folders = {m.name: m.path for m in specs}
        total = rayship.size(folders.values())
        limit = self.request.ship_limit_mb
        if total > limit * 1e6:
            name, wrong = next(iter(blocked.items()))
            lane = self.lanes[name]
            self.stop()
            raise UsageError(
                f"{name} on {lane.ip} cannot read {folders[wrong[0]]} and the models ({total / 1e6:.3g} MB) exceed ray_ship_limit_mb "
                f"({limit:g}): put the repository on a path every node sees, or raise the limit"
            )
        blob = ray.put(rayship.pack(folders))
        shipped = {name: self.lanes[name].actor.receive.remote(blob) for name in blocked}
        for name, ref in shipped.items():
            try:
                ray.get(ref)
            except Exception as exc:
                self._retire(self.lanes[name], f"{name} retired: the shipped models could not be unpacked there: {_cause(exc)}")
        self.warn(f"shipped the models ({total / 1e6:.3g} MB) to {len(blocked)} lane(s) that cannot read {self.models[0].path.parent}")

    def server_baseline(self, idle_s: float) -> Optional[Dict[str, float]]:
        """The server-only figures of the first lane's idle server (every lane runs the same
        server; a run on lanes of different machines keeps the first lane's as its reference)."""
        import ray

        for lane in self._live():
            try:
                return ray.get(lane.actor.baseline.remote(idle_s))
            except Exception:  # that lane is gone: the next one's, or none (the sweep decides on lost lanes)
                continue
        return None

    # -- the protocol -----------------------------------------------------------------
    def idle(self) -> List[str]:
        return [lane.name for lane in self._live() if lane.running is None]

    def loaded(self, lane: str) -> Optional[str]:
        state = self.lanes.get(lane)
        return state.loaded if state is not None and state.alive else None

    def submit(self, lane: str, model: ModelSpec, trial: Trial, decided: Optional[Decided]) -> None:
        state = self.lanes[lane]
        if not state.alive or state.running is not None:
            raise ValueError(f"{lane} is not idle: submit only to a lane in pool.idle()")
        ref = state.actor.measure.remote(_absolute(model), trial, _sendable(decided))
        state.running = (ref, model.name, trial)

    def wait(self, timeout_s: Optional[float] = None) -> List[Finished]:
        import ray

        by_ref = {lane.running[0]: lane for lane in self._live() if lane.running is not None}
        if not by_ref:
            return []
        ready, _ = ray.wait(list(by_ref), num_returns=1, timeout=timeout_s)
        if not ready:
            return []
        ready, _ = ray.wait(list(by_ref), num_returns=len(by_ref), timeout=0)  # every one that has ended
        return [self._finished(by_ref[ref]) for ref in ready]

    def _finished(self, lane: LaneState) -> Finished:
        import ray

        ref, model, trial = lane.running
        lane.running = None
        try:
            m, lane.loaded, lane.restarts = ray.get(ref)
            lane.model = model
        except ray.exceptions.RayTaskError as exc:  # our code raised in the lane
            cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
            if not isinstance(cause, TsweepError):
                raise cause from None  # a bug keeps its traceback, as in a local run
            why = f"{lane.name} on {lane.ip}: {cause}"
            self._retire(lane, why + "; the lane is retired")
            return Finished(lane.name, model, trial, lost=why)
        except Exception as exc:  # the worker or its node is gone (RayActorError, node died, ...)
            why = f"{lane.name} on {lane.ip}: worker died ({_cause(exc)})"
            self._retire(lane, "")
            return Finished(lane.name, model, trial, lost=why)
        return Finished(lane.name, model, trial, measurement=m)

    def model_done(self, model: str) -> None:
        for lane in self._live():
            lane.actor.model_done.remote(model)  # queued behind a point in flight, if any
            if lane.model == model and lane.running is None:
                lane.loaded, lane.model = None, ""

    def stop(self) -> None:
        """Each lane stops its server (bounded wait), then every worker is killed (which takes
        a server that did not stop with it); a private cluster is shut down."""
        if self.stopped:
            return
        self.stopped = True
        try:
            import ray

            live = [lane for lane in self.lanes.values() if lane.alive]
            if live and ray.is_initialized():
                refs = [lane.actor.stop.remote() for lane in live]
                ray.wait(refs, num_returns=len(refs), timeout=STOP_TIMEOUT_S)
            for lane in self.lanes.values():
                lane.alive = False
                try:
                    ray.kill(lane.actor)
                except Exception:
                    pass  # already gone
        finally:
            self.cluster.close()

    @property
    def restarts(self) -> int:
        """How often lanes' servers were started again after dying, in all."""
        return sum(lane.restarts for lane in self.lanes.values())

    @property
    def lane_gpus(self) -> int:
        """GPUs each lane's server sees (a fraction of one GPU is still one device to it)."""
        return math.ceil(self.request.gpus)

    def description(self) -> str:
        live = self._live()
        nodes = sorted({lane.ip for lane in live})
        return f"ray executor, {self.cluster.description}: {len(live)} lane(s) on {len(nodes)} node(s) ({', '.join(nodes)})"

    # -- helpers ----------------------------------------------------------------------
    def _live(self) -> List[LaneState]:
        return [lane for lane in self.lanes.values() if lane.alive]

    def _retire(self, lane: LaneState, why: str) -> None:
        """Take a lane out of the pool: its worker is killed (its server dies with it)."""
        import ray

        lane.alive, lane.running, lane.loaded = False, None, None
        if why:
            self.warn(why)
        try:
            ray.kill(lane.actor)
        except Exception:
            pass


def _absolute(model: ModelSpec) -> ModelSpec:
    """``model`` with absolute folders: a lane's working directory is not the driver's."""
    import dataclasses

    composing = tuple(dataclasses.replace(p, path=Path(p.path).resolve()) for p in model.composing)
    return dataclasses.replace(model, path=Path(model.path).resolve(), composing=composing)


def _sendable(decided: Optional[Decided]) -> Optional[Decided]:
    """``decided`` if it can travel to a lane, else None (the point then runs its full windows)."""
    if decided is None:
        return None
    from ray import cloudpickle

    try:
        cloudpickle.dumps(decided)
    except Exception:
        return None
    return decided


def _cause(exc: BaseException) -> str:
    """What a lane's error says: ours in full (one line already), another exception raised in
    the lane as its type and first line, Ray's own errors by their first line, without the
    stack and the actor's details."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, TsweepError):
        return str(cause)
    text = f"{type(cause).__name__}: {cause}" if isinstance(cause, BaseException) else str(exc)
    first = next((line.strip() for line in text.strip().splitlines() if line.strip()), type(exc).__name__)
    return first[:300]
