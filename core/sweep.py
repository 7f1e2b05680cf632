"""``profile``: launch, generate, search, measure, store, rank, report.

The composition root of a run, callable without the CLI::

    from tsweep.config import load_config
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.run import Run
    from tsweep.sweep import profile

    outcome = profile(Run.build(load_config(None, {...}), make_plugin_manager(), sweep=True))

Everything the user could have got wrong is checked before anything is written or started.
Each finished measurement is committed to the results store at once; points already in the
store are not measured again, so rerunning the same command resumes.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

from tsweep import analysis, combosearch, files, generative, inputs, machine, pipeline, repository, sequences
from tsweep.comboranking import RankedCombination
from tsweep.combotrials import CombinationWalker
from tsweep.config import LOCAL_EXECUTOR, ConfigWarning
from tsweep.errors import UsageError
from tsweep.lanes import ExecutorContext, LanePool
from tsweep.loadlog import LoadLog
from tsweep.progress import Progress
from tsweep.records import ConfigSpace, Measurement, RankedConfig, Trial, Variant
from tsweep.run import Run
from tsweep.settings import launch_settings, space_settings, together_mode, variant_loading
from tsweep.store import ResultsStore
from tsweep.trials import TrialRunner


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
    combinations: List[RankedCombination] = field(default_factory=list)  # models profiled together, best first
    by_lane: Dict[str, int] = field(default_factory=dict)  # points measured per lane

    def summary(self) -> str:
        """e.g. '21 points measured (18 stable) in 96 s of measuring, 4.6 s per point; 0 reused'."""
        per_point = f", {self.measuring_s / self.measured:.1f} s per point" if self.measured else ""
        failed = f"; {len(self.failed)} failed" if self.failed else ""
        restarts = f"; the server was restarted {self.server_restarts} time(s)" if self.server_restarts else ""
        lanes = f"; per lane: {', '.join(f'{lane} {n}' for lane, n in sorted(self.by_lane.items()))}" if len(self.by_lane) > 1 else ""
        return (
            f"{self.measured} points measured ({self.stable} stable) in {self.measuring_s:.0f} s of measuring{per_point}; "
            f"{self.resumed} reused from {self.store_path}{failed}{restarts}{lanes}"
        )


def name_variants(model: str, variants: Sequence[Variant]) -> List[Variant]:
    """``<model>_config_default`` for the model's own config, ``<model>_config_<n>`` else."""
    named, n = [], 0
    for v in pipeline.name_composing(variants):  # a pipeline's composing variants first
        if v.is_default:
            name = f"{model}_config_default"
        else:
            name, n = f"{model}_config_{n}", n + 1
        named.append(dataclasses.replace(v, name=name))
    return named


def composing_parameters(config) -> dict:
    """Every composing model's own settings (ensemble_composing_models, bls_composing_models)."""
    return {**config.ensemble_composing_models, **config.bls_composing_models}


def _warn(line: str) -> None:
    """An executor's one-line warning, on stderr beside the progress lines."""
    print(line, file=sys.stderr)


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


def profile(run: Run, progress: Optional[Progress] = None) -> ProfileOutcome:
    """Sweep every model of ``run`` (built with ``Run.build(config, hooks, sweep=True)``):
    search each, race the contenders, rank, report. The same steps as :class:`Sweep`'s."""
    sweep = Sweep(run, progress)
    with sweep:
        if sweep.together:
            sweep.search_together()
        else:
            sweep.search_all([model.name for model in sweep.models])
            sweep.race()
    return sweep.finish()


class Sweep:
    """A profile run, step by step, for library users who want to drive it::

        sweep = Sweep(Run.build(config, hooks, sweep=True))   # checks every input; writes nothing
        with sweep:                                           # output repository, store, server up
            sweep.search("mlp")                               # the strategy's points, stored as measured
            sweep.race()                                      # the final race over every searched model
        outcome = sweep.finish()                              # rankings and reports, from the store

    ``executor`` decides where trials are measured: ``local`` (this process, the run's one
    server) or lanes elsewhere (:mod:`tsweep.lanes`). Leaving the ``with`` block stops every
    lane's server (also on errors and Ctrl-C, which close the store too); otherwise the store stays open until :meth:`finish`. A storage fault mid-run becomes one
    :class:`tsweep.errors.StorageError` line saying the finished points are kept."""

    def __init__(self, run: Run, progress: Optional[Progress] = None):
        self.run, self.progress = run, progress or Progress()
        config, parts = run.config, run.profiling()
        if config.perf_output:  # Model Analyzer's per-point perf_analyzer output, in tsweep's terms
            log = Path(config.perf_output_path) if config.perf_output_path else None
            if log is not None:
                files.check_writable(log.parent, "load log folder", "--perf-output-path")
            self.progress = LoadLog(self.progress, log)
        # -- everything that can be wrong with the input, before anything is written ------
        self.models = repository.find_models(config.model_repository, config.profile_models)
        self.models = pipeline.attach(self.models, config.model_repository, config.ensemble_composing_models, config.bls_composing_models)
        self.output = repository.check_output(config.output_model_repository_path, config.override_output_model_repository)
        files.check_writable(self.output, "output model repository", "--output-model-repository-path")
        files.check_writable(Path(config.checkpoint_directory), "checkpoint directory", "--checkpoint-directory")
        files.check_writable(Path(config.export_path), "export path", "--export-path")
        self.launch = launch_settings(config, self.output)  # resolves the gpus key: an unknown GPU stops here
        self.launcher = parts.launcher(self.launch)
        if config.executor != LOCAL_EXECUTOR and not getattr(self.launcher, "serves_output_repository", True):
            raise UsageError(
                f"executor {config.executor} starts a server on every lane, but launch mode {config.triton_launch_mode} attaches to one "
                "you run: use triton_launch_mode local or docker, or executor local"
            )
        self.loading = variant_loading(config, self.launcher, self.output)
        self.spaces = {}
        sequences.check_run(config, self.models, parts.load_of)
        for model in self.models:  # shapes, input data and spaces must fit every model, before anything runs
            load = parts.load_of(model.name)
            repository.check_version(model, load.model_version)
            generative.check(model.name, model.config, load)
            self.loading.check(model)
            specs, data = inputs.samples(model.config, load.shapes, load.input_data)
            settings = space_settings(config, model.name)
            for batch in settings.batch_sizes:
                inputs.batches(model.config, specs, data, batch)
            for part in model.composing:
                self.loading.check(part)
            space = self._space(model, settings)
            sequences.check_levels(model.config, load, space.load_levels)
            self.spaces[model.name] = space
        self.together = self._together(config)
        self.launcher.preflight()
        context = ExecutorContext(
            run=run, models=self.models, launch=self.launch, output=self.output, warn=_warn,
            options=dict(run.hooks.options), progress=self.progress, launcher=self.launcher,
        )  # fmt: skip
        self.pool: LanePool = parts.executor(context)  # the executor's own checks (cluster, resources): nothing started yet
        lane_gpus = getattr(self.pool, "lane_gpus", None)
        if lane_gpus is not None:  # the lanes' servers see other GPUs than this machine: their spaces follow the lanes
            for model in self.models:
                self.spaces[model.name] = self._space(model, space_settings(config, model.name, lane_gpus))
        self.store: Optional[ResultsStore] = None
        self.runner: Optional[TrialRunner] = None
        self.server_description = ""
        self.variants: Dict[str, Dict[str, Variant]] = {}  # model -> digest -> variant, of every model searched
        # (per model: two models with equal configs share digests, and a race must load its own model's variant)
        self.searched: List[str] = []

    def _space(self, model, settings) -> ConfigSpace:
        """The model's space from ``settings`` (an ensemble's or BLS model's: its composing
        models' spaces combined); with reload_model_disable, the server's model as it is."""
        config, hooks = self.run.config, self.run.hooks
        space = hooks.config_space(model, settings)
        if model.composing:
            parameters = composing_parameters(config)
            stages = [hooks.config_space(part, pipeline.composing_settings(settings, model, part, parameters, config.cpu_only_composing_models)) for part in model.composing]
            space = pipeline.space(model, space, stages)
        if config.reload_model_disable:  # nothing else can be loaded
            space = dataclasses.replace(space, variants=(pipeline.served_as_is(model),))
        return space

    def _together(self, config) -> bool:
        """Whether the models are profiled together (checked before anything is written):
        one model alone is profiled as usual, with a warning; a strategy that cannot walk
        combinations is one error line."""
        if not config.run_config_profile_models_concurrently_enable:
            return False
        if len(self.models) < 2:
            warnings.warn(
                f"run_config_profile_models_concurrently_enable has nothing to combine: only {self.models[0].name} is listed, "
                "so it is profiled alone; list two or more models in profile_models to profile them together",
                ConfigWarning, stacklevel=3,
            )  # fmt: skip
            return False
        mode = together_mode(config)
        if mode not in combosearch.MODES:
            raise UsageError(
                f"run_config_search_mode {mode} does not search combinations of models profiled together: "
                f"choose {', '.join(combosearch.MODES)}, or drop run_config_profile_models_concurrently_enable"
            )
        pipelines = [m.name for m in self.models if m.composing]
        if pipelines:  # a combination loads one variant per model; a pipeline's stages would need their own books
            raise UsageError(
                f"{pipelines[0]} is a pipeline (ensemble or BLS) and pipelines are not profiled together with other models yet: "
                "profile it in a run of its own, or drop run_config_profile_models_concurrently_enable"
            )
        if config.measurement_mode == "count_windows":
            raise UsageError("models profiled together share time windows: set measurement_mode time_windows, or profile them one at a time")
        return True

    # -- the steps ------------------------------------------------------------------------
    def __enter__(self) -> "Sweep":
        with self._storage_faults():
            config = self.run.config
            repository.prepare_output(self.output, config.override_output_model_repository)
            raise_open_file_limit()
            self.store = ResultsStore.open(config.checkpoint_path)
            try:  # stop() also when start() fails or is interrupted half-way (a container may exist)
                lanes = self.pool.start()
                if config.executor != LOCAL_EXECUTOR:
                    self.progress.lanes_started(lanes)
                self.runner = TrialRunner(self.store, self.pool, lambda model: self.run.goals_of(model).goal, self.progress, lanes)
                self.server_description = self.pool.description()
                self.store.set_meta("server", self.server_description)
                self.store.set_meta("machine", json.dumps(machine.describe()))
                sample = getattr(self.pool, "server_baseline", None)
                if sample is not None and not self.store.server_baseline():  # a resumed run keeps the first one
                    baseline = sample(config.duration_seconds or config.monitoring_interval)
                    if baseline is not None:
                        self.store.save_server_baseline(baseline)
            except BaseException as exc:
                self.__exit__(type(exc), exc, None)
                raise
        return self

    def search(self, model_name: str) -> None:
        """Search one model with the run's strategy; every point is stored as it is measured."""
        self.search_all([model_name])

    def search_all(self, model_names: Sequence[str]) -> None:
        """Search the models with the run's strategy, one after another on one lane and at
        once on several (when one model's trials leave lanes idle); every point is stored as
        it is measured."""
        searches = []
        for name in model_names:
            model = next((m for m in self.models if m.name == name), None)
            if model is None:
                raise ValueError(f"{name!r} is not among this sweep's models: {', '.join(m.name for m in self.models)}")
            searches.append(model)
        with self._storage_faults():
            jobs = []
            for model in searches:
                variants = name_variants(model.name, self.spaces[model.name].variants)
                for v in variants:
                    self.store.add_variant(v)
                self.variants.setdefault(model.name, {}).update({v.digest: v for v in variants})
                space = dataclasses.replace(self.spaces[model.name], variants=tuple(variants))
                goal = self.run.goals_of(model.name).goal
                jobs.append((model, self.run.profiling().strategy(space, goal), len(variants)))
            self.runner.search_all(jobs)
            self.searched.extend(model.name for model in searches)

    def search_together(self) -> None:
        """Search combinations of every model's variants (:mod:`tsweep.combosearch`), each
        combination measured with all models loaded and loaded at once; every row is stored
        as it is measured, each model's own, linked by its combination point."""
        with self._storage_faults():
            variants = {}
            for model in self.models:
                named = name_variants(model.name, self.spaces[model.name].variants)
                for v in named:
                    self.store.add_variant(v)
                self.variants.setdefault(model.name, {}).update({v.digest: v for v in named})
                variants[model.name] = named
            levels = {name: self.spaces[name].load_levels for name in variants}
            batch = self.spaces[self.models[0].name].batch_sizes[0]
            config = self.run.config
            own = [space_settings(config, name) for name in variants]  # every model listed its loads (its own or the global)
            listed = config.run_config_search_disable or all(s.concurrency or s.request_rate for s in own)
            walker = CombinationWalker(self.runner, self.pool.executor, self.run, self.models, levels, batch, listed)
            combinations = 1
            for named in variants.values():
                combinations *= len(named)
            self.runner.planned = combinations * len(walker.steps) * len(self.models)  # every combination: brute's, the most
            self.progress.model_started(" + ".join(variants), sum(len(v) for v in variants.values()), self.runner.planned, len(walker.history))
            combosearch.search(together_mode(config), variants, walker)
            self.pool.model_done(" + ".join(variants))
            self.searched.extend(variants)

    def measure_later(self, model_name: str, trials: Sequence[Trial]) -> int:
        """Measure ``trials`` of a model after its search (``tsweep report
        --complete-load-curves``): each point is stored as it is measured and marked as
        measured later; points already in the store are skipped. Returns how many were measured."""
        model = next(m for m in self.models if m.name == model_name)
        with self._storage_faults():
            for t in trials:
                self.store.add_variant(t.variant)
            history = self.store.measurements(model.name)
            before = {m.key for m in history}
            self.runner.planned = len(history) + len(trials)
            count = self.runner.run(model, trials, history)
            self.store.mark_measured_later(m.key for m in history if m.key not in before)
        return count

    def close(self) -> None:
        """Close the store without ranking or reporting (after :meth:`measure_later`)."""
        if self.store is not None:
            self.store.close()

    def race(self) -> None:
        """The final race over every model searched so far (when re-measuring is on)."""
        config = self.run.config
        if config.remeasure_top_configs > 1 and config.remeasure_rounds:
            with self._storage_faults():
                self.runner.race_all([m for m in self.models if m.name in self.searched], self.run, self.variants)

    def __exit__(self, exc_type, exc, tb) -> None:
        """Stop every lane's server; on an error also close the store (every finished point is in it)."""
        try:
            self.pool.stop()
        finally:
            if exc_type is not None and self.store is not None:
                self.store.close()

    def finish(self) -> ProfileOutcome:
        """Rank every model of the sweep from the store and write the reports; closes the store."""
        names = [m.name for m in self.models]
        try:
            with self._storage_faults():
                rankings = analysis.rank(self.store, self.run, names)
                overall = analysis.rank_overall(self.store, self.run, names) if self.run.config.num_top_model_configs else []
                detailed = analysis.top_configs(rankings, self.run.config.num_configs_per_model)
                combinations = analysis.rank_together(self.store, self.run, names) if self.together else []
                reports = analysis.write_reports(self.store, rankings, self.run, detailed, overall, combinations)
        finally:
            self.store.close()
        r = self.runner
        return ProfileOutcome(
            rankings, r.measured, r.resumed, self.run.config.checkpoint_path, self.server_description, reports, r.stable,
            r.measuring_s, overall, r.failed, getattr(self.pool, "restarts", 0), combinations, dict(r.by_lane),
        )  # fmt: skip

    @contextmanager
    def _storage_faults(self) -> Iterator[None]:
        """A full or read-only disk becomes one line that says the finished points are kept."""
        try:
            yield
        except OSError as exc:
            if exc.errno not in files.STORAGE_ERRNOS:
                raise
            where = self.run.config.checkpoint_path
            raise files.storage_error(exc, f"finished points are kept in {where}: free space or fix the folder, then rerun to resume") from None
