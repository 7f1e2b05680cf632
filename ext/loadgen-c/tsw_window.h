/*
 * tsw_window.h - what a load did during one window: counters, error samples, latency histogram.
 *
 * Each loop thread fills one window at a time (see tsw_loop.h for the double buffering); the
 * public API merges the loops' windows into one, which loadgen.pyx reads field by field.
 *
 * Accounting: sent counts requests whose first byte was written. Every sent request ends as
 * completed (HTTP 200), error (other status, connection closed/reset, timeout) or stays in
 * flight. Connect failures are errors too (connect_errors) but are not sent requests, so for
 * any sequence of windows:
 *     sum(sent) == sum(completed) + sum(errors - connect_errors) + in_flight(last window)
 */
#ifndef TSW_WINDOW_H
#define TSW_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "tsw_hist.h"

#define TSW_MAX_SAMPLES 5
#define TSW_SAMPLE_LEN 160 /* bytes kept of an error message / body, with the NUL */

typedef struct {
    int status; /* HTTP status, or -1 for a transport error / timeout */
    char msg[TSW_SAMPLE_LEN];
} tsw_sample;

typedef struct tsw_window {
    int64_t start_ns, end_ns; /* CLOCK_MONOTONIC at the swaps that opened / closed the window */
    int64_t completed, errors, timeouts, connect_errors;
    int64_t sent, bytes_sent, bytes_received, send_ns, recv_ns;
    int64_t late_sends, max_lateness_ns;
    /* snapshots taken at the closing swap */
    int64_t in_flight, connections, schedule_lag_ns;
    int nsamples;
    tsw_sample samples[TSW_MAX_SAMPLES];
    tsw_hist *hist; /* latencies of the completed requests; owned by whoever made the window */
    /* Streaming loads only (else NULL / 0): time to the first token of each request, each gap
       between tokens (tokens that arrived in one read have gaps of 0), and the tokens (events)
       of the completed requests. */
    tsw_hist *ttft, *itl;
    int64_t tokens;
} tsw_window;

/* Zero every counter and the histogram (keeping its memory); the window starts at start_ns. */
void tsw_window_clear(tsw_window *w, int64_t start_ns);

/* Keep (status, msg[:len]) unless TSW_MAX_SAMPLES distinct pairs are kept already. Bytes that
   are not printable ASCII are replaced so the message is safe to show. */
void tsw_window_add_sample(tsw_window *w, int status, const char *msg, size_t len);

/* A transport error sample: "what: strerror(err)", with status -1. */
void tsw_window_add_sample_errno(tsw_window *w, const char *what, int err);

/* Add window w (one loop's) into the aggregate a: sums, extremes, samples and histogram. The
   aggregate spans from the earliest start to the latest end. */
void tsw_window_add(tsw_window *a, const tsw_window *w, int first);

#endif /* TSW_WINDOW_H */
