"""The trial runner over several lanes (tsweep.trials), against a scripted lane pool.

ScriptedPool is a test double of the LanePool boundary (tsweep.lanes) and only of that: its
lanes "measure" a trial at once from a deterministic throughput surface, finish in the order
they were sent (or all together), and lose a trial where a test's script says, as a Ray
worker or node that dies would. Everything else is real: the runner, the brute and
exhaustive strategies, the Judge and the SQLite results store. The local executor's real
server path is covered by the end-to-end tests (test_profile_e2e, test_faults, ...).
"""
from __future__ import annotations

import shutil
import dataclasses
import sqlite3
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

from tests.support import MODEL_REPOSITORY, tree
from tsweep import modelconfig
from tsweep.config import load_config
from tsweep.errors import ServerError, UsageError
from tsweep.lanes import Finished, Lane, LanePool
from tsweep.plugin import hookimpl
from tsweep.pluginmanager import make_plugin_manager
from tsweep.plugins.search.automatic_space import tsweep_config_space
from tsweep.plugins.search.brute import BruteSearch
from tsweep.plugins.search.exhaustive import ExhaustiveSearch
from tsweep.plugins.search.quick import QuickSearch
from tsweep.progress import Progress
from tsweep.records import LoadLevel, Measurement, ModelSpec, SearchGoal, SpaceSettings, Trial
from tsweep.run import Run
from tsweep.store import SCHEMA_VERSION, ResultsStore
from tsweep.sweep import Sweep, name_variants, profile
from tsweep.trials import TrialRunner

CONFIG = modelconfig.parse('name: "m" backend: "python" max_batch_size: 4 instance_group [{count: 1 kind: KIND_CPU}]')


def model_and_space(name: str, **settings):
    model = ModelSpec(name, None, CONFIG)
    space = tsweep_config_space(model, SpaceSettings(**settings))
    return model, type(space)(space.model, tuple(name_variants(name, space.variants)), space.load_levels, space.batch_sizes)


def surface(trial: Trial) -> float:
    """Throughput that grows with load until the variant's capacity, which grows with instances
    and max_batch_size up to a point: walks flatten and rows stop improving."""
    params = trial.variant.params
    capacity = 150.0 * params.get("instances", 1) + 10.0 * min(params.get("max_batch_size", 1), 4)
    return min(100.0 * trial.load.value, capacity)


class ScriptedPool:
    """See the module docstring. ``lose(lane, trial)`` returns why the lane is lost with that
    trial in flight, or "" when it measures it; ``together``: every busy lane finishes at
    once in each wait() (so several lanes are idle together)."""

    def __init__(self, lanes: int = 2, lose: Callable[[str, Trial], str] = lambda lane, trial: "", together: bool = False):
        self.names = [f"lane {i + 1}" for i in range(lanes)]
        self.lose, self.together = lose, together
        self.live = set(self.names)
        self.busy: Dict[str, Tuple[str, Trial]] = {}
        self.order: List[str] = []  # busy lanes, oldest first
        self.on: Dict[str, Optional[str]] = {}  # lane -> digest of its loaded variant
        self.sent: List[Tuple[str, str, Trial]] = []
        self.most_in_flight = self.most_models_at_once = 0
        self.models_done: List[str] = []
        self.stopped = False

    def start(self) -> List[Lane]:
        return [Lane(n, f"scripted {n}") for n in self.names]

    def idle(self) -> List[str]:
        return [n for n in self.names if n in self.live and n not in self.busy]

    def loaded(self, lane: str) -> Optional[str]:
        return self.on.get(lane)

    def submit(self, lane, model, trial, decided) -> None:
        assert lane in self.idle(), f"{lane} is not idle"
        self.busy[lane] = (model.name, trial)
        self.order.append(lane)
        self.sent.append((lane, model.name, trial))
        self.most_in_flight = max(self.most_in_flight, len(self.busy))
        self.most_models_at_once = max(self.most_models_at_once, len({m for m, _ in self.busy.values()}))

    def wait(self, timeout_s=None) -> List[Finished]:
        ending = list(self.order) if self.together else self.order[:1]
        assert ending, "wait() with nothing in flight would block for ever"
        done = []
        for lane in ending:
            self.order.remove(lane)
            model, trial = self.busy.pop(lane)
            why = self.lose(lane, trial)
            if why:
                self.live.discard(lane)
                done.append(Finished(lane, model, trial, lost=why))
                continue
            self.on[lane] = trial.variant.digest
            done.append(Finished(lane, model, trial, measured(trial, model)))
        return done

    def model_done(self, model: str) -> None:
        self.models_done.append(model)

    def stop(self) -> None:
        self.stopped = True

    def description(self) -> str:
        return f"{len(self.names)} scripted lanes"


def measured(trial: Trial, model: str) -> Measurement:
    return Measurement(
        model=model, variant=trial.variant.name, variant_digest=trial.variant.digest, load_kind=trial.load.kind,
        load_value=trial.load.value, batch_size=trial.batch_size, repeat=trial.repeat, status="ok", throughput=surface(trial),
        latency_p99_ms=1.0, throughput_ci=0.0, latency_p99_ci_ms=0.0, duration_s=1.0,
    )  # fmt: skip  # exact figures: the surface has no noise


class Lines(Progress):
    def __init__(self):
        self.started: List[str] = []
        self.lost: List[Tuple[str, str, bool]] = []

    def trial_started(self, trial, done, planned, elapsed_s, lane=""):
        self.started.append(lane)

    def lane_lost(self, lane, why, trial, retried):
        self.lost.append((lane, why, retried))


def runner_for(tmp_path: Path, pool: ScriptedPool, name: str = "results.sqlite") -> Tuple[TrialRunner, ResultsStore, Lines]:
    assert isinstance(pool, LanePool)
    store, lines = ResultsStore.open(tmp_path / name), Lines()
    return TrialRunner(store, pool, lambda model: SearchGoal(), lines, pool.start()), store, lines


BRUTE = dict(max_instance_count=2, min_model_batch_size=2, max_model_batch_size=16, concurrency=(1, 2, 4, 8, 16))


def sweep_with(strategy, tmp_path: Path, pool: ScriptedPool, name: str) -> Tuple[List[Measurement], ScriptedPool]:
    runner, store, _ = runner_for(tmp_path, pool, name)
    model, space = model_and_space("m", **BRUTE)
    runner.search(model, strategy(space, SearchGoal()), len(space.variants))
    return store.measurements("m"), pool


@pytest.mark.parametrize("strategy", [BruteSearch, QuickSearch, ExhaustiveSearch], ids=["brute", "quick", "exhaustive"])
def test_two_lanes_measure_the_points_one_lane_measures_each_stored_once(tmp_path, strategy):
    one, _ = sweep_with(strategy, tmp_path, ScriptedPool(lanes=1), "one.sqlite")
    two, pool = sweep_with(strategy, tmp_path, ScriptedPool(lanes=2), "two.sqlite")
    keys = [m.key for m in two]
    assert len(keys) == len(set(keys)) == len(pool.sent)  # every trial sent once, stored once
    assert set(keys) == {m.key for m in one}
    if strategy is BruteSearch:
        assert 8 < len(keys) < len(model_and_space("m", **BRUTE)[1].variants) * 5  # walks and rows did stop early
    assert pool.most_in_flight == 2
    per_lane = {lane: sum(m.lane == lane for m in two) for lane in pool.names}
    assert all(n > 0 for n in per_lane.values()) and sum(per_lane.values()) == len(two)
    assert {m.lane for m in one} == {"lane 1"}


def test_a_trial_goes_to_the_idle_lane_that_has_its_variant_loaded(tmp_path):
    pool = ScriptedPool(lanes=2, together=True)
    runner, store, _ = runner_for(tmp_path, pool)
    model, space = model_and_space("m", max_instance_count=1, min_model_batch_size=4, max_model_batch_size=4)
    x, y = space.variants[:2]
    c = [LoadLevel("concurrency", v) for v in (1, 2, 4)]
    trials = [Trial(x, c[0]), Trial(y, c[0]), Trial(y, c[1]), Trial(x, c[1]), Trial(x, c[2]), Trial(y, c[2])]
    assert runner.run(model, trials, []) == 6
    lanes_of = {v.name: {m.lane for m in store.measurements("m") if m.variant == v.name} for v in (x, y)}
    assert lanes_of == {x.name: {"lane 1"}, y.name: {"lane 2"}}  # y's second trial, first in line, took lane 2 where y was loaded


def test_a_point_lost_with_its_lane_is_retried_once_on_the_other_and_stored_with_it(tmp_path):
    lost = []

    def lose(lane, trial):
        if lane == "lane 2" and not lost:
            lost.append(trial.key)
            return "worker died (SIGKILL)"
        return ""

    pool = ScriptedPool(lanes=2, lose=lose)
    runner, store, lines = runner_for(tmp_path, pool)
    model, space = model_and_space("m", max_instance_count=1, min_model_batch_size=4, max_model_batch_size=4, concurrency=(1, 2, 4))
    runner.search(model, ExhaustiveSearch(space, SearchGoal()), len(space.variants))
    rows = store.measurements("m")
    assert len(rows) == len({m.key for m in rows}) == len(space.variants) * 3  # nothing lost, nothing twice
    (again,) = [m for m in rows if m.key == lost[0]]
    assert again.status == "ok" and again.lane == "lane 1"
    assert lines.lost == [("lane 2", "worker died (SIGKILL)", True)]
    assert all(lane == "lane 1" for lane, _, _ in pool.sent[pool.sent.index(next(s for s in pool.sent if s[2].key == lost[0])) + 1:])
    assert runner.lost == ["lane 2: worker died (SIGKILL)"]


def test_a_point_lost_twice_is_stored_failed_with_both_causes_and_no_lane_left_stops_with_one_line(tmp_path):
    doomed = []

    def lose(lane, trial):
        if not doomed and len(pool.sent) >= 3:
            doomed.append(trial.key)
        return f"node of {lane} gone" if trial.key in doomed else ""

    pool = ScriptedPool(lanes=2, lose=lose)
    runner, store, lines = runner_for(tmp_path, pool)
    model, space = model_and_space("m", max_instance_count=1, min_model_batch_size=4, max_model_batch_size=4, concurrency=(1, 2, 4))
    with pytest.raises(ServerError) as stop:
        runner.search(model, ExhaustiveSearch(space, SearchGoal()), len(space.variants))
    message = str(stop.value)
    assert "\n" not in message and "no lane is left" in message and "rerun the command to resume" in message
    rows = store.measurements("m")
    (failed,) = [m for m in rows if m.status == "failed"]
    assert failed.key == doomed[0]
    assert "lane 1: node of lane 1 gone" in failed.error and "lane 2: node of lane 2 gone" in failed.error
    assert [retried for _, _, retried in lines.lost] == [True, False]
    assert len(rows) == len({m.key for m in rows}) >= 3  # the points finished before are kept


def test_when_every_lane_is_lost_the_run_stops_and_the_finished_points_are_kept(tmp_path):
    """Two models keep both lanes busy; both lanes go with a point each in flight: neither is
    stored (nothing measured it), the run stops with one line, and a rerun measures the rest."""
    models = [model_and_space(n, max_instance_count=1, min_model_batch_size=4, max_model_batch_size=4, concurrency=(1, 2, 4)) for n in "ab"]

    def searches():
        return [(m, ExhaustiveSearch(s, SearchGoal()), len(s.variants)) for m, s in models]

    pool = ScriptedPool(lanes=2, lose=lambda lane, trial: "the Ray node went away" if len(pool.sent) > 2 else "")
    runner, store, lines = runner_for(tmp_path, pool)
    with pytest.raises(ServerError, match="no lane is left to measure on") as stop:
        runner.search_all(searches())
    assert "\n" not in str(stop.value) and not pool.live
    assert [retried for _, _, retried in lines.lost] == [True, True]  # each waited for another lane; none was left
    kept = {m.key: m for name in "ab" for m in store.measurements(name)}
    assert len(kept) == 1 and all(m.status == "ok" for m in kept.values())  # a1; b1 and a2 were in flight
    store.close()
    pool = ScriptedPool(lanes=2)
    runner, store, _ = runner_for(tmp_path, pool)
    runner.search_all(searches())
    assert not any(t.key in kept for _, _, t in pool.sent)  # the rerun resumed: kept points are not measured again
    assert sum(len(store.measurements(name)) for name in "ab") == 2 * len(models[0][1].variants) * 3


def test_two_models_are_searched_at_once_over_two_lanes_and_one_after_another_on_one(tmp_path):
    (a, space_a), (b, space_b) = (model_and_space(n, max_instance_count=1, min_model_batch_size=4, max_model_batch_size=4, concurrency=(1, 2)) for n in "ab")
    for lanes in (2, 1):
        pool = ScriptedPool(lanes=lanes)
        runner, store, lines = runner_for(tmp_path, pool, f"{lanes}.sqlite")
        runner.search_all([(a, ExhaustiveSearch(space_a, SearchGoal()), 2), (b, ExhaustiveSearch(space_b, SearchGoal()), 2)])
        assert len(store.measurements("a")) == len(store.measurements("b")) == 4
        assert pool.models_done == ["a", "b"]
        if lanes == 2:  # a's answers keep both lanes busy until its last points are in flight: then b starts beside them
            assert pool.most_models_at_once == 2 and set(lines.started) == {"lane 1", "lane 2"}
        else:
            assert [model for _, model, _ in pool.sent] == ["a"] * 4 + ["b"] * 4 and set(lines.started) == {""}


class ScriptedExecutor:
    """A plugin offering the scripted pool as executor ``scripted``, as the ray plugin offers its lanes."""

    def __init__(self, pool=ScriptedPool):
        self.contexts, self.pools, self.pool = [], [], pool

    @hookimpl
    def tsweep_executors(self):
        def build(ctx):
            self.contexts.append(ctx)
            self.pools.append(self.pool(lanes=2))
            return self.pools[-1]

        return {"scripted": build}


class Told(Progress):
    def __init__(self):
        self.lanes = []

    def lanes_started(self, lanes):
        self.lanes = list(lanes)


def sweep_config(tmp_path: Path, **extra):
    return load_config(None, {
        "model_repository": str(MODEL_REPOSITORY), "profile_models": ["mlp"], "executor": "scripted",
        "run_config_search_mode": "brute", "run_config_search_max_instance_count": 2, "run_config_search_max_model_batch_size": 4,
        "concurrency": [1, 2, 4, 8], "output_model_repository_path": str(tmp_path / "out"),
        "checkpoint_directory": str(tmp_path / "ck"), "export_path": str(tmp_path / "export"), **extra,
    })  # fmt: skip


def test_a_sweep_runs_on_the_lanes_of_an_executor_a_plugin_offers(tmp_path):
    """Sweep -> hook -> pool: the pool is built once every input is checked, its lanes are
    announced, every point is stored once with its lane, and ranking and reports run as ever."""
    plugin, told = ScriptedExecutor(), Told()
    outcome = profile(Run.build(sweep_config(tmp_path), make_plugin_manager([("scripted_executor", plugin)], autoload=False), sweep=True), told)
    (ctx,), (pool,) = plugin.contexts, plugin.pools
    assert [m.name for m in ctx.models] == ["mlp"] and ctx.output == tmp_path / "out" and ctx.progress is told
    assert [lane.name for lane in told.lanes] == ["lane 1", "lane 2"] and pool.stopped and pool.models_done == ["mlp", "mlp"]  # search, race
    with ResultsStore.open_existing(tmp_path / "ck" / "results.sqlite") as store:
        rows = store.measurements("mlp")
        assert store.meta("server") == "2 scripted lanes"
    assert len(rows) == len({m.key for m in rows}) == outcome.measured == len(pool.sent)
    assert {m.lane for m in rows} == {"lane 1", "lane 2"} and sum(outcome.by_lane.values()) == len(rows)
    assert "per lane: lane 1 " in outcome.summary() and outcome.rankings["mlp"] and outcome.reports


def test_a_launch_mode_that_attaches_to_a_server_is_refused_with_lanes_before_anything_is_written(tmp_path):
    before = tree(tmp_path)
    config = sweep_config(tmp_path, triton_launch_mode="remote", triton_http_endpoint="127.0.0.1:1")
    with pytest.raises(UsageError) as refused:
        Sweep(Run.build(config, make_plugin_manager([("scripted_executor", ScriptedExecutor())], autoload=False), sweep=True))
    assert str(refused.value) == (
        "executor scripted starts a server on every lane, but launch mode remote attaches to one you run: "
        "use triton_launch_mode local or docker, or executor local"
    )
    assert tree(tmp_path) == before


def test_a_schema_6_store_gains_the_lane_column_and_keeps_its_rows(tmp_path):
    path = tmp_path / "results.sqlite"
    model, space = model_and_space("m", max_instance_count=1, min_model_batch_size=4, max_model_batch_size=4)
    old, new = (Trial(space.variants[0], LoadLevel("concurrency", c)) for c in (1.0, 2.0))
    with ResultsStore.open(path) as store:
        store.add(measured(old, "m"))
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE measurements DROP COLUMN lane")  # as tsweep wrote it before lanes existed
    conn.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with ResultsStore.open(path) as store:
        assert store.meta("schema_version") == str(SCHEMA_VERSION) == "7"
        store.add(dataclasses.replace(measured(new, "m"), lane="lane 2"))
        assert [(m.load_value, m.lane) for m in store.measurements("m")] == [(1.0, ""), (2.0, "lane 2")]


class Uncertain(ScriptedPool):
    """Every point uncertain by +-40%: the Judge cannot separate the top configs from one look, so the race takes more."""

    def wait(self, timeout_s=None) -> List[Finished]:
        done = super().wait(timeout_s)
        for f in done:
            if f.measurement is not None:
                f.measurement.throughput_ci = 0.4 * f.measurement.throughput
        return done


def test_the_race_of_two_models_with_equal_configs_measures_each_models_own_variants(tmp_path):
    """Variants are keyed by model, then digest: a digest ignores the model's name, so two copies
    of one model share digests, and a race that looked variants up by digest alone loaded (and
    stored under its own name) the other model's variant."""
    repo = tmp_path / "repo"
    for name in ("mlp", "mlp_twin"):
        shutil.copytree(MODEL_REPOSITORY / "mlp", repo / name)
        config = repo / name / "config.pbtxt"
        config.write_text(config.read_text().replace('name: "mlp"', f'name: "{name}"'))
    config = sweep_config(tmp_path, model_repository=str(repo), profile_models=["mlp", "mlp_twin"], remeasure_top_configs=3)
    plugin = ScriptedExecutor(Uncertain)
    profile(Run.build(config, make_plugin_manager([("scripted_executor", plugin)], autoload=False), sweep=True), Told())
    with ResultsStore.open_existing(tmp_path / "ck" / "results.sqlite") as store:
        for name in ("mlp", "mlp_twin"):
            rows = store.measurements(name)
            assert rows and all(m.variant.startswith(f"{name}_config_") for m in rows), {m.variant for m in rows}
            assert any(m.repeat for m in rows)  # the race took second looks of this model's own variants


class OnGpuLanes(ScriptedPool):
    """Lanes whose servers each see one GPU, as the ray executor's with ray_lane_gpus 1."""

    lane_gpus = 1


def test_spaces_follow_the_lanes_gpus_not_the_drivers(tmp_path):
    """This machine has no GPU; lanes that have one get KIND_GPU variants, as a local run on a GPU machine would."""
    plugin = ScriptedExecutor(OnGpuLanes)
    profile(Run.build(sweep_config(tmp_path), make_plugin_manager([("scripted_executor", plugin)], autoload=False), sweep=True), Told())
    (pool,) = plugin.pools
    searched = [trial.variant for _, _, trial in pool.sent if not trial.variant.is_default]
    assert searched and all(g.kind == g.KIND_GPU for v in searched for g in v.config.instance_group)
    cpu = ScriptedExecutor()
    profile(Run.build(sweep_config(tmp_path / "cpu"), make_plugin_manager([("scripted_executor", cpu)], autoload=False), sweep=True), Told())
    assert all(g.kind == g.KIND_CPU for _, _, trial in cpu.pools[0].sent if not trial.variant.is_default for g in trial.variant.config.instance_group)
