/*
 * tsw_loadgen.h - the public API of the native HTTP/1.1 load generator behind
 * tsweep.ext.loadgen.HttpLoad: a config struct in, an error enum out.
 *
 * Linux only: epoll, eventfd, timerfd, non-blocking sockets with TCP_NODELAY, CLOCK_MONOTONIC.
 * No Python API is used anywhere, so every call may run without the GIL. How the load works
 * (loops, modes, accounting, timeouts) is described in tsw_loop.h and the units it lists.
 *
 * Closed loop (concurrency N): N connections, each writes its next request as soon as the
 * previous response is complete. Open loop (rate R): requests go out at intended times
 * (constant or Poisson spacing, or the gaps of a list of intervals), on at most max_connections connections. After stop() the last
 * window's in_flight counts the requests abandoned by the stop (open loop: responses that had
 * already arrived are read first, not abandoned).
 */
#ifndef TSW_LOADGEN_H
#define TSW_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

#include "tsw_window.h"

/* How a call failed. os_error, where an API call takes one, then holds the system's code. */
enum tsw_error {
    TSW_OK = 0,
    TSW_ERR_CONFIG,  /* the config is not a load: no requests, not exactly one of
                        concurrency > 0 and an open loop (rate > 0 or request intervals),
                        intervals that add up to no time, or sequences with fewer ids than
                        sequences in flight or marks outside their request */
    TSW_ERR_RESOLVE, /* the host did not resolve; os_error is the getaddrinfo() code */
    TSW_ERR_NOMEM,   /* out of memory */
    TSW_ERR_SYSTEM,  /* an epoll set or eventfd could not be made; os_error is errno */
    TSW_ERR_THREAD,  /* a loop thread could not be started; os_error is pthread_create's code */
    TSW_ERR_STATE    /* the call does not fit the load's state (started twice, taken before
                        start) */
};

typedef struct tsw_load_config {
    const char *host;        /* address or name, resolved once by tsw_load_new() */
    int port;
    const char *reqdata;     /* nreq complete HTTP/1.1 requests back to back (copied) */
    const size_t *req_lens;  /* their lengths */
    uint32_t nreq;
    int concurrency;         /* > 0: closed loop with that many connections */
    double rate;             /* > 0: open loop, intended sends per second */
    int poisson;             /* open loop: exponential gaps instead of constant spacing */
    uint64_t seed;           /* of the Poisson schedule */
    int max_connections;     /* open loop: most connections open at once (>= 1 is enforced) */
    double timeout_s;        /* per request and per connect; <= 0 means 30 s */
    double late_threshold_s; /* open loop: a send later than this counts in late_sends */
    int threads;             /* loop threads, clamped to [1, concurrency or max_connections] */
    double duration_s;       /* > 0: the load ends by itself that long after start */
    int64_t max_requests;    /* > 0: at most that many sends, then end once all are answered */
    const double *intervals_ns; /* open loop instead of rate: gaps between successive sends,
                                   cycled through (perf_analyzer's --request-intervals); copied */
    uint32_t nintervals;
    /* Sequences (stateful models), off when seq_length is 0. Every request carries, in its JSON
       header, a sequence id field of TSW_SEQ_ID_WIDTH bytes and start and end fields of
       TSW_SEQ_FLAG_WIDTH bytes (placeholders: digits and spaces, "true " or "false") at the
       offsets seq_marks[3i], [3i+1], [3i+2] of request i; each send fills them in. */
    int seq_length;          /* requests per sequence, before variation */
    double seq_variation;    /* percent: a sequence's length is uniform in length -+ this share */
    uint64_t seq_id_start;   /* ids are drawn from [seq_id_start, seq_id_end] (end 0: no end), */
    uint64_t seq_id_end;     /* one that is in use is never given out again until its end */
    int seq_slots;           /* open loop: sequences in flight at once (closed: one per connection) */
    int seq_serial;          /* open loop: a sequence's next request waits for its previous
                                answer (kept for the record: the open loop always does) */
    const uint32_t *seq_marks; /* 3 * nreq offsets (copied) */
    /* Streaming: each response is a stream of server-sent events (Triton's generate_stream),
       one event per token; the windows then also hold time to first token, the gaps between
       tokens and the token count (tsw_window.h). */
    int stream;
} tsw_load_config;

#define TSW_SEQ_ID_WIDTH 20   /* digits of the largest uint64, the id left-aligned, spaces after */
#define TSW_SEQ_FLAG_WIDTH 5  /* "true " or "false" */

typedef struct tsw_load tsw_load;

/* A static, human-readable description of err. */
const char *tsw_error_text(enum tsw_error err);

/* Resolve the host and build the load (no thread, no socket yet). On success *out is the load;
   otherwise *out is NULL and *os_error is set for the errors that carry one. */
enum tsw_error tsw_load_new(const tsw_load_config *cfg, tsw_load **out, int *os_error);

/* Start the loop threads (once). */
enum tsw_error tsw_load_start(tsw_load *D, int *os_error);

/* Wait until the current window (since the last take) holds at least n answered requests
   (completed + errors) or timeout_s passed; *reached says which. Loop i of K waits for its share
   (n / K rounded up). TSW_ERR_STATE if never started. The count windows of the measurement. */
enum tsw_error tsw_load_wait_answered(tsw_load *D, int64_t n, double timeout_s, int *reached);

/* The intended send time of send s (0, 1, ...) of the whole load, in ns after start, for the
   deterministic schedules (constant spacing, request intervals); -1 for Poisson or closed loop. */
double tsw_load_planned_offset_ns(const tsw_load *D, int64_t s);

/* Stop and join; idempotent. */
void tsw_load_stop(tsw_load *D);

/* Started, not stopped, and some loop has not ended by itself (duration_s / max_requests). */
int tsw_load_running(tsw_load *D);

/* Swap every loop's window and merge them into one, which *window points to until
   tsw_load_take_done() (call it exactly once after TSW_OK). TSW_ERR_STATE if never started. */
enum tsw_error tsw_load_take(tsw_load *D, const tsw_window **window);
void tsw_load_take_done(tsw_load *D);

/* After stop: the ids of the sequences cut off before their last request (up to max of them
   into ids); returns how many there are. 0 without sequences or while running. */
int tsw_load_open_sequences(tsw_load *D, uint64_t *ids, int max);

/* Stop, join and free everything; NULL is fine. */
void tsw_load_free(tsw_load *D);

#endif /* TSW_LOADGEN_H */
