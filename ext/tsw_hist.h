/*
 * tsw_hist.h - log-linear ("HDR-style") latency histogram of int64 nanosecond values.
 *
 * Header-only, no Python API, no locks and no allocation after tsw_hist_new(), so the load
 * generator can record from C or from Cython without the GIL. One histogram per thread, then
 * tsw_hist_merge(), is the intended way to use it from several threads. Needs GCC or Clang
 * (__builtin_clzll, unsigned __int128, __builtin_*_overflow).
 *
 * Layout (the HdrHistogram layout with 3 significant digits and a unit of 1 ns):
 *   bucket 0 holds 0..2047 ns in 2048 slots of width 1, i.e. exactly;
 *   bucket b >= 1 holds [1024 << b, 2048 << b) in 1024 slots of width 1 << b (the lower half
 *   of its 2048 sub-buckets would repeat bucket b-1, so it is not stored).
 * 32 buckets reach TSW_HIST_MAX_VALUE = 2^42 - 1 ns (about 73 min, so 1 h fits). A value v
 * maps to slot (b << 10) + (v >> b) with b = 53 - clz(v | 2047): one clz, one shift, one add.
 *
 * Rank: the sample at percentile p is the one of (1-based) rank max(1, ceil(p / 100 * count))
 * in sorted order: the smallest recorded x with at least p% of the samples <= x, the "inverted
 * CDF" definition (numpy's method="inverted_cdf"). Never an interpolation between samples.
 *
 * Reported value: the midpoint of the slot holding the sample x of that rank, clamped to
 * [min, max] (and exactly min or max for the first and last rank). x lies in a slot of width
 * w = 1 << b whose lowest value is >= 1024 * w, and the midpoint is within w / 2 of x, so
 *     |reported - x| <= x / 2048   (relative error <= 1/2048, about 0.05%),
 * and values below 2048 ns are exact. min and max are exact. Values above TSW_HIST_MAX_VALUE
 * are recorded as TSW_HIST_MAX_VALUE (everywhere: slots, max, sum) and counted in `overflow`;
 * negative values are recorded as 0.
 */
#ifndef TSW_HIST_H
#define TSW_HIST_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TSW_HIST_SUB_BITS 11                         /* 2048 sub-buckets: 3 decimal digits */
#define TSW_HIST_HALF (1 << (TSW_HIST_SUB_BITS - 1)) /* 1024 slots stored per bucket >= 1 */
#define TSW_HIST_BUCKETS 32
#define TSW_HIST_MAX_VALUE ((INT64_C(1) << (TSW_HIST_SUB_BITS + TSW_HIST_BUCKETS - 1)) - 1)
#define TSW_HIST_SLOTS ((TSW_HIST_BUCKETS + 1) * TSW_HIST_HALF) /* 33792 slots, 264 KiB */

/*
 * sum and sum of squares are exact 128-bit integers rather than doubles: merging then is plain
 * addition, so merge(a, b) equals recording the union bit for bit whatever the order, an
 * encode/decode round trip keeps mean and stddev exactly, and the variance is computed without
 * the catastrophic cancellation of sumsq/n - mean^2 in floating point (1 s latencies with 1 us
 * of jitter would lose every digit in a double). Each square is < 2^84, so sumsq cannot
 * overflow before 2^44 samples at the very top of the range, or 2^68 samples of 1 s.
 */
__extension__ typedef unsigned __int128 tsw_u128;

typedef struct tsw_hist {
    int64_t count;    /* samples recorded */
    int64_t overflow; /* of which were above TSW_HIST_MAX_VALUE and clamped */
    int64_t min;      /* INT64_MAX while empty */
    int64_t max;      /* 0 while empty */
    tsw_u128 sum;
    tsw_u128 sumsq;
    int64_t counts[TSW_HIST_SLOTS];
} tsw_hist;

/* ---------------------------------------------------------------- slot arithmetic */

static inline int tsw_hist__slot(int64_t v) /* v in [0, TSW_HIST_MAX_VALUE] */
{
    int b = (64 - TSW_HIST_SUB_BITS) - __builtin_clzll((uint64_t)v | ((1u << TSW_HIST_SUB_BITS) - 1));
    return (b << (TSW_HIST_SUB_BITS - 1)) + (int)(v >> b);
}

/* Midpoint of a slot: the value a percentile query reports (see the bound at the top). */
static inline int64_t tsw_hist__slot_mid(int slot)
{
    int b = slot < 2 * TSW_HIST_HALF ? 0 : (slot >> (TSW_HIST_SUB_BITS - 1)) - 1;
    int64_t lowest = (int64_t)(slot - (b << (TSW_HIST_SUB_BITS - 1))) << b;
    return lowest + ((INT64_C(1) << b) >> 1);
}

/* ---------------------------------------------------------------- lifecycle */

static inline void tsw_hist_reset(tsw_hist *h)
{
    /* Only slots between min and max can be non-zero, so clearing a typical (narrow)
       latency histogram touches a few KiB instead of all 264 KiB. */
    if (h->count > 0) {
        int lo = tsw_hist__slot(h->min), hi = tsw_hist__slot(h->max);
        memset(&h->counts[lo], 0, (size_t)(hi - lo + 1) * sizeof h->counts[0]);
    }
    h->count = h->overflow = h->max = 0;
    h->min = INT64_MAX;
    h->sum = h->sumsq = 0;
}

/* NULL on allocation failure. The only allocation the histogram ever makes. */
static inline tsw_hist *tsw_hist_new(void)
{
    tsw_hist *h = (tsw_hist *)calloc(1, sizeof *h);
    if (h)
        h->min = INT64_MAX;
    return h;
}

static inline void tsw_hist_free(tsw_hist *h) { free(h); }

/* ---------------------------------------------------------------- recording */

/* Record value_ns n times (n <= 0 records nothing). O(1): clamp, clz, shift, increment. */
static inline void tsw_hist_record_n(tsw_hist *h, int64_t value_ns, int64_t n)
{
    if (n <= 0)
        return;
    if (value_ns < 0) {
        value_ns = 0;
    } else if (value_ns > TSW_HIST_MAX_VALUE) {
        value_ns = TSW_HIST_MAX_VALUE;
        h->overflow += n;
    }
    h->counts[tsw_hist__slot(value_ns)] += n;
    h->count += n;
    if (value_ns < h->min)
        h->min = value_ns;
    if (value_ns > h->max)
        h->max = value_ns;
    h->sum += (tsw_u128)(uint64_t)value_ns * (uint64_t)n;
    h->sumsq += (tsw_u128)(uint64_t)value_ns * (uint64_t)value_ns * (uint64_t)n;
}

static inline void tsw_hist_record(tsw_hist *h, int64_t value_ns) { tsw_hist_record_n(h, value_ns, 1); }

static inline void tsw_hist_merge(tsw_hist *dst, const tsw_hist *src)
{
    if (src->count == 0)
        return;
    for (int i = tsw_hist__slot(src->min), hi = tsw_hist__slot(src->max); i <= hi; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->overflow += src->overflow;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->sum += src->sum;
    dst->sumsq += src->sumsq;
}

/* ---------------------------------------------------------------- queries */

static inline int64_t tsw_hist_count(const tsw_hist *h) { return h->count; }
static inline int64_t tsw_hist_overflow(const tsw_hist *h) { return h->overflow; }
static inline int64_t tsw_hist_min(const tsw_hist *h) { return h->count ? h->min : 0; } /* 0 if empty */
static inline int64_t tsw_hist_max(const tsw_hist *h) { return h->max; }                /* 0 if empty */

/* Exact mean (up to the final rounding to double); 0.0 if empty. */
static inline double tsw_hist_mean(const tsw_hist *h)
{
    return h->count ? (double)((long double)h->sum / (long double)h->count) : 0.0;
}

/*
 * count * variance = sumsq - sum^2 / count. With sum = q * count + r (0 <= r < count),
 * sum^2 / count = q^2 * count + 2 q r + r^2 / count, so all but r^2 / count (< count) is exact
 * integer arithmetic. Returns 0 if sumsq cannot belong to this sum and count, which only a
 * forged encoding can produce (tsw_hist_decode uses this to reject it).
 */
static inline int tsw_hist__count_var(const tsw_hist *h, long double *out)
{
    tsw_u128 n = (tsw_u128)h->count, q = h->sum / n, r = h->sum % n, t;
    if (q > (tsw_u128)TSW_HIST_MAX_VALUE || __builtin_mul_overflow(q * q, n, &t) ||
        __builtin_add_overflow(t, 2 * q * r, &t) || t > h->sumsq)
        return 0;
    *out = (long double)(h->sumsq - t) - (long double)r * (long double)r / (long double)n;
    return *out >= 0;
}

/* Population standard deviation (divides by count, as numpy.std does); 0.0 if empty. */
static inline double tsw_hist_stddev(const tsw_hist *h)
{
    long double cv;
    if (h->count == 0 || !tsw_hist__count_var(h, &cv))
        return 0.0;
    return sqrt((double)(cv / (long double)h->count));
}

/* Value at percentile pct in [0, 100] (clamped; NaN counts as 0), 0 if empty. Rank and error
   bound: see the top of this file. Scans only the slots between min and max. */
static inline int64_t tsw_hist_value_at_percentile(const tsw_hist *h, double pct)
{
    if (h->count == 0)
        return 0;
    if (!(pct > 0.0))
        pct = 0.0;
    else if (pct > 100.0)
        pct = 100.0;
    /* pct / 100 * count, in this order, is what numpy computes for quantile pct / 100. */
    double want = ceil(pct / 100.0 * (double)h->count);
    int64_t rank = want < 1.0 ? 1 : want >= (double)h->count ? h->count : (int64_t)want;
    if (rank == 1) /* the extreme ranks are min and max, which are known exactly */
        return h->min;
    if (rank == h->count)
        return h->max;
    /* Walk from whichever end is nearer the rank: tail percentiles, the ones latency reports
       ask for most, then touch only the few slots near max. */
    int slot;
    int64_t seen = 0;
    if (rank <= h->count / 2) {
        slot = tsw_hist__slot(h->min);
        while ((seen += h->counts[slot]) < rank) /* samples of rank <= the wanted one */
            slot++;
    } else {
        slot = tsw_hist__slot(h->max);
        while ((seen += h->counts[slot]) < h->count - rank + 1) /* of rank >= the wanted one */
            slot--;
    }
    int64_t v = tsw_hist__slot_mid(slot);
    return v < h->min ? h->min : v > h->max ? h->max : v;
}

/* ---------------------------------------------------------------- serialization
 *
 * Format, version 1 (all integers unsigned LEB128 varints, little-endian groups of 7 bits):
 *   "TSWH" 0x01 count overflow min max sum sumsq      (min = max = 0 when empty)
 *   then, for every non-empty slot in increasing order: gap count
 *   where gap is the number of empty slots skipped since the previous non-empty one (since
 *   slot -1 for the first). The slot layout is implied by the version. The encoding is
 *   canonical: equal histograms encode to equal bytes.
 */

#define TSW_HIST__MAGIC "TSWH"
#define TSW_HIST__VERSION 1
#define TSW_HIST__MAX_HEADER (4 + 1 + 4 * 10 + 2 * 19) /* 64-bit varint <= 10, 128-bit <= 19 */
#define TSW_HIST__MAX_ENTRY (3 + 9) /* gap < 2^21, count < 2^63 */

static inline uint8_t *tsw_hist__put(uint8_t *p, tsw_u128 v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Reads one varint at *pos, advancing it. 0 if truncated, wider than 128 bits, or padded with
   a zero last group (which keeps the encoding canonical both ways). */
static inline int tsw_hist__get(const uint8_t *buf, size_t len, size_t *pos, tsw_u128 *out)
{
    tsw_u128 v = 0;
    for (int shift = 0; *pos < len; shift += 7) {
        uint8_t byte = buf[(*pos)++];
        if (shift == 126 && byte > 3)
            return 0;
        v |= (tsw_u128)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = v;
            return byte != 0 || shift == 0;
        }
    }
    return 0;
}

static inline int tsw_hist__get_i64(const uint8_t *buf, size_t len, size_t *pos, int64_t *out)
{
    tsw_u128 v;
    if (!tsw_hist__get(buf, len, pos, &v) || v > (tsw_u128)INT64_MAX)
        return 0;
    *out = (int64_t)v;
    return 1;
}

/* An upper bound on tsw_hist_encode's output; one pass over the occupied slots. */
static inline size_t tsw_hist_encoded_max_size(const tsw_hist *h)
{
    size_t used = 0;
    if (h->count > 0)
        for (int i = tsw_hist__slot(h->min), hi = tsw_hist__slot(h->max); i <= hi; i++)
            used += h->counts[i] != 0;
    return TSW_HIST__MAX_HEADER + used * TSW_HIST__MAX_ENTRY;
}

/* Writes at most tsw_hist_encoded_max_size(h) bytes to out; returns the number written. */
static inline size_t tsw_hist_encode(const tsw_hist *h, uint8_t *out)
{
    uint8_t *p = out;
    memcpy(p, TSW_HIST__MAGIC, 4);
    p += 4;
    *p++ = TSW_HIST__VERSION;
    p = tsw_hist__put(p, (tsw_u128)h->count);
    p = tsw_hist__put(p, (tsw_u128)h->overflow);
    p = tsw_hist__put(p, (tsw_u128)tsw_hist_min(h));
    p = tsw_hist__put(p, (tsw_u128)tsw_hist_max(h));
    p = tsw_hist__put(p, h->sum);
    p = tsw_hist__put(p, h->sumsq);
    if (h->count > 0) {
        int prev = -1;
        for (int i = tsw_hist__slot(h->min), hi = tsw_hist__slot(h->max); i <= hi; i++) {
            if (h->counts[i] == 0)
                continue;
            p = tsw_hist__put(p, (tsw_u128)(i - prev - 1));
            p = tsw_hist__put(p, (tsw_u128)h->counts[i]);
            prev = i;
        }
    }
    return (size_t)(p - out);
}

/* Fills a freshly reset h from buf. NULL on success, else why buf is not a valid encoding. */
static inline const char *tsw_hist__decode_into(tsw_hist *h, const uint8_t *buf, size_t len)
{
    size_t pos = 5;
    int64_t count, overflow, min, max;
    if (len < 5 || memcmp(buf, TSW_HIST__MAGIC, 4) != 0)
        return "not a tsweep histogram (bad magic)";
    if (buf[4] != TSW_HIST__VERSION)
        return "unsupported histogram encoding version";
    if (!tsw_hist__get_i64(buf, len, &pos, &count) || !tsw_hist__get_i64(buf, len, &pos, &overflow) ||
        !tsw_hist__get_i64(buf, len, &pos, &min) || !tsw_hist__get_i64(buf, len, &pos, &max) ||
        !tsw_hist__get(buf, len, &pos, &h->sum) || !tsw_hist__get(buf, len, &pos, &h->sumsq))
        return "truncated or invalid header";

    int64_t total = 0;
    int slot = -1, first = -1;
    while (pos < len) {
        tsw_u128 gap;
        int64_t n;
        if (!tsw_hist__get(buf, len, &pos, &gap) || !tsw_hist__get_i64(buf, len, &pos, &n))
            return "truncated bucket data";
        if (gap >= (tsw_u128)(TSW_HIST_SLOTS - 1 - slot))
            return "bucket index out of range";
        if (n == 0 || n > count - total)
            return "bucket counts do not add up to the total count";
        slot += (int)gap + 1;
        if (first < 0)
            first = slot;
        h->counts[slot] = n;
        total += n;
    }
    if (total != count)
        return "bucket counts do not add up to the total count";

    if (count == 0) {
        if (min || max || overflow || h->sum || h->sumsq)
            return "empty histogram with non-zero statistics";
        return NULL;
    }
    if (min > max || max > TSW_HIST_MAX_VALUE || tsw_hist__slot(min) != first || tsw_hist__slot(max) != slot)
        return "min/max do not match the buckets";
    if (overflow > h->counts[TSW_HIST_SLOTS - 1] || (overflow > 0 && max != TSW_HIST_MAX_VALUE))
        return "overflow count does not match the top bucket";
    h->count = count;
    h->overflow = overflow;
    h->min = min;
    h->max = max;
    long double cv;
    if (h->sum < (tsw_u128)min * (uint64_t)count || h->sum > (tsw_u128)max * (uint64_t)count ||
        !tsw_hist__count_var(h, &cv))
        return "sum or sum of squares inconsistent with the samples";
    return NULL;
}

/* Like tsw_hist_decode; on malformed input also sets *why (if why is not NULL) to a static
   message. Returns NULL with *why untouched on allocation failure. */
static inline tsw_hist *tsw_hist_decode_why(const uint8_t *buf, size_t len, const char **why)
{
    tsw_hist *h = tsw_hist_new();
    if (!h)
        return NULL;
    const char *err = tsw_hist__decode_into(h, buf, len);
    if (err) {
        tsw_hist_free(h);
        if (why)
            *why = err;
        return NULL;
    }
    return h;
}

/* A new histogram equal to the encoded one; NULL if buf is malformed or truncated (or on
   allocation failure). */
static inline tsw_hist *tsw_hist_decode(const uint8_t *buf, size_t len)
{
    return tsw_hist_decode_why(buf, len, NULL);
}

#endif /* TSW_HIST_H */
