"""The Judge and the intervals it decides from: properties that must hold for any figures."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsweep import intervals, repeats
from tsweep.intervals import Interval
from tsweep.judge import BEATS, LOSES, TIED, UNSURE, Judge, estimate_drift
from tsweep.records import Measurement, SearchGoal

throughputs = st.floats(min_value=1.0, max_value=1e5)
widths = st.floats(min_value=0.0, max_value=0.5)  # relative half-widths
gains = st.sampled_from([0.0, 0.05])
judges = st.builds(Judge, drift=st.sampled_from([0.0, 0.05, 0.2]))


def point(throughput, rel=0.05, p99=5.0, p99_ci=0.2, repeat=0, point_id="p", looks=None):
    m = Measurement(
        model="m", variant=point_id, variant_digest=point_id, load_kind="concurrency", load_value=4.0, batch_size=1,
        status="ok", throughput=throughput, latency_p99_ms=p99, throughput_ci=rel * throughput, latency_p99_ci_ms=p99_ci,
        repeat=repeat,
    )  # fmt: skip
    if looks:
        m.looks = looks
    return m


@given(throughputs, widths, judges, gains)
def test_a_point_never_beats_itself(t, rel, judge, by):
    p = point(t, rel)
    assert judge.compare(p, p, by) in (TIED, UNSURE)


@given(throughputs, widths, throughputs, widths, judges, gains)
def test_beating_is_antisymmetric(ta, ra, tb, rb, judge, by):
    a, b = point(ta, ra, point_id="a"), point(tb, rb, point_id="b")
    ab, ba = judge.compare(a, b, by), judge.compare(b, a, by)
    assert (ab == BEATS) == (ba == LOSES)
    assert (ab == LOSES) == (ba == BEATS)
    assert (ab == TIED) == (ba == TIED)


@given(st.lists(st.tuples(throughputs, st.floats(min_value=0.001, max_value=0.5)), min_size=1, max_size=6), throughputs, widths)
def test_more_looks_never_widen_an_interval(looks, extra_t, extra_rel):
    before = intervals.combine([Interval(t, r * t) for t, r in looks])
    after = intervals.combine([Interval(t, r * t) for t, r in looks] + [Interval(extra_t, extra_rel * extra_t)])
    assert after.half_width <= before.half_width * (1 + 1e-12)
    assert before.half_width <= min(r * t for t, r in looks) * (1 + 1e-12)


@given(throughputs, widths, st.integers(min_value=1, max_value=8), st.sampled_from([0.0, 0.1]))
def test_the_judges_interval_narrows_with_looks(t, rel, n, drift):
    judge = Judge(drift=drift)
    fewer, more = judge.interval(point(t, rel, looks=n)).half_width, judge.interval(point(t, rel, looks=n + 1)).half_width
    assert more <= fewer
    if drift:  # the drift term shrinks with every look
        assert more < fewer


def test_merged_looks_narrow_the_judges_interval():
    rows = [point(100.0 + d, 0.05, repeat=i) for i, d in enumerate((0.0, 3.0, -2.0))]
    judge = Judge()
    (merged,) = repeats.merge(rows)
    assert judge.interval(merged).half_width < min(judge.interval(r).half_width for r in rows)


def test_meets_is_decided_at_the_ends_of_the_interval():
    judge = Judge(SearchGoal(latency_budget_ms=10.0, min_throughput=50.0))
    assert judge.meets(point(100.0, p99=9.0, p99_ci=0.5)) is True
    assert judge.meets(point(100.0, p99=9.8, p99_ci=0.5)) is None  # inside only by luck, perhaps
    assert judge.meets(point(100.0, p99=11.0, p99_ci=0.5)) is False
    assert judge.meets(point(52.0, rel=0.1)) is None  # 46.8..57.2 infer/s against a minimum of 50
    assert Judge().meets(point(1.0)) is True  # no goal


def test_tied_needs_a_precise_small_difference():
    judge = Judge()
    assert judge.compare(point(100.0, 0.005), point(101.0, 0.005)) == TIED  # 1 +- 0.7: surely within 3%, whichever is ahead
    assert judge.compare(point(100.0, 0.05), point(101.0, 0.05)) == UNSURE  # 1 +- 7: could be either
    assert judge.compare(point(110.0, 0.01), point(100.0, 0.01)) == BEATS
    assert judge.compare(point(104.0, 0.001), point(100.0, 0.001), by=0.05) == UNSURE  # surely better, not by 5%


def test_batch_means_of_known_sequences():
    assert intervals.of_values([5.0, 5.0, 5.0]).half_width == 0.0
    assert math.isinf(intervals.of_values([5.0]).half_width)
    # three values: t(2) * sd / sqrt(3)
    assert intervals.of_values([9.0, 10.0, 11.0]).half_width == pytest.approx(4.303 / math.sqrt(3))
    # a trend (strongly autocorrelated windows) is batched: fewer, larger batches, a wider interval
    trend = [float(i) for i in range(16)]
    naive = 2.131 * (sum((v - 7.5) ** 2 for v in trend) / 15) ** 0.5 / 4
    assert intervals.of_values(trend).half_width > naive


@settings(max_examples=50)
@given(st.lists(st.floats(min_value=1.0, max_value=1e4), min_size=2, max_size=40), st.floats(min_value=0.1, max_value=100))
def test_batch_means_scale_with_the_data(values, k):
    a, b = intervals.of_values(values), intervals.of_values([v * k for v in values])
    assert b.half_width == pytest.approx(a.half_width * k, rel=1e-6, abs=1e-9)
    assert b.value == pytest.approx(a.value * k, rel=1e-9)


def test_t_quantiles_fall_towards_the_normal():
    values = [intervals.t95(df) for df in range(1, 300)]
    assert all(x >= y for x, y in zip(values, values[1:]))
    assert values[0] == pytest.approx(12.706) and values[-1] == pytest.approx(1.97, abs=0.01)


def test_drift_comes_from_looks_that_disagree_beyond_their_intervals():
    agreeing = [point(100.0 + d, 0.05, repeat=r, point_id=f"p{i}") for i in range(3) for r, d in enumerate((0.0, 1.0))]
    assert estimate_drift(agreeing) == 0.0
    apart = [point(100.0 + d, 0.01, repeat=r, point_id=f"p{i}") for i in range(3) for r, d in enumerate((-10.0, 10.0))]
    assert estimate_drift(apart) == pytest.approx(math.sqrt(200.0 - 1.0 / 1.96**2 * (0.81 + 1.21) / 2) / 100, rel=0.01)
    assert estimate_drift(apart[:4]) == 0.0  # two repeated points are too few to say
