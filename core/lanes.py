"""Lanes: the places trials are measured, one point at a time each, several at once in all.

A lane is one Triton server (started by the run's launcher, confined to the GPUs or cores
the lane was given) plus the load generator and collectors that measure against it. The
local executor has one lane, this process against the run's server; the ``ray`` executor
(:mod:`tsweep.plugins.executors.ray`) has one per Ray actor, on whatever node Ray placed it.

The trial runner (:mod:`tsweep.trials`) keeps everything that decides: the strategies, the
Judge, the results store (the single writer: each result committed as it arrives) and the
progress lines. A :class:`LanePool` only measures what it is handed and says when a lane
is gone. So a sweep over thirty lanes takes the same decisions, by the same rules, into the
same store, as one on a single server.

Protocol, in the order the runner calls it::

    lanes = pool.start()                  # servers up; lanes that cannot start are retired
    pool.submit(lane, model, trial, dec)  # only to a lane in pool.idle()
    for done in pool.wait():              # blocks until at least one point ends
        ...                               # done.measurement, or done.lost: the lane is gone
    pool.model_done(model)                # no more trials of that model: free what it holds
    pool.stop()                           # every lane's server stopped (also on Ctrl-C)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, Protocol, Sequence, runtime_checkable

from tsweep.measure import Decided
from tsweep.records import LaunchSettings, Measurement, ModelSpec, Trial


@dataclass(frozen=True)
class Lane:
    """One lane as the runner and the reports see it."""

    name: str  #: unique within the run, e.g. "lane 2"
    where: str = ""  #: node, GPUs or cores, server: for progress lines, e.g. "10.0.0.7 GPU 3, tritonserver 2.59"


@dataclass
class Finished:
    """One point that ended on a lane: measured (``measurement``, failed or not), or lost
    with its lane (``measurement`` None, ``lost`` says why: worker died, node gone). A lost
    lane is retired by the pool; the runner retries the trial once on another lane."""

    lane: str
    model: str
    trial: Trial
    measurement: Optional[Measurement] = None
    lost: str = ""


@runtime_checkable
class LanePool(Protocol):
    """Measures trials on lanes; see the module docstring.

    ``start()`` starts every lane's server and returns the lanes that started; a lane whose
    server will not start is retired with one warning line saying why (raise
    :class:`tsweep.errors.ServerError` when none starts). ``idle()`` names the live lanes with
    nothing in flight. ``loaded(lane)`` is the digest of the variant loaded on a lane (the
    runner prefers that lane for that variant's trials), None when nothing is.
    ``submit(lane, model, trial, decided)`` starts measuring ``trial`` there and returns at
    once; ``decided(point so far)`` may end the point early, exactly as for a local run.
    ``wait(timeout_s)`` blocks until at least one submitted point ends (or the timeout
    passes: then ``[]``) and returns every one that has. A point whose server died comes
    back failed with the cause, and the lane restarts its server before its next point.
    ``model_done(model)`` is called when no more trials of ``model`` will come.
    ``stop()`` stops every lane's server; it must be harmless twice and after a failed start.
    ``description()`` says where the lanes are, for the store and the console.

    Optional: ``server_baseline(idle_s)`` samples an idle server's metrics (the server-only
    figures' reference, stored once per run) and ``restarts``, how many times a server had
    to be started again; a pool without them has no baseline and counts no restarts.
    ``lane_gpus``: how many GPUs each lane's server sees, when that is not what this machine
    sees (a driver without a GPU sending work to GPU lanes): the config spaces are then built
    for the lanes (KIND_GPU variants, instance counts per GPU), not for the driver.
    """

    def start(self) -> List[Lane]: ...

    def idle(self) -> List[str]: ...

    def loaded(self, lane: str) -> Optional[str]: ...

    def submit(self, lane: str, model: ModelSpec, trial: Trial, decided: Optional[Decided]) -> None: ...

    def wait(self, timeout_s: Optional[float] = None) -> List[Finished]: ...

    def model_done(self, model: str) -> None: ...

    def stop(self) -> None: ...

    def description(self) -> str: ...


@dataclass
class ExecutorContext:
    """What an executor factory gets to build its lanes from (grows without breaking plugins).

    ``run`` is the resolved :class:`tsweep.run.Run` (its config holds ``lanes`` and
    ``cluster_address``; plugin keys are in ``options``); ``models`` the profiled models as
    found in the user's repository (with their composing models); ``launch`` the launch
    settings a local server would get (each lane derives its own: output repository, log,
    ports, GPUs); ``warn(line)`` prints one line to the user; ``progress`` is the run's
    :class:`tsweep.progress.Progress` (a lane's server start or restart may be told to it);
    ``launcher`` the run's launcher, checked already (``preflight()``): the local executor's
    one server; lanes elsewhere build their own from ``launch``.
    """

    run: Any
    models: Sequence[ModelSpec]
    launch: LaunchSettings
    output: Path
    warn: Callable[[str], None] = print
    options: dict = field(default_factory=dict)
    progress: Any = None
    launcher: Any = None


ExecutorFactory = Callable[[ExecutorContext], LanePool]
