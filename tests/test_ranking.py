"""Ranking under constraints and the verdict sentence."""
from tsweep.analysis import known_metrics
from tsweep.plugins.rankers.objectives import ObjectivesRanker
from tsweep.records import Constraint, Measurement
from tsweep.verdict import verdict


def m(variant, conc, thr, p99, status="ok"):
    return Measurement(model="m", variant=variant, variant_digest=variant, load_kind="concurrency", load_value=conc,
                       batch_size=1, status=status, throughput=thr, latency_p99_ms=p99)  # fmt: skip


ROWS = [
    m("m_config_default", 1, 100, 2), m("m_config_default", 4, 150, 12),
    m("m_config_0", 1, 180, 3), m("m_config_0", 4, 400, 9), m("m_config_0", 16, 900, 40),
    m("m_config_1", 1, 50, 30),
    m("m_config_2", 1, 0, 0, status="failed"),
]  # fmt: skip


def rank(constraints):
    return ObjectivesRanker().rank(ROWS, {"throughput": 1.0}, constraints, known_metrics(()), ["m_config_default"])


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
        "Best config for m: m_config_0, 400.0 infer/s at p99 9.00 ms (concurrency=4, client batch 1), "
        "4.00x the throughput of the default config m_config_default (100.0 infer/s)."
    )
    none = verdict("m", rank([Constraint("latency_p99_ms", max=1)]), [Constraint("latency_p99_ms", max=1)])
    assert none.startswith("No config of m meets the constraints (p99 latency <= 1 ms); the closest is m_config_default")


def test_noise_bands_decide_ties():
    from dataclasses import replace

    from tsweep.analysis import mark_ties
    from tsweep.measure import MethodSettings, summarize
    from tsweep.records import relative_half_spread

    assert relative_half_spread([90.0, 100.0, 110.0]) == 0.1
    assert relative_half_spread([100.0]) == 0.0  # one window: no estimate, no tie claimed

    def noisy(variant, thr, noise):
        r = m(variant, 4, thr, 5)
        r.throughput_noise = noise
        return r

    rows = [noisy("a", 400, 0.05), noisy("b", 392, 0.05), noisy("c", 300, 0.01), noisy("d", 410, 0.0)]
    rank_ = lambda rows: mark_ties(ObjectivesRanker().rank(rows, {"throughput": 1.0}, [Constraint("latency_p99_ms", max=10)], known_metrics(()), []))
    ranking = rank_(rows)
    assert [(r.variant, r.tied_with) for r in ranking] == [("d", ("a", "b")), ("a", ("d",)), ("b", ("d",)), ("c", ())]
    assert verdict("m", ranking, []).endswith("Tied with a, b: the difference is within the measurement noise, so either will do.")
    quiet = rank_([replace(r, throughput_noise=0.001) for r in rows])
    assert all(not r.tied_with for r in quiet)  # same order, but now the differences are real
