"""Ranking under constraints and the verdict sentence."""
import pytest

from tsweep.analysis import known_metrics
from tsweep.judge import Judge
from tsweep.plugins.rankers.objectives import ObjectivesRanker
from tsweep.records import Constraint, Measurement
from tsweep.verdict import verdict


def m(variant, conc, thr, p99, status="ok", thr_ci=0.0, p99_ci=0.0):
    return Measurement(model="m", variant=variant, variant_digest=variant, load_kind="concurrency", load_value=conc,
                       batch_size=1, status=status, throughput=thr, latency_p99_ms=p99,
                       throughput_ci=thr_ci, latency_p99_ci_ms=p99_ci)  # fmt: skip


ROWS = [
    m("m_config_default", 1, 100, 2), m("m_config_default", 4, 150, 12),
    m("m_config_0", 1, 180, 3), m("m_config_0", 4, 400, 9), m("m_config_0", 16, 900, 40),
    m("m_config_1", 1, 50, 30),
    m("m_config_2", 1, 0, 0, status="failed"),
]  # fmt: skip


def rank(constraints, rows=ROWS):
    return ObjectivesRanker().rank(rows, {"throughput": 1.0}, constraints, known_metrics(()), ["m_config_default"], Judge())


def test_best_point_within_budget_wins():
    ranking = rank([Constraint("latency_p99_ms", max=10)])
    assert [(r.variant, r.passes) for r in ranking] == [
        ("m_config_0", True), ("m_config_default", True), ("m_config_1", False)
    ]
    assert ranking[0].best.load_value == 4  # 16 is faster but misses the budget
    assert ranking[2].misses == {"latency_p99_ms": 2.0}  # 30 ms is 200% over 10 ms


def test_failing_configs_are_ordered_by_how_far_they_miss():
    ranking = rank([Constraint("latency_p99_ms", max=1)])
    assert not any(r.passes for r in ranking)
    assert [r.variant for r in ranking] == ["m_config_default", "m_config_0", "m_config_1"]


def test_verdict_names_choice_load_and_gain_over_default():
    constraints = [Constraint("latency_p99_ms", max=10)]
    text = verdict("m", rank(constraints), constraints)
    assert text == (
        "Best config for m: m_config_0, 400.0 \u00b10.0 infer/s at p99 9.00 \u00b10.00 ms (concurrency=4, client batch 1; 95% intervals), "
        "4.00x the throughput of the default config m_config_default (100.0 infer/s)."
    )
    none = verdict("m", rank([Constraint("latency_p99_ms", max=1)]), [Constraint("latency_p99_ms", max=1)])
    assert none.startswith("No config of m surely meets the constraints (p99 latency <= 1 ms, judged at the unfavourable end")
    assert "the closest is m_config_default" in none


def test_a_p99_inside_the_budget_only_by_luck_does_not_pass():
    rows = [m("lucky", 4, 500, 9.5, p99_ci=1.0), m("sure", 4, 400, 9.0, p99_ci=0.5), m("sure", 8, 450, 9.8, p99_ci=0.5)]
    ranking = rank([Constraint("latency_p99_ms", max=10)], rows)
    assert [(r.variant, r.passes) for r in ranking] == [("sure", True), ("lucky", False)]
    assert ranking[0].best.load_value == 4  # 9.8 +-0.5 ms at 8 may be over 10 ms
    assert ranking[1].misses == {"latency_p99_ms": pytest.approx(0.05)}  # 10.5 ms at worst


def test_intervals_decide_ties():
    from dataclasses import replace

    from tsweep.analysis import mark_ties

    rows = [m("a", 4, 410, 5, thr_ci=30), m("b", 4, 405, 5, thr_ci=30), m("c", 4, 300, 5, thr_ci=3), m("d", 4, 430, 5)]
    judge = Judge()
    rank_ = lambda rows: mark_ties(rank([Constraint("latency_p99_ms", max=10)], rows), judge)
    ranking = rank_(rows)
    assert [(r.variant, r.tied_with) for r in ranking] == [("d", ("a", "b")), ("a", ("d",)), ("b", ("d",)), ("c", ())]
    assert verdict("m", ranking, []).endswith(
        "Tied with a, b: at 95% confidence the difference is within the measurement uncertainty, so either will do."
    )
    quiet = rank_([replace(r, throughput_ci=0.4) for r in rows])
    assert all(not r.tied_with for r in quiet)  # same order, but now the differences are real


def test_a_models_own_objectives_and_constraints_replace_the_global_ones(tmp_path):
    """profile_models.<model>.objectives / constraints (Model Analyzer's per-model keys):
    model b is ranked by latency under its own budget, model a by the global throughput;
    the budget flag still holds for both, and b's search aims at the tighter bound."""
    from tsweep import analysis, modelconfig
    from tsweep.config import load_config
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.records import Variant
    from tsweep.run import Run
    from tsweep.store import ResultsStore

    (tmp_path / "c.yaml").write_text(
        "latency_budget: 50\n"
        "objectives: [perf_throughput]\n"
        "profile_models:\n"
        "  a: {}\n"
        "  b:\n"
        "    objectives: [perf_latency_p99]\n"
        "    constraints: {perf_latency_p99: {max: 20}}\n"
    )
    config = load_config(tmp_path / "c.yaml", {"checkpoint_directory": str(tmp_path / "ck")})
    run = Run.build(config, make_plugin_manager(autoload=False))
    assert run.goals_of("b").objectives == {"latency_p99_ms": 1.0} and run.goals_of("a").objectives == {"throughput": 1.0}
    assert (run.goals_of("b").goal.latency_budget_ms, run.goals_of("a").goal.latency_budget_ms) == (20.0, 50.0)
    with ResultsStore.open(config.checkpoint_path) as store:
        for model in ("a", "b"):
            for name, text, thr, p99 in ((f"{model}_config_default", "", 100.0, 5.0), (f"{model}_config_0", "max_batch_size: 8", 300.0, 15.0),
                                         (f"{model}_config_1", "max_batch_size: 16", 500.0, 30.0)):  # fmt: skip
                store.add_variant(Variant(model, modelconfig.parse(text), is_default=not text, name=name))
                store.add(Measurement(model=model, variant=name, variant_digest=name, load_kind="concurrency", load_value=4,
                                      batch_size=1, status="ok", throughput=thr, latency_p99_ms=p99))  # fmt: skip
        ranked = analysis.rank(store, run, ["a", "b"])
    assert [r.variant for r in ranked["a"] if r.passes] == ["a_config_1", "a_config_0", "a_config_default"]  # 30 ms < 50
    assert [r.variant for r in ranked["b"] if r.passes] == ["b_config_default", "b_config_0"]  # lowest p99 first, 30 ms out
    with pytest.raises(Exception, match="unknown objective metric 'speed'"):
        (tmp_path / "d.yaml").write_text("profile_models:\n  b:\n    objectives: {speed: 1}\n")
        Run.build(load_config(tmp_path / "d.yaml", {}), make_plugin_manager(autoload=False))
