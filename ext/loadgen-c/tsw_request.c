/*
 * tsw_request.c - one request's life on a connection: write it, feed the response to the
 * parser, and count how it ended (completed, HTTP error, transport error, timeout).
 *
 * What happens to the connection afterwards depends on the mode: the closed loop writes the
 * next request at once (tsw_closed_loop.c), the open loop parks the connection or gives it the
 * send that is due (tsw_open_loop.c).
 *
 * Latency: closed loop, first byte written -> last response byte read; open loop, intended
 * send time -> the last response byte's kernel arrival time (coordinated-omission correction).
 * Bytes that arrive after a complete response (the server answered something we did not ask)
 * make the connection be closed and reopened; they are not counted. The first bytes of a
 * non-200 body become its error sample.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "tsw_conn.h"

/* A request on c failed (status -1 with msg, or a connect failure). Counts it and recycles c. */
void tsw_fail(tsw_loop *L, tsw_conn *c, int64_t now, const char *msg, int err, int is_timeout)
{
    tsw_window *w = tsw_cw(L);
    int was_connecting = c->state == TSW_C_CONNECTING;
    int counted = 0;
    if (c->has_req)
        tsw_seq_answered(L, c);
    if (c->has_req && !was_connecting) {
        /* a sent request */
        L->in_flight--;
        counted = 1;
    } else if (was_connecting) {
        w->connect_errors++;
        counted = 1;
    }
    if (counted) {
        w->errors++;
        if (is_timeout)
            w->timeouts++;
        if (err)
            tsw_window_add_sample_errno(w, msg, err);
        else
            tsw_window_add_sample(w, -1, msg, strlen(msg));
    }
    c->has_req = 0;
    if (tsw_is_closed_loop(L))
        tsw_closed_reopen(L, c, now, was_connecting);
    else
        tsw_conn_close(L, c);
}

void tsw_continue_write(tsw_loop *L, tsw_conn *c)
{
    tsw_load *D = L->load;
    size_t len = D->req_len[c->req];
    const char *p = c->wbuf ? c->wbuf : D->reqdata + D->req_off[c->req];
    while (c->wpos < len) {
        ssize_t n = send(c->fd, p + c->wpos, len - c->wpos, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->wpos += (size_t)n;
            tsw_cw(L)->bytes_sent += n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->state = TSW_C_WRITING;
            tsw_set_out(L, c, 1);
            return;
        }
        tsw_fail(L, c, tsw_now_ns(), "send", n < 0 ? errno : EPIPE, 0);
        return;
    }
    tsw_cw(L)->send_ns += tsw_now_ns() - c->t_write0;
    if (c->state == TSW_C_WRITING || c->state == TSW_C_IDLE || c->state == TSW_C_CONNECTING)
        c->state = TSW_C_READING;
    tsw_set_out(L, c, 0);
}

/* Write the assigned request (open loop) or the next one (closed loop) on a connected c. */
void tsw_start_write(tsw_loop *L, tsw_conn *c, int64_t now)
{
    tsw_load *D = L->load;
    tsw_window *w = tsw_cw(L);
    if (tsw_is_closed_loop(L)) {
        if (!tsw_closed_assign(L, c, now))
            return; /* max_requests reached: the connection stays quiet */
    } else {
        tsw_open_note_lateness(L, c, now);
    }
    c->has_req = 1;
    c->t_write0 = now;
    c->wpos = 0;
    c->deadline = now + D->timeout_ns;
    c->rbytes = 0;
    tsw_http_parser_reset(&c->parser, D->req_head[c->req]);
    c->parser.sse = D->stream;
    c->tokens = 0;
    c->state = TSW_C_WRITING;
    w->sent++;
    L->in_flight++;
    tsw_continue_write(L, c);
}

/* The response on c was complete at t_done (its last byte read or, with pfd, arrived); now is
   the current time, used for what follows (the next send). */
static void tsw_complete(tsw_loop *L, tsw_conn *c, int64_t t_done, int64_t now, int reusable)
{
    tsw_load *D = L->load;
    tsw_window *w = tsw_cw(L);
    int64_t t1 = now;
    L->in_flight--;
    c->has_req = 0;
    tsw_seq_answered(L, c);
    w->recv_ns += t_done - c->t_first;
    if (c->parser.status == 200 && !c->parser.sse_error) {
        w->completed++;
        tsw_hist_record(w->hist, t_done - c->t_origin);
        w->tokens += c->tokens;
    } else {
        w->errors++;
        if (w->nsamples < TSW_MAX_SAMPLES) {
            const tsw_http_parser *hp = &c->parser;
            if (hp->snip_len > 0) {
                tsw_window_add_sample(w, hp->status, hp->snip, (size_t)hp->snip_len);
            } else {
                char b[32];
                int k = snprintf(b, sizeof b, "HTTP %d", hp->status);
                tsw_window_add_sample(w, hp->status, b, (size_t)k);
            }
        }
    }
    c->backoff_ns = 0;
    if (!reusable || !c->parser.keepalive || c->wpos < D->req_len[c->req]) {
        if (tsw_is_closed_loop(L)) {
            tsw_closed_reopen(L, c, t1, 0);
        } else {
            tsw_conn_close(L, c);
        }
        return;
    }
    if (tsw_is_closed_loop(L)) {
        tsw_start_write(L, c, t1);
    } else {
        c->state = TSW_C_IDLE;
        if ((int64_t)L->next_intended <= t1 && L->budget != 0 && tsw_seq_ready(L) &&
            !atomic_load_explicit(&D->stop, memory_order_relaxed))
            tsw_open_dispatch_one(L, c, t1);
        else
            tsw_idle_push(L, c);
    }
}

/* Streaming: the events the parser found since the last read arrived at t. The first is the
   request's first token (time from the latency origin), each later one a gap after the one
   before (several in one read: the first gap is from the previous read, the others are 0). */
static inline void tsw_stream_tokens(tsw_loop *L, tsw_conn *c, int64_t t)
{
    int64_t fresh = c->parser.events - c->tokens;
    if (fresh <= 0)
        return;
    tsw_window *w = tsw_cw(L);
    if (c->tokens == 0)
        tsw_hist_record(w->ttft, t - c->t_origin);
    else
        tsw_hist_record(w->itl, t - c->t_token);
    tsw_hist_record_n(w->itl, 0, fresh - 1);
    c->tokens = c->parser.events;
    c->t_token = t;
}

/* Response bytes, EOF or an error on c. */
static void tsw_on_readable(tsw_loop *L, tsw_conn *c)
{
    int64_t now = tsw_now_ns();
    int64_t t0 = now;
    ssize_t n = tsw_conn_recv(L, c, &t0);
    if (n > 0) {
        tsw_cw(L)->bytes_received += n;
        if (!c->has_req || c->state == TSW_C_CONNECTING) {
            /* data nobody asked for: drop the connection */
            if (tsw_is_closed_loop(L))
                tsw_closed_reopen(L, c, now, 0);
            else
                tsw_conn_close(L, c);
            return;
        }
        if (c->rbytes == 0)
            c->t_first = t0;
        c->rbytes += n;
        size_t used = 0;
        const char *why = NULL;
        int r = tsw_http_feed(&c->parser, L->rbuf, (size_t)n, &used, &why);
        if (r < 0) {
            tsw_fail(L, c, tsw_now_ns(), why, 0, 0);
            return;
        }
        if (L->load->stream)
            tsw_stream_tokens(L, c, t0);
        if (r == 1) {
            int64_t t1 = tsw_now_ns();
            tsw_complete(L, c, L->pfd >= 0 ? t0 : t1, t1, used == (size_t)n);
        } else {
            c->t_last = L->pfd >= 0 ? t0 : tsw_now_ns();
        }
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    /* EOF or error */
    int err = n < 0 ? errno : 0;
    if (c->has_req && c->state != TSW_C_CONNECTING) {
        if (n == 0 && tsw_http_until_close(&c->parser)) {
            /* a close-delimited body ended with its last data read */
            int64_t t1 = tsw_now_ns();
            tsw_complete(L, c, c->rbytes > 0 ? c->t_last : t1, t1, 0);
            return;
        }
        if (err)
            tsw_fail(L, c, tsw_now_ns(), "recv", err, 0);
        else
            tsw_fail(L, c, tsw_now_ns(), "connection closed by server", 0, 0);
        return;
    }
    /* idle keep-alive connection closed by the server: not an error */
    if (tsw_is_closed_loop(L))
        tsw_closed_reopen(L, c, now, 0);
    else
        tsw_conn_close(L, c);
}

/* A connect finished (or failed). */
static void tsw_on_connected(tsw_loop *L, tsw_conn *c, int64_t now)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err) {
        tsw_fail(L, c, now, "connect", err, 0);
        return;
    }
    c->backoff_ns = 0;
    c->state = TSW_C_IDLE;
    if (tsw_is_closed_loop(L) || c->has_req) {
        tsw_start_write(L, c, now); /* clears EPOLLOUT once written */
    } else {
        tsw_set_out(L, c, 0);
        if ((int64_t)L->next_intended <= now && L->budget != 0 && tsw_seq_ready(L))
            tsw_open_dispatch_one(L, c, now);
        else
            tsw_idle_push(L, c);
    }
}

/* epoll reported events e on c: advance whatever c is doing. */
void tsw_conn_event(tsw_loop *L, tsw_conn *c, uint32_t e)
{
    switch (c->state) {
    case TSW_C_CONNECTING:
        tsw_on_connected(L, c, tsw_now_ns());
        break;
    case TSW_C_WRITING:
        if (e & EPOLLOUT)
            tsw_continue_write(L, c);
        if ((e & (EPOLLIN | EPOLLERR | EPOLLHUP)) &&
            (c->state == TSW_C_WRITING || c->state == TSW_C_READING))
            tsw_on_readable(L, c);
        break;
    case TSW_C_READING:
    case TSW_C_IDLE:
        tsw_on_readable(L, c);
        break;
    default:
        break;
    }
}
