"""Several models profiled together, without a server: the combination search over a
synthetic surface, the ranking with weighting and each model's own constraints, the store's
combination rows, and the bad input that stops before anything is written."""
from __future__ import annotations

import itertools
import warnings

import pytest

from tests.support import MODEL_REPOSITORY
from tsweep import combosearch, modelconfig
from tsweep.combination import Combination, CombinationTrial, load_steps, weighted_score
from tsweep.comboranking import rank_combinations
from tsweep.config import ConfigWarning, load_config
from tsweep.errors import UsageError
from tsweep.pluginmanager import make_plugin_manager
from tsweep.plugins.search.automatic_space import tsweep_config_space
from tsweep.records import LoadLevel, Measurement, ModelSpec, SpaceSettings
from tsweep.run import Run
from tsweep.store import SCHEMA_VERSION, ResultsStore
from tsweep.sweep import name_variants


def variants_of(model: str, **bounds):
    config = modelconfig.parse(f'name: "{model}" backend: "python" max_batch_size: 4 instance_group [{{count: 1 kind: KIND_CPU}}]')
    space = tsweep_config_space(ModelSpec(model, None, config), SpaceSettings(**bounds))
    return name_variants(model, space.variants)


class Surface:
    """An Evaluator over a table: each model's score is a function of its own variant's
    coordinates (dynamic batching helps a little) and of the other's instances (they share
    the CPUs)."""

    def __init__(self, models, best):
        self.models, self.best, self.walked = models, best, []

    def model_score(self, c: Combination, model: str) -> float:
        me = c.member(model).coordinates
        others = sum(c.member(m).coordinates.instances for m in self.models if m != model)
        want_i, want_b = self.best[model]
        return 1.0 / (1 + abs(me.instances - want_i) + abs(me.max_batch_size - want_b) / 4 + 0.1 * others) + 0.01 * me.dynamic_batching

    def walk(self, c):
        self.walked.append(tuple(v.name for v in c.members))

    def value(self, c):
        if tuple(v.name for v in c.members) not in self.walked:
            return None
        return (True, 0.0, sum(self.model_score(c, m) for m in self.models))

    def standing(self, c):
        return {m: (0.0, self.model_score(c, m)) for m in self.models}


SPACE = dict(max_instance_count=4, min_model_batch_size=1, max_model_batch_size=16)


def test_brute_measures_every_combination_and_the_climbs_find_the_best_with_fewer():
    variants = {"a": variants_of("a", **SPACE), "b": variants_of("b", **SPACE)}
    surface = Surface(["a", "b"], {"a": (2, 8), "b": (1, 4)})
    product = [Combination(tuple(ms)) for ms in itertools.product(*variants.values())]
    best = max(product, key=lambda c: sum(surface.model_score(c, m) for m in ("a", "b")))
    found = {}
    for mode in combosearch.MODES:
        s = Surface(["a", "b"], surface.best)
        walked = combosearch.search(mode, variants, s)
        assert len(walked) == len(set(s.walked)) == len(s.walked)  # none measured twice
        found[mode] = (max(walked, key=s.value), len(walked))
    assert found["brute"][1] == len(product) == 21 * 21
    for mode in ("quick", "adaptive"):
        chosen, count = found[mode]
        assert chosen.members == best.members, mode
        assert count < len(product) / 4, (mode, count)


def test_adaptive_moves_the_model_furthest_from_its_goal_first():
    variants = {"a": variants_of("a", **SPACE), "b": variants_of("b", **SPACE)}
    s = Surface(["a", "b"], {"a": (1, 1), "b": (4, 16)})  # a's default is at its best, b's is far
    combosearch.search("adaptive", variants, s)
    start = s.walked[0]
    assert start == ("a_config_default", "b_config_default")
    moved = [w for w in s.walked[1:] if w[0] != start[0] or w[1] != start[1]][0]
    assert moved[0] == start[0] and moved[1] != start[1]  # b moved, a held


def test_neighbours_move_one_model_one_step():
    variants = {"a": variants_of("a", **SPACE), "b": variants_of("b", **SPACE)}
    here = Combination((variants["a"][7], variants["b"][0]))  # a: 2 instances, max_batch_size 2 (a grid point)
    a = here.member("a").coordinates
    assert (a.instances, a.max_batch_size) == (2, 2)
    moves = sorted((c.member("a").coordinates.instances, c.member("a").coordinates.max_batch_size)
                   for c in combosearch.neighbours(here, variants, "a"))  # fmt: skip
    assert moves == [(1, 2), (2, 1), (2, 4), (3, 2)]
    assert all(c.member("b") == here.member("b") for c in combosearch.neighbours(here, variants, "a"))


def test_load_steps_give_each_model_its_own_levels():
    levels = {"a": [LoadLevel("concurrency", 1), LoadLevel("concurrency", 2)], "b": [LoadLevel("concurrency", 4)]}
    assert [tuple(str(x) for x in step) for step in load_steps(levels, ["a", "b"])] == [
        ("concurrency=1", "concurrency=4"), ("concurrency=2", "concurrency=4"),
    ]


def row(model, variant, point, throughput, p99, status="ok", load=1):
    return Measurement(
        model=model, variant=variant, variant_digest=variant, load_kind="concurrency", load_value=load, batch_size=1,
        status=status, throughput=throughput, latency_p99_ms=p99, combination=point, error="" if status == "ok" else "it broke",
    )  # fmt: skip


#: Two combinations: X gives model a much and b little; Y balances them the other way.
ROWS = [
    row("a", "a_0", "cX", 1000, 5), row("b", "b_0", "cX", 100, 5),
    row("a", "a_1", "cY", 600, 5), row("b", "b_1", "cY", 180, 20),
]


def run_with(tmp_path, text: str) -> Run:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return Run.build(load_config(path, {}), make_plugin_manager())


def test_weighting_weights_each_models_score(tmp_path):
    plain = rank_combinations(ROWS, run_with(tmp_path, "profile_models: [a, b]\n"), ["a", "b"])
    # equal weights: X = (1 + 100/180) / 2 = 0.78, Y = (0.6 + 1) / 2 = 0.8
    assert [c.name for c in plain] == ["a_1 + b_1", "a_0 + b_0"]
    assert plain[0].score == pytest.approx(0.8) and plain[1].score == pytest.approx((1 + 100 / 180) / 2)
    heavy = rank_combinations(ROWS, run_with(tmp_path, "profile_models:\n  a: {weighting: 3}\n  b: {weighting: 1}\n"), ["a", "b"])
    assert [c.name for c in heavy] == ["a_0 + b_0", "a_1 + b_1"]  # a's gains count three times
    assert heavy[0].score == pytest.approx((3 * 1 + 100 / 180) / 4)
    assert heavy[0].weights == {"a": 3.0, "b": 1.0}
    assert weighted_score({"a": 1.0, "b": 0.0}, {"a": 3, "b": 1}) == pytest.approx(0.75)


def test_each_models_own_constraints_must_hold_in_the_combination(tmp_path):
    run = run_with(tmp_path, "profile_models:\n  a: {}\n  b: {constraints: {perf_latency_p99: {max: 10}}}\n")
    ranking = rank_combinations(ROWS, run, ["a", "b"])
    assert [(c.name, c.passes) for c in ranking] == [("a_0 + b_0", True), ("a_1 + b_1", False)]
    assert ranking[1].misses == {"b": {"latency_p99_ms": 1.0}}  # b's 20 ms is 100% over its 10 ms; a has no bound


def test_the_automatic_load_walk_stops_at_saturation_or_a_latency_bound(tmp_path):
    from tsweep.combotrials import misses_latency, saturated

    run = run_with(tmp_path, "profile_models:\n  a: {}\n  b: {constraints: {perf_latency_p99: {max: 10}}}\n")
    step1 = [row("a", "a_0", "c1", 1000, 5), row("b", "b_0", "c1", 100, 5)]
    step2 = [row("a", "a_0", "c2", 1020, 6, load=2), row("b", "b_0", "c2", 180, 9.9, load=2)]
    assert not saturated(None, step1) and not saturated(step1, step2)  # b still grows
    assert saturated(step2, [row("a", "a_0", "c3", 1030, 7, load=4), row("b", "b_0", "c3", 185, 9, load=4)])
    assert not misses_latency(step2, run)  # by the figure: 9.9 ms, whatever its interval
    assert misses_latency([row("a", "a_0", "c3", 1030, 70, load=4), row("b", "b_0", "c3", 185, 10.5, load=4)], run)
    assert not misses_latency([row("a", "a_0", "c3", 1030, 70, load=4), row("b", "b_0", "c3", 185, 9, load=4)], run)  # a has no bound


def test_a_combination_with_a_failed_row_is_not_ranked(tmp_path):
    rows = ROWS[:2] + [row("a", "a_1", "cY", None, None, status="failed"), row("b", "b_1", "cY", None, None, status="failed")]
    ranking = rank_combinations(rows, run_with(tmp_path, "profile_models: [a, b]\n"), ["a", "b"])
    assert [c.name for c in ranking] == ["a_0 + b_0"]


def test_combination_rows_are_stored_and_found_again_by_their_point(tmp_path):
    variants = {"a": variants_of("a", max_instance_count=1, min_model_batch_size=4, max_model_batch_size=4),
                "b": variants_of("b", max_instance_count=1, min_model_batch_size=4, max_model_batch_size=4)}  # fmt: skip
    c = Combination((variants["a"][0], variants["b"][1]))
    loads = (LoadLevel("concurrency", 1), LoadLevel("concurrency", 2))
    point = CombinationTrial(c, loads)
    other = CombinationTrial(c, (LoadLevel("concurrency", 1), LoadLevel("concurrency", 1)))
    assert point.id != other.id  # a's same load beside b's other load is another point
    with ResultsStore.open(tmp_path / "results.sqlite") as store:
        for t in point.trials():
            store.add(Measurement(
                model=t.variant.model, variant=t.variant.name, variant_digest=t.variant.digest, load_kind=t.load.kind,
                load_value=t.load.value, batch_size=1, status="ok", throughput=1.0, combination=point.id,
            ))  # fmt: skip
        rows = store.measurements()
        assert [m.combination for m in rows] == [point.id, point.id]
        assert sorted(m.key for m in rows) == sorted(point.keys())  # resume finds them
        assert not set(other.keys()) & {m.key for m in rows}
        assert store.meta("schema_version") == str(SCHEMA_VERSION)


def sweep_of(tmp_path, **flags):
    from tsweep.sweep import Sweep

    settings = {
        "model_repository": str(MODEL_REPOSITORY), "checkpoint_directory": str(tmp_path / "ck"), "export_path": str(tmp_path / "ex"),
        "output_model_repository_path": str(tmp_path / "out"), "run_config_profile_models_concurrently_enable": True, **flags,
    }  # fmt: skip
    return Sweep(Run.build(load_config(None, settings), make_plugin_manager(), sweep=True))


def test_one_model_with_the_flag_on_is_profiled_alone_with_a_warning(tmp_path):
    with pytest.warns(ConfigWarning, match=r"^run_config_profile_models_concurrently_enable has nothing to combine: only add_sub"):
        sweep = sweep_of(tmp_path, profile_models="add_sub")
    assert sweep.together is False
    assert not (tmp_path / "ck").exists() and not (tmp_path / "out").exists()  # nothing written


def test_a_strategy_that_cannot_walk_combinations_is_one_line_before_anything_is_written(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UsageError, match=r"^run_config_search_mode optuna does not search combinations .*: choose adaptive, quick, brute"):
            sweep_of(tmp_path, profile_models="add_sub,mlp", run_config_search_mode="optuna")
    assert not (tmp_path / "ck").exists() and not (tmp_path / "out").exists()
    assert sweep_of(tmp_path, profile_models="add_sub,mlp").together is True
