"""The measurement method on synthetic window sequences (no server: the rule itself)."""
import numpy as np
import pytest

from tsweep import modelconfig
from tsweep.ext.histogram import Histogram
from tsweep.measure import MethodSettings, known_enough, measure
from tsweep.judge import Judge
from tsweep.records import LoadLevel, LoadWindow, Measurement, SearchGoal, Trial, Variant
from tsweep.triton import ServerStats

TRIAL = Trial(Variant("m", modelconfig.parse('name: "m"'), {}, name="m_config_0"), LoadLevel("concurrency", 4))


class ScriptedLoad:
    """Hands out pre-scripted windows: (requests, latency ms) per window, 1 s each."""

    def __init__(self, script):
        self.script = list(script)
        self.started = self.stopped = 0
        self.taken = 0

    def start(self):
        self.started += 1

    def take_window(self):
        n, latency_ms = self.script[min(self.taken, len(self.script) - 1)]
        self.taken += 1
        h = Histogram()
        h.record_many(np.full(n, latency_ms * 1e6, dtype=np.int64))
        return LoadWindow(duration_ns=1_000_000_000, completed=n, errors=0, histogram=h)

    def stop(self):
        self.stopped += 1


class Counter:
    """Server statistics that grow by 100 successes of 1 ms queue per call."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        c = self.calls * 100
        return ServerStats(success_count=c, queue_ns=c * 1_000_000, compute_infer_ns=c * 2_000_000)


def run(script, decided=None, **kw):
    load = ScriptedLoad([(0, 1)] + script)  # first window is the warm-up
    m = measure(TRIAL, load, Counter(), MethodSettings(window_s=1.0, **kw), clock=lambda s: None, decided=decided)
    assert (load.started, load.stopped) == (1, 1)
    return m


def test_point_ends_when_both_intervals_are_narrow():
    m = run([(1000, 2), (1000, 2), (1020, 2), (3000, 9)])
    assert m.status == "ok" and m.windows == 3
    assert m.throughput == pytest.approx((1000 + 1000 + 1020) / 3, rel=1e-6)
    assert m.latency_p99_ms == pytest.approx(2.0, rel=1e-3)
    # batch means over three windows: t(2) = 4.303 times the standard error of the mean
    assert m.throughput_ci == pytest.approx(4.303 * 11.547 / 3**0.5, rel=1e-3)
    assert m.latency_p99_ci_ms == pytest.approx(0.0, abs=1e-6)
    assert m.queue_ms == pytest.approx(1.0) and m.compute_infer_ms == pytest.approx(2.0)


def test_point_that_never_gets_precise_is_kept_at_the_cap_with_its_interval():
    m = run([(1000, 2), (1500, 2)] * 6, max_windows=6)
    assert m.status == "unstable" and m.windows == 6 and m.throughput == pytest.approx(1250)
    assert len(m.window_throughputs) == 6
    assert 0.05 * 1250 < m.throughput_ci < 1250  # wider than asked for, and finite


def test_latency_disagreement_keeps_the_point_going_too():
    windows = [(1000, 2), (1000, 3), (1000, 2), (1000, 3)]
    assert not known_enough([], MethodSettings(), 1)
    m = run(windows * 2, max_windows=5)
    assert m.status == "unstable" and m.latency_p99_ci_ms > 0.1 * m.latency_p99_ms


def test_looser_precision_ends_sooner():
    script = [(1000, 2), (1100, 2), (950, 2), (1050, 2)] * 3
    tight, loose = run(script, max_windows=12), run(script, max_windows=12, throughput_precision=0.25)
    assert loose.status == "ok" and loose.windows == 3
    assert tight.windows > loose.windows


def judged_by(budget_ms, rival=None):
    judge = Judge(SearchGoal(latency_budget_ms=budget_ms))
    return lambda p: judge.decided(p, rival)


NOISY = [(1000, 50), (1500, 52), (700, 51)] * 4  # throughput far from precise


def test_a_point_surely_over_the_budget_ends_early():
    over = run(NOISY, judged_by(10), max_windows=12)
    assert over.status == "ok" and over.windows == 3
    assert run(NOISY, judged_by(60), max_windows=12).windows == 12  # could be inside: keep going


def rival_at(throughput, ci):
    return Measurement("m", "m_config_1", "d1", "concurrency", 4, 1, "ok", throughput=throughput, throughput_ci=ci, latency_p99_ms=5.0, latency_p99_ci_ms=0.1)


def test_a_point_that_surely_loses_to_the_best_ends_early():
    beaten = run(NOISY, judged_by(100, rival_at(5000, 100)), max_windows=12)
    assert beaten.status == "ok" and beaten.windows == 3
    # a rival it may still beat: the point earns its precision (here: up to the cap)
    assert run(NOISY, judged_by(100, rival_at(1000, 100)), max_windows=12).windows == 12
    # a p99 that straddles the budget keeps the point going, even when it cannot win
    straddling = [(1000, 48), (1000, 52)] * 6  # p99 about 52 +- 2 ms against a 51 ms budget
    assert run(straddling, judged_by(51, rival_at(5000, 100)), max_windows=12, latency_precision=0.001).windows == 12


def test_short_windows_are_extended_not_judged():
    m = run([(10, 2)] * 5 + [(1000, 2)] * 3, max_windows=4)
    assert m.windows == 4
    assert m.window_throughputs[0] == pytest.approx(10.0)  # five 10-request windows became one of 50 over 5 s


class StampedLoad(ScriptedLoad):
    """A scripted load that notes the monotonic time of every take_window()."""

    def __init__(self, script):
        super().__init__(script)
        self.takes = []

    def take_window(self):
        import time

        self.takes.append(time.monotonic())
        return super().take_window()


class PlainCollector:
    """A collector without timestamped samples: ignores ``since``."""

    def __init__(self):
        self.calls = []

    def describe(self):
        return ()

    def start(self):
        self.calls.append("start")

    def stop(self, since):
        self.calls.append("stop")
        return {"plain": 2.0}


class WindowedCollector(PlainCollector):
    """Aggregates only samples since ``since``: records what the core passes."""

    def stop(self, since):
        self.calls.append(since)
        return {"windowed": 1.0}


def test_collectors_aggregate_from_the_start_of_the_judged_windows():
    # warm-up, then windows 1..3, which agree: every window after the warm-up is judged
    load = StampedLoad([(0, 1), (1000, 2), (1000, 2), (1000, 2)])
    windowed, plain = WindowedCollector(), PlainCollector()
    m = measure(TRIAL, load, Counter(), MethodSettings(window_s=1.0), [windowed, plain], clock=lambda s: None)
    assert m.status == "ok" and m.windows == 3
    assert m.metrics == {"windowed": 1.0, "plain": 2.0}
    assert plain.calls == ["start", "stop"]
    since = windowed.calls[1]
    # the judged windows begin when the warm-up window (take 0) was taken
    assert load.takes[0] <= since <= load.takes[1]


def test_collectors_see_the_whole_point_when_no_window_completed():
    class Broken(ScriptedLoad):
        def take_window(self):
            if self.taken:
                raise RuntimeError("load died")
            return super().take_window()

    windowed = WindowedCollector()
    with pytest.raises(RuntimeError):
        measure(TRIAL, Broken([(0, 1)]), Counter(), MethodSettings(window_s=1.0), [windowed], clock=lambda s: None)
    assert windowed.calls[0] == "start" and len(windowed.calls) == 2  # stopped all the same


def test_server_baseline_samples_each_collector_once_for_one_interval():
    from tsweep.measure import server_baseline

    waited = []
    plain = PlainCollector()
    assert server_baseline([plain], 0.25, clock=waited.append) == {"plain": 2.0}
    assert waited == [0.25] and plain.calls == ["start", "stop"]


def test_intervals_from_window_sequences_decide_ties():
    """The intervals come from the windows, and the Judge uses them to call a tie."""
    from dataclasses import replace

    from tsweep.analysis import mark_ties
    from tsweep.judge import Judge
    from tsweep.records import RankedConfig

    noisy_a = run([(1000, 2), (1040, 2), (960, 2)], throughput_precision=0.2)  # +-4% windows around 1000
    noisy_b = run([(1020, 2), (1060, 2), (980, 2)], throughput_precision=0.2)  # 2% better, as noisy
    quiet_a = run([(1000, 2), (1001, 2), (999, 2)])
    quiet_b = run([(1060, 2), (1061, 2), (1059, 2)])  # 6% better, quiet
    assert noisy_a.status == "ok" and noisy_a.throughput_ci == pytest.approx(4.303 * 40 / 3**0.5, rel=1e-3)
    assert quiet_a.throughput_ci == pytest.approx(4.303 * 1 / 3**0.5, rel=1e-3)

    def ranking(better, worse):
        named = [replace(better, variant="b"), replace(worse, variant="a")]
        return mark_ties([RankedConfig(i + 1, m.variant, "m", m, True, m.throughput) for i, m in enumerate(named)], Judge())

    assert ranking(noisy_b, noisy_a)[0].tied_with == ("a",)  # 2% apart, each +-10%: chance
    assert ranking(quiet_b, quiet_a)[0].tied_with == ()  # 6% apart, each +-0.25%: real
