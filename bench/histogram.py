"""How much tsweep's native Histogram saves over the alternatives. Run on demand, not a test:

    python bench/histogram.py [--n 10000000] [--loop-n 1000000]

Recording: Histogram.record_many over all n lognormal latencies, and per-value Python loops
(Histogram.record, hdrhistogram's record_value) over a loop-n subset, all reported per value.
Querying: p50/p90/p99/p99.9 from each histogram, against numpy.percentile over the raw samples,
which is what keeping every sample would cost. Needs the bench extra: pip install .[bench].
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from tsweep.ext.histogram import Histogram

try:
    from hdrh.histogram import HdrHistogram
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("needs the hdrhistogram package: pip install .[bench]  (or pip install hdrhistogram)")

PCTS = [50.0, 90.0, 99.0, 99.9]


def best_seconds(fn, repeat: int) -> float:
    """Fastest of `repeat` runs: the least disturbed by other work on a shared machine."""
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000, help="values recorded in bulk")
    ap.add_argument("--loop-n", type=int, default=1_000_000, help="values recorded one call each")
    args = ap.parse_args()

    # Latencies around 2 ms with a long right tail, as a loaded server produces.
    values = np.random.default_rng(0).lognormal(math.log(2e6), 0.8, args.n).astype(np.int64)
    subset = values[: args.loop_n].tolist()  # Python ints, as a per-request callback would pass

    bulk = Histogram()

    def record_many():
        bulk.reset()
        bulk.record_many(values)

    t_bulk = best_seconds(record_many, 3) / args.n

    looped = Histogram()
    rec = looped.record
    t0 = time.perf_counter()
    for v in subset:
        rec(v)
    t_loop = (time.perf_counter() - t0) / len(subset)

    hdr = HdrHistogram(1, 3_600_000_000_000, 3)
    rec_hdr = hdr.record_value
    t0 = time.perf_counter()
    for v in subset:
        rec_hdr(v)
    t_hdr = (time.perf_counter() - t0) / len(subset)

    q_tsw = best_seconds(lambda: [bulk.percentiles(PCTS) for _ in range(2_000)], 3) / 2_000
    q_hdr = best_seconds(lambda: [[hdr.get_value_at_percentile(p) for p in PCTS] for _ in range(20)], 3) / 20
    q_np = best_seconds(lambda: np.percentile(values, PCTS, method="inverted_cdf"), 3)

    exact = np.percentile(values, PCTS, method="inverted_cdf")
    exact_sub = np.percentile(values[: args.loop_n], PCTS, method="inverted_cdf")
    ours = bulk.percentiles(PCTS)
    theirs = [hdr.get_value_at_percentile(p) for p in PCTS]
    err_ours = max(abs(o - e) / e for o, e in zip(ours, exact))
    err_hdr = max(abs(o - e) / e for o, e in zip(theirs, exact_sub))

    print(f"{args.n:,} lognormal latencies (median 2 ms); Python loops over the first {len(subset):,}\n")
    print(f"{'record, per value':48} {'ns':>10}")
    print(f"{'tsweep Histogram.record_many (bulk, all n)':48} {t_bulk * 1e9:10.2f}")
    print(f"{'tsweep Histogram.record (Python loop)':48} {t_loop * 1e9:10.1f}")
    print(f"{'hdrhistogram record_value (Python loop)':48} {t_hdr * 1e9:10.1f}")
    print()
    print(f"{'query p50/p90/p99/p99.9, all four':48} {'us':>10}  max rel. error")
    print(f"{'tsweep Histogram.percentiles':48} {q_tsw * 1e6:10.2f}  {err_ours:.2e}")
    print(f"{'hdrhistogram get_value_at_percentile x4':48} {q_hdr * 1e6:10.2f}  {err_hdr:.2e}")
    print(f"{'numpy.percentile over the raw samples':48} {q_np * 1e6:10.0f}  exact")
    print()
    print(f"tsweep record_many is {t_hdr / t_bulk:,.0f}x faster than hdrhistogram.record_value")
    print(f"tsweep record (Python loop) is {t_hdr / t_loop:,.1f}x faster than hdrhistogram.record_value")
    print(f"tsweep percentiles is {q_hdr / q_tsw:,.1f}x faster than hdrhistogram "
          f"and {q_np / q_tsw:,.0f}x faster than numpy.percentile on the samples")


if __name__ == "__main__":
    main()
