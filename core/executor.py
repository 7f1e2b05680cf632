"""Where trials are measured: the seam between choosing what to measure and measuring it.

The trial runner (:mod:`tsweep.trials`) decides which trials to run, in which order, and
keeps the books (the store, the progress lines); an executor measures one trial and hands
back its Measurement. Today the only executor measures in this process, against the run's
one server (:class:`InProcessExecutor`); one that runs trials in other processes or on other
machines (each with a server of its own) implements the same two methods.

A point during which the server died comes back failed with the cause; the in-process
executor restarts the server before the next point (:mod:`tsweep.session`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, List, Optional, Protocol, Sequence

from tsweep import pipeline, stagestats
from tsweep.combination import CombinationTrial
from tsweep.components import LoadGeneratorFactory
from tsweep.errors import ServerError
from tsweep.measure import Decided, MethodSettings, measure
from tsweep.records import LoadSettings, Measurement, ModelSpec, RunningServer, Trial
from tsweep.session import ServerSession
from tsweep.together import DecidedTogether, measure_together


class Executor(Protocol):
    """Measures trials; see the module docstring."""

    def measure(self, model: ModelSpec, trial: Trial, decided: Optional[Decided]) -> Measurement:
        """Measure ``trial`` of ``model`` (its variant loaded first) and return the point,
        failed with the cause rather than raising when the point or the server fails.
        ``decided(point so far)`` may end the point early (:meth:`tsweep.judge.Judge.decided`)."""
        ...

    def settle(self, m: Measurement) -> None:
        """Called once ``m`` is stored: an executor whose server died during the point starts
        it again now (raising when it cannot), so a lost server never loses a stored point."""
        ...

    def model_done(self) -> None:
        """The runner has no more trials of the current model for now (free what it holds)."""
        ...


class InProcessExecutor:
    """Measures trials one at a time in this process, against ``session``'s server.

    ``load_of(model name)`` gives the load settings of a model's points; ``on_restart(server)``
    is told when the server had to be started again."""

    def __init__(
        self, session: ServerSession, load_of: Callable[[str], LoadSettings], generator: LoadGeneratorFactory,
        method: MethodSettings, on_restart: Callable[[RunningServer], None] = lambda server: None,
    ):  # fmt: skip
        self.session, self.load_of, self.generator, self.method = session, load_of, generator, method
        self.on_restart = on_restart

    def measure(self, model: ModelSpec, trial: Trial, decided: Optional[Decided]) -> Measurement:
        try:
            m = run_trial(trial, model, self.session, self.load_of(model.name), self.generator, self.method, decided)
        except ServerError as exc:  # the server stopped answering its statistics mid-point
            m = failed_point(trial, str(exc))
        if m.status == "failed":
            reason = self.session.death()
            if reason:
                m.error = f"{SERVER_DIED} during this point ({reason}); it was restarted. Before that: {m.error}"
        return m

    def measure_together(self, models: Sequence[ModelSpec], point: CombinationTrial, decided: Optional[DecidedTogether]) -> List[Measurement]:
        """One combination point (:mod:`tsweep.together`): a row per model, all failed with
        the cause when the combination cannot be loaded or the server fails."""
        try:
            rows = run_combination(point, models, self.session, self.load_of, self.generator, self.method, decided)
        except ServerError as exc:
            rows = [failed_point(t, str(exc), point.id) for t in point.trials()]
        if any(m.status == "failed" for m in rows):
            reason = self.session.death()
            if reason:
                for m in rows:
                    m.status = "failed"
                    m.error = f"{SERVER_DIED} during this point ({reason}); it was restarted. Before that: {m.error or 'measured'}"
        return rows

    def settle(self, m: Measurement) -> None:
        if m.status == "failed" and m.error.startswith(SERVER_DIED):
            self.session.restart(m.error)
            self.on_restart(self.session.server)

    def model_done(self) -> None:
        self.session.loader.unload()


#: How the error of a point lost to a server crash begins.
SERVER_DIED = "tritonserver died"


def failed_point(trial: Trial, error: str, combination: str = "") -> Measurement:
    return Measurement(
        model=trial.variant.model, variant=trial.variant.name, variant_digest=trial.variant.digest,
        load_kind=trial.load.kind, load_value=trial.load.value, batch_size=trial.batch_size, repeat=trial.repeat,
        status="failed", error=error, variant_params=dict(trial.variant.params), combination=combination,
    )  # fmt: skip


def run_combination(
    point: CombinationTrial, models: Sequence[ModelSpec], session: ServerSession, load_of: Callable[[str], LoadSettings],
    generator: LoadGeneratorFactory, method: MethodSettings, decided: Optional[DecidedTogether] = None,
) -> List[Measurement]:  # fmt: skip
    """Load every variant of the combination together, then measure all models' loads in
    common windows; a combination that cannot be loaded is a failed row per model, each
    saying which variant failed and why (the others are loaded, so memory may be the cause)."""
    by_name = {m.name: m for m in models}
    members = [(by_name[v.model], v) for v in point.combination.members]
    trials = point.trials()
    try:
        session.loader.ensure_together(members)
    except ServerError as exc:
        why = f"the combination failed to load together: {exc}"
        return [failed_point(t, why, point.id) for t in trials]
    client = session.client
    loads, stats = [], []
    for (model, variant), trial in zip(members, trials):
        served = session.loader.served_name(model, variant)
        as_served = trial if served == variant.name else dataclasses.replace(trial, variant=dataclasses.replace(variant, name=served))
        loads.append(generator(as_served, session.server, load_of(model.name)))
        stats.append(lambda served=served: client.stats(served))
    rows = measure_together(trials, loads, stats, method, point.id, session.collectors, decided=decided)
    broken = next((m for m in rows if m.status == "failed"), None)
    for m in rows:  # the combination failed as a whole: every model's row says why (its figures are kept)
        if broken is not None and m.status != "failed":
            m.status, m.error = "failed", f"the combination failed: {broken.variant} of {broken.model}: {broken.error}"
    return rows


def run_trial(
    trial: Trial, model: ModelSpec, session: ServerSession, load: LoadSettings, generator: LoadGeneratorFactory, method: MethodSettings,
    decided: Optional[Decided] = None,
) -> Measurement:  # fmt: skip
    """Load the trial's variant and measure it; a variant that fails to load is a failed point.

    Requests and statistics name the variant as the server knows it, which in remote mode may
    be the model's own name (:mod:`tsweep.loading`); the point is stored under the variant."""
    try:
        session.loader.ensure(model, trial.variant)
    except ServerError as exc:
        return failed_point(trial, f"variant failed to load: {exc}")
    client = session.client
    served = session.loader.served_name(model, trial.variant)
    as_served = trial if served == trial.variant.name else dataclasses.replace(trial, variant=dataclasses.replace(trial.variant, name=served))
    sender = generator(as_served, session.server, load)
    parts = {part.model: pipeline.served_name(trial.variant, part) for part in trial.variant.composing}
    stages = stagestats.StageRecorder(client.stats, parts, pipeline.instances_of(trial.variant))
    m = measure(trial, sender, stages.wrap(lambda: client.stats(served)), method, session.collectors, decided=decided)
    m.metrics.update(stages.metrics())  # a pipeline's per-stage figures, over the point's windows
    return m
