"""Properties of tsweep.ext.histogram, checked against exact answers computed by numpy.

Rank convention: Histogram.value_at_percentile(p) answers for the sample of 1-based rank
max(1, ceil(p/100 * n)), which is numpy's ``method="inverted_cdf"``, so that is the exact
reference. The promise is a relative error of at most 1/2048 against that sample, exact below
2048 ns, and exact min/max; the tests assert exactly that bound (in integers, no float slack).
"""
from __future__ import annotations

import math
import pickle
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsweep.ext.histogram import MAX_VALUE_NS, Histogram, summarize

PCTS = [0.0, 0.1, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0]
US, S = 1_000, 1_000_000_000

bounded = settings(max_examples=150, deadline=None)


def exact_percentiles(data: np.ndarray, pcts) -> list[int]:
    return [int(v) for v in np.percentile(data, pcts, method="inverted_cdf")]


def within_bound(reported: int, exact: int) -> bool:
    """|reported - exact| <= exact / 2048, in exact integer arithmetic."""
    return 2048 * abs(reported - exact) <= exact


def filled(data) -> Histogram:
    h = Histogram()
    h.record_many(np.asarray(data, dtype=np.int64))
    return h


@st.composite
def latencies(draw) -> np.ndarray:
    """Latency-like int64 ns samples between 1 us and 60 s, shaped by a few distributions."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["lognormal", "pareto", "mixture", "uniform", "constant", "single", "edges"]))
    n = 1 if kind == "single" else draw(st.integers(1, 20_000))
    median = 10 ** draw(st.floats(3.0, 9.5))  # 1 us .. ~3 s
    if kind == "lognormal":
        x = rng.lognormal(math.log(median), draw(st.floats(0.01, 3.0)), n)
    elif kind == "pareto":  # heavy tail; alpha < 1 has no finite mean
        x = median * (1.0 + rng.pareto(draw(st.floats(0.3, 3.0)), n))
    elif kind == "mixture":  # fast path plus a slow mode (cache misses, retries, GC pauses)
        slow = rng.random(n) < draw(st.floats(0.0, 0.3))
        x = np.where(slow, rng.lognormal(math.log(median * 50), 1.0, n), rng.lognormal(math.log(median), 0.3, n))
    elif kind == "uniform":
        x = rng.uniform(US, 60 * S, n)
    elif kind == "edges":  # exactly on and next to bucket boundaries (powers of two)
        x = 2.0 ** rng.integers(10, 36, n) + rng.integers(-1, 2, n)
    else:  # constant or single
        x = np.full(n, median)
    return np.clip(x, US, 60 * S).astype(np.int64)


@bounded
@given(latencies())
def test_percentiles_within_bound_of_exact(data):
    h = filled(data)
    assert h.count == len(h) == len(data)
    assert h.min == data.min() and h.max == data.max()
    assert h.overflow == 0
    got = h.percentiles(PCTS)
    for p, reported, exact in zip(PCTS, got, exact_percentiles(data, PCTS)):
        assert within_bound(reported, exact), (p, reported, exact)
    assert got[0] == data.min() and got[-1] == data.max()


@bounded
@given(st.lists(st.integers(0, 2047), min_size=1, max_size=300), st.floats(0.0, 100.0))
def test_rank_definition_is_numpy_inverted_cdf(values, p):
    """Below 2048 ns every value has its own slot, so the answer must match numpy exactly."""
    assert filled(values).value_at_percentile(p) == exact_percentiles(np.array(values), [p])[0]


@bounded
@given(latencies())
def test_mean_and_stddev_match_numpy(data):
    h = filled(data)
    assert math.isclose(h.mean, float(np.mean(data)), rel_tol=1e-12)
    assert math.isclose(h.stddev, float(np.std(data)), rel_tol=1e-9, abs_tol=1e-9 * h.max)


def test_stddev_has_no_cancellation_for_tight_distributions():
    """1 s latencies with ~1 us of jitter: sumsq/n - mean^2 in doubles would lose every digit."""
    data = S + np.random.default_rng(7).integers(-1000, 1001, 200_000)
    n, s1, s2 = len(data), int(data.sum()), sum(int(v) * int(v) for v in data)
    exact = math.sqrt((n * s2 - s1 * s1) / (n * n))
    assert math.isclose(filled(data).stddev, exact, rel_tol=1e-12)


@bounded
@given(latencies(), st.lists(st.floats(0.0, 1.0), max_size=3))
def test_merge_equals_recording_the_union(data, cuts):
    bounds = [0, *sorted(int(c * len(data)) for c in cuts), len(data)]
    merged = Histogram()
    for lo, hi in zip(bounds, bounds[1:]):
        merged.merge(filled(data[lo:hi]))
    union = filled(data)
    assert merged == union
    assert merged.percentiles(PCTS) == union.percentiles(PCTS)
    assert (merged.count, merged.min, merged.max, merged.mean, merged.stddev) == (
        union.count, union.min, union.max, union.mean, union.stddev)


def test_merge_into_itself_doubles():
    h = filled([5, 10, 10_000])
    h.merge(h)
    assert h == filled([5, 5, 10, 10, 10_000, 10_000])


@bounded
@given(latencies(), latencies())
def test_reset_forgets_everything(before, after):
    h = filled(before)
    h.reset()
    assert h == Histogram()
    assert (h.count, h.min, h.max, h.mean, h.stddev, h.overflow) == (0, 0, 0, 0.0, 0.0, 0)
    assert h.percentiles(PCTS) == [0] * len(PCTS)
    h.record_many(after)  # no stale slot from `before` may survive
    assert h == filled(after)


@bounded
@given(latencies())
def test_serialization_round_trip(data):
    h = filled(data)
    h.record(MAX_VALUE_NS + 5)  # the overflow count must survive too
    for back in (Histogram.from_bytes(h.to_bytes()), pickle.loads(pickle.dumps(h))):
        assert back == h
        assert back.percentiles(PCTS) == h.percentiles(PCTS)
        assert (back.count, back.min, back.max, back.overflow, back.mean, back.stddev) == (
            h.count, h.min, h.max, h.overflow, h.mean, h.stddev)
    assert Histogram.from_bytes(bytearray(h.to_bytes())) == h


def test_encoding_is_compact():
    data = np.random.default_rng(1).lognormal(math.log(5e6), 0.5, 100_000).astype(np.int64)
    # ~4,000 occupied slots at ~2 bytes each, vs 264 KiB of counters or 800 KB of samples
    assert len(filled(data).to_bytes()) < 10_000
    assert len(Histogram().to_bytes()) < 16


@pytest.mark.parametrize(
    "data, why",
    [
        (b"", "bad magic"),
        (b"XXXX\x01\x00\x00\x00\x00\x00\x00", "bad magic"),
        (b"TSWH\x02\x00\x00\x00\x00\x00\x00", "version"),
        (b"TSWH\x01\x00\x00", "header"),
        (b"TSWH\x01\x01\x00\x05\x05\x05\x19", "add up"),  # count 1, no buckets
        (b"TSWH\x01\x00\x00\x00\x00\x00\x00\x05\x01", "add up"),  # empty, yet a bucket
        (b"TSWH\x01\x01\x00\x05\x05\x05\x19\x05", "truncated bucket data"),  # gap, no count
        (b"TSWH\x01\x01\x00\x05\x05\x05\x19\x06\x01", "min/max"),  # 5 belongs in slot 5, not 6
        (b"TSWH\x01\x01\x00\x05\x05\x06\x19\x05\x01", "sum"),  # sum 6 with one sample of 5
        (b"TSWH\x01\x01\x00\x05\x05\x05\x19\x05\x01\x00", "truncated"),  # trailing byte
        (b"TSWH\x01\x81\x00\x00\x05\x05\x05\x19\x05\x01", "header"),  # padded varint
        (b"TSWH\x01\x01\x00\x05\x05\x05\x18\x05\x01", "sum of squares"),  # 24 != 5 * 5
    ],
)
def test_malformed_bytes_raise_value_error(data, why):
    with pytest.raises(ValueError, match=why):
        Histogram.from_bytes(data)


def test_minimal_valid_encoding():
    """The hand-made encodings above are one field away from this valid one."""
    assert Histogram.from_bytes(b"TSWH\x01\x01\x00\x05\x05\x05\x19\x05\x01") == filled([5])


@bounded
@given(latencies(), st.data())
def test_truncated_or_corrupted_encodings_never_decode_to_garbage(data, draw):
    good = filled(data).to_bytes()
    cut = draw.draw(st.integers(0, len(good) - 1))
    with pytest.raises(ValueError):
        Histogram.from_bytes(good[:cut])
    i = draw.draw(st.integers(0, len(good) - 1))
    bad = bytearray(good)
    bad[i] ^= draw.draw(st.integers(1, 255))
    try:
        h = Histogram.from_bytes(bytes(bad))
    except ValueError:
        return
    assert h.to_bytes() == bytes(bad)  # accepted only if it is a canonical, consistent encoding


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_raise_value_error(data):
    with pytest.raises(ValueError):
        Histogram.from_bytes(data)


def test_from_bytes_rejects_non_bytes():
    with pytest.raises(TypeError):
        Histogram.from_bytes("TSWH")


def test_overflow_and_negative_values_are_clamped():
    assert MAX_VALUE_NS >= 3600 * S
    h = Histogram()
    for v in (MAX_VALUE_NS, MAX_VALUE_NS + 1, 2**62, 2**63 - 1, 7 * 24 * 3600 * S):
        h.record(v)
    h.record_many(np.array([np.inf, 1e30], dtype=np.float64))
    h.record_many(np.array([2**64 - 1], dtype=np.uint64))
    assert h.overflow == 7 and h.count == 8
    assert h.max == MAX_VALUE_NS and h.value_at_percentile(100) == MAX_VALUE_NS
    assert within_bound(h.value_at_percentile(50), MAX_VALUE_NS)
    h.record(-5)
    h.record_many(np.array([-1e9, -np.inf]))
    assert h.min == 0 and h.value_at_percentile(0) == 0 and h.overflow == 7
    assert h.mean == pytest.approx(8 * MAX_VALUE_NS / 11)


@bounded
@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=200))
def test_record_many_equals_loop_of_record(values):
    looped = Histogram()
    for v in values:
        looped.record(v)
    assert filled(values) == looped
    bulk_list = Histogram()
    bulk_list.record_many(values)
    assert bulk_list == looped


@bounded
@given(st.lists(st.floats(-1e13, 1e13, allow_nan=False), max_size=200))
def test_record_many_floats_equal_record_of_int(values):
    looped = Histogram()
    for v in values:
        looped.record(min(int(v), MAX_VALUE_NS + 1))
    bulk = Histogram()
    bulk.record_many(np.array(values, dtype=np.float64))
    assert bulk == looped


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint16, np.uint64, np.float32])
def test_record_many_accepts_other_numeric_dtypes(dtype):
    h = Histogram()
    h.record_many(np.array([1, 2, 100], dtype=dtype))
    assert h == filled([1, 2, 100])


def test_record_many_accepts_strided_and_readonly_arrays():
    data = np.arange(20, dtype=np.int64)
    data.flags.writeable = False
    h = Histogram()
    h.record_many(data[::3])
    assert h == filled(list(range(0, 20, 3)))


def test_record_many_rejects_bad_input_without_recording():
    h = Histogram()
    with pytest.raises(ValueError, match="NaN"):
        h.record_many(np.array([1.0, 2.0, np.nan]))
    with pytest.raises(ValueError, match="1-D"):
        h.record_many(np.ones((2, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="dtype"):
        h.record_many(np.array(["1"]))
    assert h == Histogram()


def test_concurrent_use_during_record_many_raises_instead_of_racing():
    """record_many runs without the GIL; other threads must not touch the histogram then."""
    h = Histogram()
    values = np.broadcast_to(np.int64(5_000), (50_000_000,))  # ~0.1 s of recording, no memory
    filler = threading.Thread(target=h.record_many, args=(values,))
    refused = accepted = 0
    filler.start()
    while filler.is_alive():
        try:
            h.record(1)
            accepted += 1
        except RuntimeError:
            refused += 1
    filler.join()
    assert refused > 0
    assert h.count == len(values) + accepted  # nothing lost or torn


@pytest.mark.parametrize("p", [-0.1, 100.1, float("nan")])
def test_percentile_outside_0_100_raises(p):
    with pytest.raises(ValueError):
        filled([1]).value_at_percentile(p)


def test_empty_histogram():
    h = Histogram()
    assert (len(h), h.count, h.min, h.max, h.mean, h.stddev, h.overflow) == (0, 0, 0, 0, 0.0, 0.0, 0)
    assert h.value_at_percentile(50) == 0
    assert repr(h) == "Histogram(count=0)"
    assert summarize(h) == dict.fromkeys(
        ["count", "min_ns", "max_ns", "mean_ns", "stddev_ns", "p50_ns", "p90_ns", "p95_ns", "p99_ns", "p99_9_ns"], 0
    )


def test_summarize_and_repr():
    data = np.arange(1, 10_001, dtype=np.int64) * US
    h = filled(data)
    s = summarize(h)
    assert list(s) == ["count", "min_ns", "max_ns", "mean_ns", "stddev_ns",
                       "p50_ns", "p90_ns", "p95_ns", "p99_ns", "p99_9_ns"]
    assert (s["count"], s["min_ns"], s["max_ns"]) == (10_000, US, 10_000 * US)
    assert s["mean_ns"] == pytest.approx(data.mean()) and s["stddev_ns"] == pytest.approx(data.std())
    exact = exact_percentiles(data, [50, 90, 95, 99, 99.9])
    for key, e in zip(["p50_ns", "p90_ns", "p95_ns", "p99_ns", "p99_9_ns"], exact):
        assert within_bound(s[key], e)
    assert repr(h).startswith("Histogram(count=10000, min_ns=1000, p50_ns=")


def test_histograms_are_unhashable_and_compare_only_to_histograms():
    with pytest.raises(TypeError):
        hash(Histogram())
    assert Histogram() != b""
    assert filled([1]) != filled([2])
