"""``profile``: launch, generate, search, measure, store, rank, report.

The composition root of a run, callable without the CLI::

    from tsweep.config import load_config
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.sweep import profile

    outcome = profile(load_config(None, {...}), make_plugin_manager())

Everything the user could have got wrong is checked before anything is written or started.
Each finished measurement is committed to the results store at once; points already in the
store are not measured again, so rerunning the same command resumes.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from tsweep import analysis, files, goals, gpus, inputs, machine, race, repository
from tsweep.config import Config
from tsweep.errors import ServerError
from tsweep.judge import Judge, best_rival
from tsweep.loads import LoadSettings, make_load
from tsweep.measure import MIN_WINDOW_REQUESTS, Decided, MethodSettings, measure, server_baseline
from tsweep.pluginmanager import Hooks
from tsweep.progress import Progress
from tsweep.records import ContainerSettings, LaunchSettings, Measurement, ModelSpec, RankedConfig, SearchGoal, SpaceSettings, Trial, Variant
from tsweep.store import ResultsStore
from tsweep.session import ServerSession


@dataclass
class ProfileOutcome:
    """What a profile run produced: the ranking per model and the files written."""

    rankings: Dict[str, List[RankedConfig]]
    measured: int
    resumed: int
    store_path: Path
    server: str
    reports: List[Path] = field(default_factory=list)
    stable: int = 0
    measuring_s: float = 0.0
    overall: List[RankedConfig] = field(default_factory=list)  # num_top_model_configs across models
    failed: List[Measurement] = field(default_factory=list)  # points of this run that failed, with why
    server_restarts: int = 0

    def summary(self) -> str:
        """e.g. '21 points measured (18 stable) in 96 s of measuring, 4.6 s per point; 0 reused'."""
        per_point = f", {self.measuring_s / self.measured:.1f} s per point" if self.measured else ""
        failed = f"; {len(self.failed)} failed" if self.failed else ""
        restarts = f"; the server was restarted {self.server_restarts} time(s)" if self.server_restarts else ""
        return (
            f"{self.measured} points measured ({self.stable} stable) in {self.measuring_s:.0f} s of measuring{per_point}; "
            f"{self.resumed} reused from {self.store_path}{failed}{restarts}"
        )


def space_settings(config: Config, model: str) -> SpaceSettings:
    """The global bounds, overridden by the model's own entry in profile_models."""
    own = config.per_model.get(model, {})
    parameters = own.get("parameters", {})
    return SpaceSettings(
        min_instance_count=config.run_config_search_min_instance_count,
        max_instance_count=config.run_config_search_max_instance_count,
        min_model_batch_size=config.run_config_search_min_model_batch_size,
        max_model_batch_size=config.run_config_search_max_model_batch_size,
        min_concurrency=config.run_config_search_min_concurrency,
        max_concurrency=config.run_config_search_max_concurrency,
        concurrency=parameters.get("concurrency", tuple(config.concurrency)),
        request_rate=parameters.get("request_rate", tuple(config.request_rate)),
        batch_sizes=parameters.get("batch_sizes", tuple(config.batch_sizes)),
        model_config_parameters=own.get("model_config_parameters", {}),
        search_disable=config.run_config_search_disable,
        gpu_available=gpus.gpu_available(),
    )


def method_settings(config: Config) -> MethodSettings:
    return MethodSettings(
        window_s=config.measurement_window_s,
        throughput_precision=config.throughput_precision,
        latency_precision=config.latency_precision,
        min_windows=config.min_windows,
        max_windows=config.max_windows,
        warmup_s=min(0.5, config.measurement_window_s),
        min_requests=config.measurement_request_count or MIN_WINDOW_REQUESTS,
        max_error_fraction=config.max_error_fraction,
    )


def load_settings(config: Config) -> LoadSettings:
    return LoadSettings(
        protocol=config.client_protocol,
        shapes=inputs.parse_shapes(list(config.shape)),
        input_data=config.input_data,
        encoding=config.http_encoding,
        timeout_s=config.request_timeout_s,
        distribution=config.request_distribution,
    )


def launch_settings(config: Config, output: Path) -> LaunchSettings:
    return LaunchSettings(
        model_repository=output,
        log_dir=Path(config.checkpoint_directory),
        server_path=config.triton_server_path,
        server_flags=dict(config.triton_server_flags),
        http_endpoint=config.triton_http_endpoint,
        grpc_endpoint=config.triton_grpc_endpoint,
        metrics_url=config.triton_metrics_url,
        ready_timeout_s=config.server_ready_timeout_s,
        bind_address=config.triton_bind_address,
        source_repository=Path(config.model_repository).resolve() if config.model_repository else None,
        environment=dict(config.triton_server_environment),
        container=ContainerSettings(
            image=config.triton_docker_image,
            gpus=tuple(config.triton_gpus),
            shm_size=config.triton_docker_shm_size,
            mounts=tuple(config.triton_docker_mounts),
            labels=dict(config.triton_docker_labels),
        ),
        options=dict(config.triton_launch_options),
    )


def name_variants(model: str, variants: Sequence[Variant]) -> List[Variant]:
    """``<model>_config_default`` for the model's own config, ``<model>_config_<n>`` else."""
    named, n = [], 0
    for v in variants:
        if v.is_default:
            name = f"{model}_config_default"
        else:
            name, n = f"{model}_config_{n}", n + 1
        named.append(Variant(model=v.model, config=v.config, params=v.params, is_default=v.is_default, name=name))
    return named


def raise_open_file_limit() -> None:
    """Let the client (and the server it starts) hold one socket per request in flight.

    Concurrency 1024 needs over a thousand sockets on each side, more than the common soft
    limit of 1024; the hard limit is what the system allows us, so ask for it.
    """
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass  # not POSIX, or not allowed: high concurrency then reports connect errors


def profile(config: Config, hooks: Hooks, progress: Optional[Progress] = None) -> ProfileOutcome:
    progress = progress or Progress()
    # -- everything that can be wrong with the input, before anything is written ------
    models = repository.find_models(config.model_repository, config.profile_models)
    output = repository.check_output(config.output_model_repository_path, config.override_output_model_repository)
    files.check_writable(output, "output model repository", "--output-model-repository-path")
    files.check_writable(Path(config.checkpoint_directory), "checkpoint directory", "--checkpoint-directory")
    files.check_writable(Path(config.export_path), "export path", "--export-path")
    launcher = hooks.launcher(config.triton_launch_mode)(launch_settings(config, output))
    strategy_factory = hooks.search_strategy(config.run_config_search_mode)
    known = analysis.known_metrics(hooks.metric_infos())
    goals.objectives(config, known)  # raise on unknown metrics now, not after measuring
    goals.constraints(config, known)
    analysis.chosen_reporters(config, hooks)
    load = load_settings(config)
    spaces = {}
    for model in models:  # shapes, input data and spaces must fit every model, before anything runs
        specs, data = inputs.samples(model.config, load.shapes, load.input_data)
        settings = space_settings(config, model.name)
        for batch in settings.batch_sizes:
            inputs.batches(model.config, specs, data, batch)
        spaces[model.name] = hooks.config_space(model, settings)
    launcher.preflight()

    # -- run ----------------------------------------------------------------------------
    try:
        return _run(config, hooks, progress, models, output, launcher, strategy_factory, load, spaces)
    except OSError as exc:
        if exc.errno not in files.STORAGE_ERRNOS:
            raise
        raise files.storage_error(exc, f"finished points are kept in {config.checkpoint_path}: free space or fix the folder, then rerun to resume") from None


def _run(config: Config, hooks: Hooks, progress: Progress, models, output: Path, launcher, strategy_factory, load: LoadSettings, spaces) -> ProfileOutcome:
    repository.prepare_output(output, config.override_output_model_repository)
    raise_open_file_limit()
    store = ResultsStore.open(config.checkpoint_path)
    session = ServerSession(launcher, output, config.server_ready_timeout_s, lambda srv: hooks.metric_collectors(srv, config.monitoring_interval))
    runner = TrialRunner(store, session, load, method_settings(config), goals.search_goal(config), progress)
    try:
        try:  # stop() also when start() fails or is interrupted half-way (a container may exist)
            server = session.start()
            progress.server_started(server)
            store.set_meta("server", server.description)
            store.set_meta("machine", json.dumps(machine.describe()))
            if session.collectors and not store.server_baseline():  # a resumed run keeps the first one
                store.save_server_baseline(server_baseline(session.collectors, config.monitoring_interval))
            named = {}
            for model in models:
                variants = name_variants(model.name, spaces[model.name].variants)
                for v in variants:
                    store.add_variant(v)
                named.update({v.name: v for v in variants})
                space = dataclasses.replace(spaces[model.name], variants=tuple(variants))
                runner.search(model, strategy_factory(space, goals.search_goal(config)), len(variants))
            if config.remeasure_top_configs > 1 and config.remeasure_rounds:
                for model in models:
                    runner.race(model, store, config, hooks, {v.digest: v for v in named.values()})
        finally:
            session.stop()
        rankings = analysis.rank(store, config, hooks, [m.name for m in models])
        overall = analysis.rank_overall(store, config, hooks, [m.name for m in models]) if config.num_top_model_configs else []
        reports = analysis.write_reports(store, rankings, config, hooks, {})
    finally:
        store.close()
    return ProfileOutcome(
        rankings, runner.measured, runner.resumed, config.checkpoint_path, server.description, reports, runner.stable,
        runner.measuring_s, overall, runner.failed, session.restarts,
    )  # fmt: skip


class TrialRunner:
    """Measures trials one by one, committing each to the store; counts what it did.

    A point during which the server died is recorded as failed with the cause, and the
    server is restarted before the next point (see :mod:`tsweep.session`). A point ends
    early once the Judge says no decision it feeds can change (:meth:`Judge.decided`, against
    the best point of the model so far).
    """

    def __init__(self, store: ResultsStore, session: ServerSession, load: LoadSettings, method: MethodSettings, goal: SearchGoal, progress: Progress):
        self.store, self.session, self.load, self.method, self.goal, self.progress = store, session, load, method, goal, progress
        self.measured = self.resumed = self.stable = 0
        self.measuring_s = 0.0
        self.failed: List[Measurement] = []
        self.started = time.monotonic()
        self.planned = 0

    def search(self, model: ModelSpec, strategy, variants: int) -> None:
        """Propose -> measure -> propose until the strategy has nothing more to ask."""
        history = self.store.measurements(model.name)
        self.resumed += len(history)
        self.planned = getattr(strategy, "planned", lambda: 0)()
        self.progress.model_started(model.name, variants, self.planned, len(history))
        while self.run(model, strategy.propose(history), history):
            pass
        self.session.loader.unload()

    def race(self, model: ModelSpec, store: ResultsStore, config: Config, hooks: Hooks, variants: Mapping[str, Variant]) -> None:
        """The final race (:mod:`tsweep.race`): rounds of interleaved looks at the contenders
        until the Judge separates them or they reach their look limit."""
        history = store.measurements(model.name)
        goal = goals.search_goal(config)
        while True:
            ranking = analysis.rank(store, config, hooks, [model.name])[model.name]
            judge = Judge.from_history(goal, history)
            trials = race.next_looks(ranking, history, judge, config.remeasure_top_configs, 1 + config.remeasure_rounds, variants)
            if not self.run(model, trials, history):
                break
        self.session.loader.unload()

    def run(self, model: ModelSpec, trials: Sequence[Trial], history: List[Measurement]) -> int:
        """Measure the trials not yet in ``history`` (appending them); returns how many."""
        done = {m.key for m in history}
        todo = [t for t in trials if t.key not in done]
        for trial in todo:
            self.progress.trial_started(trial, len(history), self.planned, time.monotonic() - self.started)
            m = self.measure_one(trial, model, history)
            self.store.add(m)
            history.append(m)
            self.measured += 1
            self.stable += m.status == "ok"
            self.measuring_s += m.duration_s
            if m.status == "failed":
                self.failed.append(m)
            self.progress.trial_finished(m)
            if m.status == "failed" and m.error.startswith(SERVER_DIED):
                self.session.restart(m.error)
                self.progress.server_started(self.session.server)
        return len(todo)

    def measure_one(self, trial: Trial, model: ModelSpec, history: Sequence[Measurement]) -> Measurement:
        judge = Judge.from_history(self.goal, history)
        rival = best_rival(history, judge, trial.point)
        try:
            m = run_trial(trial, model, self.session, self.load, self.method, lambda p: judge.decided(p, rival))
        except ServerError as exc:  # the server stopped answering its statistics mid-point
            m = failed_point(trial, str(exc))
        if m.status == "failed":
            reason = self.session.death()
            if reason:
                m.error = f"{SERVER_DIED} during this point ({reason}); it was restarted. Before that: {m.error}"
        return m


#: How the error of a point lost to a server crash begins.
SERVER_DIED = "tritonserver died"


def failed_point(trial: Trial, error: str) -> Measurement:
    return Measurement(
        model=trial.variant.model, variant=trial.variant.name, variant_digest=trial.variant.digest,
        load_kind=trial.load.kind, load_value=trial.load.value, batch_size=trial.batch_size, repeat=trial.repeat,
        status="failed", error=error, variant_params=dict(trial.variant.params),
    )  # fmt: skip


def run_trial(trial: Trial, model: ModelSpec, session: ServerSession, load: LoadSettings, method: MethodSettings, decided: Optional[Decided] = None) -> Measurement:
    """Load the trial's variant and measure it; a variant that fails to load is a failed point."""
    try:
        session.loader.ensure(model, trial.variant)
    except ServerError as exc:
        return failed_point(trial, f"variant failed to load: {exc}")
    generator = make_load(trial, session.server, load)
    client = session.client
    return measure(trial, generator, lambda: client.stats(trial.variant.name), method, session.collectors, decided=decided)
