# cython: language_level=3
"""Latency histogram for the load generator: fixed memory, O(1) record, bounded error.

Keeping every latency sample of a long sweep costs memory proportional to the request count
and a sort per percentile query; this histogram instead keeps ~264 KiB of counters per
instance and answers any percentile within 1/2048 (~0.05%) of the exact sample, so per-thread
histograms can be merged, shipped between processes as a few KiB of bytes, and queried in
microseconds. The C core is ``tsw_hist.h`` (layout, rank definition and error bound are
documented there); this module only adapts it to Python.

All values are integer nanoseconds. Values above :data:`MAX_VALUE_NS` (~73 minutes) are
recorded as ``MAX_VALUE_NS`` and counted in ``overflow``; negative values are recorded as 0.
"""
cimport cython
from libc.math cimport isnan
from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport free, malloc

import numpy as np

MAX_VALUE_NS = TSW_HIST_MAX_VALUE

_SUMMARY_PERCENTILES = (
    ("p50_ns", 50.0),
    ("p90_ns", 90.0),
    ("p95_ns", 95.0),
    ("p99_ns", 99.0),
    ("p99_9_ns", 99.9),
)


# Truncates toward zero, as int() and record() do. Values past the top stay above it so the C
# side counts them as overflow; casting them directly is undefined behaviour for x >= 2^63.
cdef inline int64_t _ns_from_float(double x) noexcept nogil:
    if x > <double>TSW_HIST_MAX_VALUE:
        return TSW_HIST_MAX_VALUE + 1
    if x <= 0.0:
        return 0
    return <int64_t>x


cdef class Histogram:
    """A log-linear latency histogram of nanosecond values (3 significant digits).

    Not thread-safe by design: give each thread its own Histogram and :meth:`merge` them, which
    is exact (merging equals recording the union). ``record_many`` releases the GIL; while it
    runs, other threads calling into the same instance get a RuntimeError rather than racing.
    """

    def __cinit__(self):
        self._h = tsw_hist_new()
        if self._h is NULL:
            raise MemoryError("cannot allocate a histogram")

    def __dealloc__(self):
        tsw_hist_free(self._h)

    cdef int _check_idle(self) except -1:
        if self._busy:
            raise RuntimeError(
                "this Histogram is being filled by record_many() in another thread; "
                "use one Histogram per thread and merge() them"
            )
        return 0

    def record(self, int64_t value_ns):
        """Record one latency in ns (a float is truncated like int(); beyond int64 is an
        OverflowError, whereas anything in int64 above MAX_VALUE_NS is clamped and counted).

        Cheap enough for a Python loop (one C call), but record_many is ~10x cheaper per value.
        """
        self._check_idle()
        tsw_hist_record(self._h, value_ns)

    def record_many(self, values):
        """Record a 1-D array (or buffer, or sequence) of ns latencies in one call.

        Integer input is recorded as is; float input is truncated like int(), and a NaN
        anywhere raises ValueError before anything is recorded (a NaN latency is a bug upstream,
        not a sample). The loop runs in C without the GIL, so the cost per value is a few ns.
        """
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise ValueError(f"record_many needs a 1-D array, got {arr.ndim} dimensions")
        kind = arr.dtype.kind
        if kind == "f":
            self._record_floats(arr.astype(np.float64, copy=False))
        elif kind in "iu":
            if kind == "u" and arr.dtype.itemsize == 8:
                arr = np.minimum(arr, np.iinfo(np.int64).max)  # would wrap negative as int64
            self._record_ints(arr.astype(np.int64, copy=False))
        else:
            raise TypeError(f"record_many needs integer or float nanoseconds, got dtype {arr.dtype}")

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef int _record_ints(self, const int64_t[:] values) except -1:
        cdef Py_ssize_t i, n = values.shape[0]
        self._check_idle()
        self._busy = True
        with nogil:
            for i in range(n):
                tsw_hist_record(self._h, values[i])
        self._busy = False
        return 0

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef int _record_floats(self, const double[:] values) except -1:
        cdef Py_ssize_t i, n = values.shape[0], nan_at = -1
        self._check_idle()
        self._busy = True
        with nogil:
            for i in range(n):
                if isnan(values[i]):
                    nan_at = i
                    break
            if nan_at < 0:
                for i in range(n):
                    tsw_hist_record(self._h, _ns_from_float(values[i]))
        self._busy = False
        if nan_at >= 0:
            raise ValueError(f"record_many: values[{nan_at}] is NaN; nothing was recorded")
        return 0

    def merge(self, Histogram other not None):
        """Add other's samples to this histogram (exact: same as recording them here)."""
        self._check_idle()
        other._check_idle()
        tsw_hist_merge(self._h, other._h)

    def reset(self):
        """Forget all samples, keeping the memory (cheaper than a new Histogram per window)."""
        self._check_idle()
        tsw_hist_reset(self._h)

    @property
    def count(self):
        """Number of samples recorded."""
        self._check_idle()
        return tsw_hist_count(self._h)

    @property
    def overflow(self):
        """How many samples were above MAX_VALUE_NS and recorded as MAX_VALUE_NS."""
        self._check_idle()
        return tsw_hist_overflow(self._h)

    @property
    def min(self):
        """Exact smallest sample in ns (0 when empty)."""
        self._check_idle()
        return tsw_hist_min(self._h)

    @property
    def max(self):
        """Exact largest sample in ns (0 when empty; MAX_VALUE_NS if any overflowed)."""
        self._check_idle()
        return tsw_hist_max(self._h)

    @property
    def mean(self):
        """Exact mean in ns, from an exact integer sum (0.0 when empty)."""
        self._check_idle()
        return tsw_hist_mean(self._h)

    @property
    def stddev(self):
        """Population standard deviation in ns, from exact integer sums (0.0 when empty)."""
        self._check_idle()
        return tsw_hist_stddev(self._h)

    def value_at_percentile(self, double p):
        """The sample at percentile p in [0, 100] (inverted-CDF rank), in ns, within 1/2048.

        The rank is max(1, ceil(p/100 * count)), numpy's method="inverted_cdf": an actual
        sample, never an interpolation between two, so p99 means "99% of requests were at
        least this fast". 0 when empty.
        """
        if not 0.0 <= p <= 100.0:
            raise ValueError(f"percentile must be in [0, 100], got {p}")
        self._check_idle()
        return tsw_hist_value_at_percentile(self._h, p)

    def percentiles(self, ps):
        """value_at_percentile for each p in ps, as a list of ns."""
        return [self.value_at_percentile(p) for p in ps]

    def to_bytes(self):
        """Compact, canonical encoding (equal histograms give equal bytes), typically a few KiB,
        so per-process histograms can be sent to the parent and merged there."""
        self._check_idle()
        cdef size_t cap = tsw_hist_encoded_max_size(self._h)
        cdef uint8_t *buf = <uint8_t *>malloc(cap)
        if buf is NULL:
            raise MemoryError("cannot allocate the encoding buffer")
        try:
            return (<char *>buf)[:tsw_hist_encode(self._h, buf)]
        finally:
            free(buf)

    @classmethod
    def from_bytes(cls, data):
        """Rebuild a histogram from to_bytes() output; ValueError if data is not one."""
        cdef const uint8_t[:] view = memoryview(data).cast("B")
        cdef Py_ssize_t n = view.shape[0]
        cdef const char *why = NULL
        cdef tsw_hist *h = tsw_hist_decode_why(&view[0] if n > 0 else NULL, n, &why)
        if h is NULL:
            if why is NULL:
                raise MemoryError("cannot allocate a histogram")
            raise ValueError(f"malformed histogram bytes: {why.decode()}")
        cdef Histogram out = cls.__new__(cls)
        tsw_hist_free(out._h)
        out._h = h
        return out

    def __reduce__(self):
        return (type(self).from_bytes, (self.to_bytes(),))

    def __eq__(self, other):
        """Equal when they hold the same samples per bucket and the same exact statistics."""
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # mutable

    def __len__(self):
        return self.count

    def __repr__(self):
        if not self.count:
            return "Histogram(count=0)"
        return (
            f"Histogram(count={self.count}, min_ns={self.min}, p50_ns={self.value_at_percentile(50)}, "
            f"p99_ns={self.value_at_percentile(99)}, max_ns={self.max}, overflow={self.overflow})"
        )


def summarize(Histogram h not None):
    """The latency summary tsweep reports for a run, as a plain (JSON-ready) dict of ns."""
    out = {
        "count": h.count,
        "min_ns": h.min,
        "max_ns": h.max,
        "mean_ns": h.mean,
        "stddev_ns": h.stddev,
    }
    for key, p in _SUMMARY_PERCENTILES:
        out[key] = h.value_at_percentile(p)
    return out
