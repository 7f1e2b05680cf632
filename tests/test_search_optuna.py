"""The optuna strategy: its study budget, early exit, seed, constraints; and one real `tsweep profile`."""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest

from tests.support import MODEL_REPOSITORY, run_tsweep, stored
from tests.test_search import point, run_strategy, space
from tsweep.judge import Judge
from tsweep.plugins.rankers.objectives import ObjectivesRanker
from tsweep.plugins.search.optuna import FAILED, OptunaSearch, StudySettings, point_value
from tsweep.records import Constraint, LoadLevel, MetricInfo, Objective, SearchGoal, Trial


def grid(**kw):
    """4 instance counts x 6 max_batch_sizes = 24 variants (plus the default), 5 load levels: 120 points."""
    return space(max_instance_count=4, min_model_batch_size=1, max_model_batch_size=32, concurrency=(1, 2, 4, 8, 16), **kw)


def peaked(instances, mbs, conc, is_default):  # best at 3 instances, max_batch_size 8
    return 1000.0 / (1 + abs(instances - 3)) / (1 + abs(mbs.bit_length() - 4)) * min(conc, 8) / 8


def flat(instances, mbs, conc, is_default):  # no config does better than any other
    return 500.0


def test_the_study_runs_optuna_max_trials_when_nothing_exits_early():
    s = grid()
    strategy = OptunaSearch(s, SearchGoal(latency_budget_ms=8.0), StudySettings(max_trials=7, early_exit_threshold=1000))
    history = run_strategy(strategy, peaked)
    assert strategy.told == 7
    assert len([t for t in strategy.study.trials if t.state.name == "COMPLETE"]) == 7
    assert len({m.key for m in history}) == len(history)  # no point measured twice


def test_trial_bounds_follow_model_analyzers_rules():
    size = 120
    assert StudySettings().bounds(size) == (6, 12)  # 5% and 10% of the space by default
    assert StudySettings(max_percentage=20).bounds(size) == (6, 24)
    assert StudySettings(max_trials=30).bounds(size) == (6, 30)  # the trial count alone replaces the percentage
    assert StudySettings(max_trials=30, max_percentage=20).bounds(size) == (6, 24)  # both: the smaller maximum
    assert StudySettings(min_trials=3, min_percentage=10).bounds(size) == (12, 12)  # both: the larger minimum
    assert StudySettings(min_trials=3).bounds(size) == (3, 12)
    assert StudySettings(min_trials=50).bounds(size) == (12, 12)  # never more than the maximum
    assert StudySettings().bounds(5) == (0, 1)  # a small space still gets a trial
    assert StudySettings(max_trials=500).bounds(size) == (6, 120)  # never more than the space


def test_the_percentage_of_the_space_bounds_the_study():
    s = grid()
    strategy = OptunaSearch(s, SearchGoal(latency_budget_ms=8.0), StudySettings(max_percentage=5, early_exit_threshold=1000))
    run_strategy(strategy, peaked)
    assert strategy.size == 24 * 5 and strategy.told == 6


def test_early_exit_after_the_threshold_of_trials_without_improvement():
    strategy = OptunaSearch(grid(), SearchGoal(), StudySettings(min_trials=0, max_trials=50, early_exit_threshold=4))
    history = run_strategy(strategy, flat)
    assert strategy.told == 4 and strategy.best_trial == 0  # nothing beat the default
    assert len([m for m in history if m.variant != "m_config_default"]) >= 4
    # with a minimum, the early exit waits for it
    strategy = OptunaSearch(grid(), SearchGoal(), StudySettings(min_trials=9, max_trials=50, early_exit_threshold=4))
    run_strategy(strategy, flat)
    assert strategy.told == 9


def test_the_same_seed_proposes_the_same_points_and_a_resumed_run_continues_alike():
    def keys(seed, surface=peaked):
        strategy = OptunaSearch(grid(), SearchGoal(latency_budget_ms=8.0), StudySettings(max_trials=15, early_exit_threshold=1000, seed=seed))
        return [m.key for m in run_strategy(strategy, surface)]

    first = keys(0)
    assert keys(0) == first
    assert keys(1) != first
    # a resumed run: a fresh strategy given the first rows proposes what the first run measured next
    full = run_strategy(OptunaSearch(grid(), SearchGoal(latency_budget_ms=8.0), StudySettings(max_trials=15, early_exit_threshold=1000)), peaked)
    for cut in (3, 9, 14):
        resumed = OptunaSearch(grid(), SearchGoal(latency_budget_ms=8.0), StudySettings(max_trials=15, early_exit_threshold=1000))
        (trial,) = resumed.propose(full[:cut])
        assert trial.key == full[cut].key


def test_constraint_violating_variants_are_not_chosen():
    """4 instances would double the throughput, but their p99 is far over the budget."""
    s = grid()
    goal = SearchGoal(latency_budget_ms=10.0)

    def surface(instances, mbs, conc, is_default):
        return peaked(instances, mbs, conc, is_default) * (2.0 if instances == 4 else 1.0)

    def p99(instances, mbs, conc, is_default):
        return 50.0 if instances == 4 else conc / 2

    strategy = OptunaSearch(s, goal, StudySettings(max_trials=40, early_exit_threshold=1000))
    history = run_strategy(strategy, surface, p99=p99)
    by_name = {v.name: v for v in s.variants}
    told_fours = [m for m in history if m.variant in by_name and by_name[m.variant].coordinates.instances == 4]
    assert told_fours, "the study tried 4 instances"  # so the test can fail
    assert all(point_value(m, goal, Judge(goal), None) < 0 for m in told_fours)
    leaders = strategy.leaders()
    assert leaders and all(v.coordinates.instances != 4 for v in leaders)
    assert all(strategy.values[m.variant] < 0 for m in told_fours)
    ranking = ObjectivesRanker().rank(
        history, {"throughput": 1.0}, [Constraint("latency_p99_ms", max=10.0)],
        {"throughput": MetricInfo("throughput", "infer/s", True), "latency_p99_ms": MetricInfo("latency_p99_ms", "ms", False)},
        ["m_config_default"], Judge(goal),
    )  # fmt: skip
    assert ranking[0].passes and by_name[ranking[0].variant].coordinates.instances != 4


def test_a_points_value_is_the_rankers_score_penalised_for_misses():
    s = grid()
    goal = SearchGoal(
        latency_budget_ms=10.0,
        objectives=(Objective("throughput", 1.0), Objective("latency_p99_ms", 1.0, higher_is_better=False)),
        constraints=(Constraint("latency_p99_ms", max=10.0), Constraint("cpu_util", max=50.0)),
    )
    judge = Judge(goal)
    t = Trial(s.variants[1], LoadLevel("concurrency", 4))
    reference = point(t, 100.0)
    reference.latency_p99_ms, reference.metrics = 4.0, {"cpu_util": 10.0}
    better = point(t, 200.0)
    better.latency_p99_ms, better.metrics = 2.0, {"cpu_util": 10.0}
    assert point_value(reference, goal, judge, reference) == pytest.approx(2.0)  # 1 + 1: the reference itself
    assert point_value(better, goal, judge, reference) == pytest.approx(2.0 + 2.0)  # twice the throughput, half the p99
    busy = point(t, 400.0)
    busy.latency_p99_ms, busy.metrics = 2.0, {"cpu_util": 75.0}  # misses the explicit cpu constraint by 50%
    assert point_value(busy, goal, judge, reference) == pytest.approx(-1.5)
    slow = point(t, 400.0)
    slow.latency_p99_ms, slow.metrics = 30.0, {"cpu_util": 10.0}  # 3 x the budget: misses by 200%
    assert point_value(slow, goal, judge, reference) == pytest.approx(-3.0)
    assert point_value(point(t, None, status="failed"), goal, judge, reference) == FAILED
    assert FAILED < -3.0 and not math.isinf(FAILED)


# ------------------------------------------------------------------------- through the CLI


def test_inconsistent_optuna_keys_are_one_line_and_exit_2(tmp_path: Path, workdir: Path):
    (tmp_path / "trials.yaml").write_text("run_config_search_mode: optuna\noptuna_min_trials: 10\noptuna_max_trials: 5\n")
    (tmp_path / "percent.yaml").write_text("max_percentage_of_search_space: 150\n")
    (tmp_path / "negative.yaml").write_text("optuna_early_exit_threshold: 0\n")
    cases = {
        "trials.yaml": "error: optuna_min_trials (10) is greater than optuna_max_trials (5): swap or fix them",
        "percent.yaml": "error: config key 'max_percentage_of_search_space' must be at most 100 (a percentage), got 150.0",
        "negative.yaml": "error: config key 'optuna_early_exit_threshold' must be greater than 0, got 0",
    }
    for name, message in cases.items():
        result = run_tsweep("profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "add_sub",
                            "--output-model-repository-path", "out", "-f", str(tmp_path / name), cwd=workdir)  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [message]
        assert list(workdir.iterdir()) == []


@pytest.mark.server
@pytest.mark.slow
def test_profile_with_optuna_on_the_embedded_server(tmp_path: Path, workdir: Path):
    """1..2 instances x max_batch_size 1..4 (6 variants) x concurrency 1, 2: the default's walk,
    3 trials, then the walks of the study's best configs; all in the store, and a rerun measures nothing."""
    (tmp_path / "optuna.yaml").write_text("optuna_max_trials: 3\noptuna_early_exit_threshold: 2\n")
    args = [
        "profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "add_sub", "--output-model-repository-path", "out",
        "-f", str(tmp_path / "optuna.yaml"), "--run-config-search-mode", "optuna", "--run-config-search-max-instance-count", "2",
        "--run-config-search-max-model-batch-size", "4", "--concurrency", "1,2", "--remeasure-top-configs", "0",
        "--latency-budget", "100", "--measurement-window-s", "0.3",
    ]  # fmt: skip
    first = run_tsweep(*args, cwd=workdir)
    assert first.returncode == 0, first.stderr
    rows = stored(workdir)
    assert [(r["variant"], r["load_value"]) for r in rows[:2]] == [("add_sub_config_default", 1.0), ("add_sub_config_default", 2.0)]
    generated = [r for r in rows if r["variant"] != "add_sub_config_default"]
    # the study's 3 points (one may repeat a point: then fewer), then the walks of at most 3 leaders (2 levels each)
    assert 1 <= len(generated) <= 3 + 3 * 2
    assert len({(r["variant"], r["load_value"]) for r in rows}) == len(rows)
    assert all(r["status"] in ("ok", "unstable") and r["throughput"] > 0 for r in rows)
    walked = {r["variant"] for r in generated if {1.0, 2.0} <= {g["load_value"] for g in generated if g["variant"] == r["variant"]}}
    assert walked, "the study's best config was walked over both loads"
    best = re.search(r"^Best config for add_sub: (\w+)", first.stdout, re.M).group(1)
    assert best in {r["variant"] for r in rows}

    again = run_tsweep(*args, cwd=workdir)  # the same seed replays the same study from the store
    assert again.returncode == 0, again.stderr
    assert f"0 points measured (0 stable) in 0 s of measuring; {len(rows)} reused from" in again.stderr
    assert len(stored(workdir)) == len(rows)


def test_a_manual_space_is_searched_by_its_model_config_parameters(tmp_path: Path):
    """Each varied field (max_queue_delay, preferred_batch_size lists, instances, max_batch_size)
    is one trial parameter; every variant of the product can be proposed, and is found."""
    from tests.test_manual_space import YAML
    from tsweep import modelconfig
    from tsweep.config import load_config
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.records import ModelSpec
    from tsweep.settings import space_settings
    from tsweep.sweep import name_variants

    (tmp_path / "c.yaml").write_text(YAML)
    mlp = ModelSpec("mlp", MODEL_REPOSITORY / "mlp", modelconfig.read(MODEL_REPOSITORY / "mlp" / "config.pbtxt"))
    s = make_plugin_manager(autoload=False).config_space(mlp, space_settings(load_config(tmp_path / "c.yaml", {}), "mlp"))
    s = type(s)(s.model, tuple(name_variants("mlp", s.variants)), s.load_levels, s.batch_sizes)
    strategy = OptunaSearch(s, SearchGoal(), StudySettings(max_trials=40, early_exit_threshold=1000))
    names = [name for name, _, _ in strategy.dimensions]
    assert names == ["instances", "max_batch_size", "dynamic_batching.max_queue_delay_microseconds", "dynamic_batching.preferred_batch_size"]
    assert strategy.size == 16 * 2  # 16 variants x concurrency 1, 2 (client batch size 2 only)
    target = next(v for v in s.variants if v.params.get("dynamic_batching.max_queue_delay_microseconds") == 500
                  and v.params.get("dynamic_batching.preferred_batch_size") == [2, 4] and v.coordinates.instances == 2
                  and v.coordinates.max_batch_size == 8)  # fmt: skip

    def throughput(trial):  # the target variant is twice as good as any other
        return 200.0 if trial.variant.digest == target.digest else 100.0

    history = []
    while trials := strategy.propose(history):
        history.extend(dataclasses.replace(point(t, throughput(t)), model="mlp") for t in trials)
    assert all(m.batch_size == 2 for m in history)
    assert strategy.leaders()[0].digest == target.digest


def test_the_concurrency_formula_replaces_the_load_parameter():
    """Model Analyzer's use_concurrency_formula: 2 x max_batch_size x instances, within 1..16."""
    s = grid()
    strategy = OptunaSearch(s, SearchGoal(latency_budget_ms=8.0), StudySettings(max_trials=10, early_exit_threshold=1000, concurrency_formula=True))
    assert strategy.size == 24  # the load is no parameter: variants only
    proposed, propose_point = [], strategy._trial_of
    strategy._trial_of = lambda asked: proposed.append(propose_point(asked)) or proposed[-1]  # what each trial proposed
    history = run_strategy(strategy, peaked)
    assert len(proposed) == strategy.told == 10
    for t in proposed:
        c = t.variant.coordinates
        assert t.load.value == min(2 * c.max_batch_size * c.instances, 16)
    assert {t.key for t in proposed} <= {m.key for m in history}


def test_concurrency_sweep_disable_leaves_out_the_top_configs_load_walks():
    """Model Analyzer's concurrency_sweep_disable: after the study, no load walks of its best."""
    s = grid()

    def measured(settings):
        strategy = OptunaSearch(s, SearchGoal(latency_budget_ms=8.0), settings)
        history = run_strategy(strategy, peaked)
        return strategy, {m.key for m in history if not any(v.is_default and v.name == m.variant for v in s.variants)}

    walked, with_walks = measured(StudySettings(max_trials=6, early_exit_threshold=1000))
    study_only, without = measured(StudySettings(max_trials=6, early_exit_threshold=1000, top_walked=0))
    assert study_only.told == walked.told == 6
    assert len(without) == 6  # the study's own points, nothing after
    assert without < with_walks  # the walks added points at the leaders' other loads
