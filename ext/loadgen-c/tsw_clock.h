/*
 * tsw_clock.h - the two clocks of the load generator, as int64 nanoseconds.
 *
 * CLOCK_MONOTONIC times every request and window (and is what loadgen.monotonic_ns returns);
 * CLOCK_REALTIME only converts the kernel's receive timestamps, which come in that clock.
 * Both are vDSO reads, inlined because the hot path reads the clock a few times per request.
 */
#ifndef TSW_CLOCK_H
#define TSW_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t tsw_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int64_t tsw_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#endif /* TSW_CLOCK_H */
