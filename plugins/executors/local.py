"""Executor ``local``: one lane, this process measuring against the run's one server.

It is the in-process path every run took before lanes existed, behind the LanePool protocol
(:mod:`tsweep.lanes`): the runner hands it one trial at a time and ``submit`` measures it
there and then (``wait`` returns it). A point during which the server died comes back
failed with the cause; the server is started again before the next point (or when the
model is done), after the runner has stored the point, so a lost server never loses a
stored point and after :data:`tsweep.session.MAX_RESTARTS` deaths the run stops.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

from tsweep.executor import InProcessExecutor
from tsweep.lanes import ExecutorContext, Finished, Lane
from tsweep.measure import Decided, server_baseline
from tsweep.plugin import hookimpl
from tsweep.progress import Progress
from tsweep.records import Measurement, ModelSpec, RunningServer, Trial
from tsweep.session import ServerSession
from tsweep.settings import variant_loading

#: The one lane's name, as the store records it.
LANE = "local"


class LocalLanes:
    """One lane in this process; see the module docstring. ``executor`` measures (also the
    together mode's combinations, :mod:`tsweep.combotrials`), ``session`` holds the server."""

    def __init__(self, ctx: ExecutorContext):
        run, parts = ctx.run, ctx.run.profiling()
        launcher = ctx.launcher if ctx.launcher is not None else parts.launcher(ctx.launch)
        self.launch, self.hooks, self.interval = ctx.launch, run.hooks, run.config.monitoring_interval
        self.progress = ctx.progress or Progress()
        loading = variant_loading(run.config, launcher, ctx.output)
        self.session = ServerSession(launcher, ctx.output, run.config.server_ready_timeout_s, self._collectors, loading)
        self.executor = InProcessExecutor(self.session, parts.load_of, parts.load_generator, parts.method, self.progress.server_started)
        self._done: List[Finished] = []
        self._unsettled: Optional[Measurement] = None  # the last point, until the runner has stored it
        self._loaded: Optional[str] = None

    def _collectors(self, server: RunningServer) -> list:
        """The metric collectors for a (re)started server (some follow its process id; the
        GPU collector reads the run's GPUs, whatever the launcher said)."""
        return self.hooks.metric_collectors(dataclasses.replace(server, gpus=self.launch.gpus), self.interval)

    @property
    def restarts(self) -> int:
        return self.session.restarts

    def start(self) -> List[Lane]:
        server = self.session.start()
        self.progress.server_started(server)
        return [Lane(LANE, server.description)]

    def server_baseline(self, idle_s: float) -> Optional[Dict[str, float]]:
        if not self.session.collectors:
            return None
        return server_baseline(self.session.collectors, idle_s)

    def idle(self) -> List[str]:
        return [] if self._done else [LANE]

    def loaded(self, lane: str) -> Optional[str]:
        return self._loaded

    def submit(self, lane: str, model: ModelSpec, trial: Trial, decided: Optional[Decided]) -> None:
        self._settle()
        m = self.executor.measure(model, trial, decided)
        self._loaded = trial.variant.digest if m.status != "failed" else None
        self._unsettled = m
        self._done.append(Finished(LANE, model.name, trial, m))

    def wait(self, timeout_s: Optional[float] = None) -> List[Finished]:
        done, self._done = self._done, []
        return done

    def model_done(self, model: str) -> None:
        self._settle()
        self.executor.model_done()
        self._loaded = None

    def _settle(self) -> None:
        """The stored last point's server death, if any: start the server again (or stop the run)."""
        m, self._unsettled = self._unsettled, None
        if m is not None:
            self.executor.settle(m)

    def stop(self) -> None:
        self.session.stop()

    def description(self) -> str:
        return self.session.server.description if self.session.server else ""


@hookimpl
def tsweep_executors():
    return {"local": LocalLanes}
