# Cython declarations of the C API in tsw_hist.h (layout, rank definition and error bound are
# documented there).
#
# histogram.pyx pulls this file in with `include` rather than relying on Cython's automatic
# loading of a same-named .pxd: the package maps tsweep.ext to the folder ext/, so when
# setup.py compiles the module as tsweep.ext.histogram Cython looks for
# tsweep/ext/histogram.pxd, which does not exist, and would never see this file.
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

