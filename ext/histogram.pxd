# The histogram, declared once for every Cython module of tsweep.ext: the C API of tsw_hist.h
# (layout, rank definition and error bound are documented there) and the Histogram class that
# wraps it. histogram.pyx implements the class; loadgen.pyx cimports it to hand each window's
# latencies over as a struct merge rather than an encode/decode round trip.
#
# Cython finds this file as tsweep/ext/histogram.pxd through the include path setup.py builds
# (the package maps tsweep.ext to the folder ext/, which Cython cannot see by itself).
from libc.stdint cimport int64_t, uint8_t


cdef extern from "tsw_hist.h" nogil:
    ctypedef struct tsw_hist:
        pass

    int64_t TSW_HIST_MAX_VALUE

    tsw_hist *tsw_hist_new()
    void tsw_hist_free(tsw_hist *h)
    void tsw_hist_reset(tsw_hist *h)
    void tsw_hist_record(tsw_hist *h, int64_t value_ns)
    void tsw_hist_record_n(tsw_hist *h, int64_t value_ns, int64_t n)
    void tsw_hist_merge(tsw_hist *dst, const tsw_hist *src)
    int64_t tsw_hist_count(const tsw_hist *h)
    int64_t tsw_hist_overflow(const tsw_hist *h)
    int64_t tsw_hist_min(const tsw_hist *h)
    int64_t tsw_hist_max(const tsw_hist *h)
    double tsw_hist_mean(const tsw_hist *h)
    double tsw_hist_stddev(const tsw_hist *h)
    int64_t tsw_hist_value_at_percentile(const tsw_hist *h, double pct)
    size_t tsw_hist_encoded_max_size(const tsw_hist *h)
    size_t tsw_hist_encode(const tsw_hist *h, uint8_t *out)
    tsw_hist *tsw_hist_decode(const uint8_t *buf, size_t len)
    tsw_hist *tsw_hist_decode_why(const uint8_t *buf, size_t len, const char **why)


cdef class Histogram:
    cdef tsw_hist *_h
    # True while record_many runs without the GIL: every other method then refuses to touch
    # the C histogram (see _check_idle).
    cdef bint _busy

    cdef int _check_idle(self) except -1
    cdef int _record_ints(self, const int64_t[:] values) except -1
    cdef int _record_floats(self, const double[:] values) except -1
