/*
 * tsw_window.c - a window's bookkeeping: clearing it, keeping error samples, merging the loops'
 * windows into the one the API hands out. Nothing here runs per successful request.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* the GNU strerror_r, which returns the message */
#endif

#include <stdio.h>
#include <string.h>

#include "tsw_window.h"

void tsw_window_clear(tsw_window *w, int64_t start_ns)
{
    tsw_hist *h = w->hist, *ttft = w->ttft, *itl = w->itl;
    memset(w, 0, sizeof *w);
    w->hist = h;
    w->ttft = ttft;
    w->itl = itl;
    if (h)
        tsw_hist_reset(h);
    if (ttft)
        tsw_hist_reset(ttft);
    if (itl)
        tsw_hist_reset(itl);
    w->start_ns = w->end_ns = start_ns;
}

void tsw_window_add_sample(tsw_window *w, int status, const char *msg, size_t len)
{
    if (w->nsamples >= TSW_MAX_SAMPLES)
        return;
    char buf[TSW_SAMPLE_LEN];
    if (len >= TSW_SAMPLE_LEN)
        len = TSW_SAMPLE_LEN - 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)msg[i];
        buf[i] = (ch >= 32 && ch < 127) ? (char)ch : (ch == '\n' || ch == '\r' || ch == '\t') ? ' ' : '?';
    }
    buf[len] = 0;
    for (int i = 0; i < w->nsamples; i++)
        if (w->samples[i].status == status && strcmp(w->samples[i].msg, buf) == 0)
            return;
    w->samples[w->nsamples].status = status;
    memcpy(w->samples[w->nsamples].msg, buf, len + 1);
    w->nsamples++;
}

void tsw_window_add_sample_errno(tsw_window *w, const char *what, int err)
{
    char buf[TSW_SAMPLE_LEN];
    char ebuf[96];
    const char *es = strerror_r(err, ebuf, sizeof ebuf); /* GNU variant */
    int n = snprintf(buf, sizeof buf, "%s: %s", what, es);
    if (n < 0)
        n = 0;
    tsw_window_add_sample(w, -1, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

void tsw_window_add(tsw_window *a, const tsw_window *w, int first)
{
    if (first || w->start_ns < a->start_ns)
        a->start_ns = w->start_ns;
    if (first || w->end_ns > a->end_ns)
        a->end_ns = w->end_ns;
    a->completed += w->completed;
    a->errors += w->errors;
    a->timeouts += w->timeouts;
    a->connect_errors += w->connect_errors;
    a->sent += w->sent;
    a->bytes_sent += w->bytes_sent;
    a->bytes_received += w->bytes_received;
    a->send_ns += w->send_ns;
    a->recv_ns += w->recv_ns;
    a->late_sends += w->late_sends;
    if (w->max_lateness_ns > a->max_lateness_ns)
        a->max_lateness_ns = w->max_lateness_ns;
    a->in_flight += w->in_flight;
    a->connections += w->connections;
    if (w->schedule_lag_ns > a->schedule_lag_ns)
        a->schedule_lag_ns = w->schedule_lag_ns;
    for (int j = 0; j < w->nsamples; j++)
        tsw_window_add_sample(a, w->samples[j].status, w->samples[j].msg, strlen(w->samples[j].msg));
    tsw_hist_merge(a->hist, w->hist);
    a->tokens += w->tokens;
    if (a->ttft && w->ttft)
        tsw_hist_merge(a->ttft, w->ttft);
    if (a->itl && w->itl)
        tsw_hist_merge(a->itl, w->itl);
}
