"""The sampler every built-in collector shares: a background thread and per-point aggregates."""
import time

import pytest

from tsweep.plugins.collectors.sampling import SampledCollector, aggregate


def test_memory_takes_the_peak_everything_else_the_mean():
    samples = [(1.0, {"cpu": 10.0, "server_memory_mb": 100.0}), (2.0, {"cpu": 30.0, "server_memory_mb": 80.0})]
    assert aggregate(samples) == {"cpu": 20.0, "server_memory_mb": 100.0}


def test_only_samples_since_the_judged_windows_count():
    samples = [(1.0, {"cpu": 90.0}), (2.0, {"cpu": 10.0}), (3.0, {"cpu": 20.0})]
    assert aggregate(samples, since=2.0) == {"cpu": 15.0}
    assert aggregate(samples, since=9.0) == {"cpu": 20.0}  # none that recent: the last one stands in
    assert aggregate([]) == {}


def test_a_name_missing_from_some_samples_averages_over_those_that_have_it():
    assert aggregate([(1.0, {"a": 1.0}), (2.0, {"a": 3.0, "b": 5.0})]) == {"a": 2.0, "b": 5.0}


def test_background_thread_samples_until_stopped():
    reads = []

    def read():
        reads.append(len(reads))
        return {"n": float(len(reads))}

    collector = SampledCollector(read, 0.01, ())
    collector.start()
    deadline = time.monotonic() + 10
    while len(collector.samples()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)  # bounded polling for the thread's samples
    result = collector.stop(0.0)
    taken = len(reads)
    assert taken >= 4  # three from the thread at least, one at stop
    assert result == {"n": pytest.approx(sum(range(1, taken + 1)) / taken)}
    assert len(reads) == taken  # nothing samples after stop


def test_failed_reads_are_skipped_and_prime_runs_at_start():
    calls = []

    def read():
        calls.append("read")
        if calls.count("read") == 1:
            raise OSError("scrape timed out")
        return {"x": 7.0}

    collector = SampledCollector(read, 3600.0, (), prime=lambda: calls.append("prime"))
    assert collector.stop(0.0) == {}  # never started
    collector.start()
    assert collector.stop(0.0) == {}  # the only read (at stop) failed: the metric is missing
    collector.start()
    assert collector.stop(0.0) == {"x": 7.0}
    assert calls == ["prime", "read", "prime", "read"]
