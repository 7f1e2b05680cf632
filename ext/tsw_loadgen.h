/*
 * tsw_loadgen.h - the native HTTP/1.1 load generator behind tsweep.ext.loadgen.HttpLoad.
 *
 * Header-only (all functions static), Linux only: epoll, eventfd, timerfd, non-blocking sockets
 * with TCP_NODELAY, CLOCK_MONOTONIC. No Python API is used anywhere in this file, so everything
 * here runs without the GIL. Latencies go into tsw_hist.h histograms (one per loop thread and
 * window, merged when a window is taken).
 *
 * Model
 * -----
 * A tsw_load owns K loops (K = `threads`, 1 by default); each loop is one pthread with its own
 * epoll set, connections, counters and histograms, and gets 1/K of the concurrency (closed loop)
 * or of the rate and max_connections (open loop). On a small host shared with the server one
 * loop is best: the work per request is a few syscalls and a thread gains nothing but wake-ups.
 * Requests are pre-encoded HTTP/1.1 byte strings stored once in one buffer and sent round-robin
 * (loop i of K sends requests i, i+K, ...). One request is outstanding per connection (no
 * pipelining) and connections are kept alive. The hot path allocates nothing; per request it is
 * one send(), normally one recv() and a share of one epoll_wait(), plus a few vDSO clock reads.
 *
 * Closed loop (concurrency N): N connections, each writes its next request as soon as the
 * previous response is complete. Latency = first byte written -> last response byte read.
 * A periodic timerfd drives the timeout scan, so epoll waits without a timeout and no timer is
 * armed and cancelled around each wait (in a VM that can cost timer-register exits).
 *
 * Open loop (rate R): intended send times t0 + k/R ("constant") or with exponential gaps of mean
 * 1/R from a seeded splitmix64 stream ("poisson"). At an intended time the request goes to an
 * idle keep-alive connection; if there is none, a new connection is opened while fewer than
 * max_connections are open; otherwise the send waits for the next connection that frees up and
 * goes out late. Latency is measured from the *intended* send time (coordinated-omission
 * correction, as wrk2 does). A send is "late" when it starts more than late_threshold_ns
 * (default 1 ms) after its intended time; max_lateness_ns is the largest delay of any send.
 * The loop sleeps until the next send on a one-shot absolute timerfd (edge-triggered, re-armed
 * about once per send). Responses do not wake it: the connections sit in an inner epoll set
 * that is polled (without blocking) at every wake-up, and a response's arrival time is the
 * kernel's receive timestamp (SO_TIMESTAMPNS, CLOCK_REALTIME, converted to CLOCK_MONOTONIC with
 * an offset read at each wake-up). That halves the sleeps/wake-ups per request. I/O wakes the
 * loop only while it must: a connect or a partial write is pending, every allowed connection is
 * busy (a due send waits for one), or the kernel gave no timestamp (then from then on).
 *
 * Accounting (per window): sent counts requests whose first byte was written. Every sent
 * request ends as completed (HTTP 200), error (other status, connection closed/reset, timeout)
 * or stays in flight. Connect failures are errors too (connect_errors) but are not sent
 * requests, so for any sequence of windows:
 *     sum(sent) == sum(completed) + sum(errors - connect_errors) + in_flight(last window)
 * and after stop() the last window's in_flight is the number of requests abandoned by stop
 * (open loop: responses that had already arrived are read first, not abandoned).
 *
 * Timeouts: a request whose response is not complete timeout_ns after its first byte was
 * written is an error ("timeout"); its connection is closed and (closed loop) reopened. Connects
 * get the same limit. Deadlines are checked by a periodic scan every clamp(timeout/10, 1 ms,
 * 50 ms), so a timeout fires up to one scan period late. A failed connect puts a closed-loop
 * connection into back-off (one scan period, doubling up to 1 s) so an unreachable server costs
 * little CPU; in open loop every due send that finds no connection tries one connect.
 *
 * Responses: status line, Content-Length, Transfer-Encoding: chunked (decoded: chunk sizes,
 * extensions and trailers are parsed and skipped), Connection: close/keep-alive, HTTP/1.0, 1xx
 * interim responses (skipped), 204/304 and responses to HEAD (no body), and bodies delimited by
 * connection close. Bytes that arrive after a complete response (the server answered something
 * we did not ask) make the connection be closed and reopened; they are not counted. The first
 * TSW_SAMPLE_LEN-1 bytes of a non-200 body become its error sample.
 *
 * Windows: each loop accumulates into one of two tsw_window buffers. tsw_load_take() sets a
 * per-loop flag and pokes the loop's eventfd; the loop swaps buffers at the top of its next
 * iteration and signals a condition variable, so the load never pauses and no counter is read
 * while it is being written.
 */
#ifndef TSW_LOADGEN_H
#define TSW_LOADGEN_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "tsw_hist.h"

#define TSW_MAX_SAMPLES 5
#define TSW_SAMPLE_LEN 160     /* bytes kept of an error message / body, with the NUL */
#define TSW_HDR_MAX 16384      /* largest response header block accepted */
#define TSW_RBUF_SIZE 262144   /* per-loop receive buffer */
#define TSW_MAX_EVENTS 256
#define TSW_MAX_BACKOFF_NS 1000000000LL

typedef struct {
    int status; /* HTTP status, or -1 for a transport error / timeout */
    char msg[TSW_SAMPLE_LEN];
} tsw_sample;

typedef struct {
    int64_t start_ns, end_ns; /* CLOCK_MONOTONIC at the swaps that opened / closed the window */
    int64_t completed, errors, timeouts, connect_errors;
    int64_t sent, bytes_sent, bytes_received, send_ns, recv_ns;
    int64_t late_sends, max_lateness_ns;
    /* snapshots taken at the closing swap */
    int64_t in_flight, connections, schedule_lag_ns;
    int nsamples;
    tsw_sample samples[TSW_MAX_SAMPLES];
    tsw_hist *hist;
} tsw_window;

enum { TSW_C_FREE = 0, TSW_C_BACKOFF, TSW_C_CONNECTING, TSW_C_IDLE, TSW_C_WRITING, TSW_C_READING };

enum {
    TSW_P_HDR = 0,
    TSW_P_BODY_CL,
    TSW_P_BODY_EOF,
    TSW_P_CHUNK_SIZE,
    TSW_P_CHUNK_EXT,
    TSW_P_CHUNK_SIZE_LF,
    TSW_P_CHUNK_DATA,
    TSW_P_CHUNK_DATA_CRLF,
    TSW_P_TRAILER,
    TSW_P_DONE
};

typedef struct tsw_conn {
    int fd;
    int state;
    int has_req;   /* a request is assigned (open loop: possibly still waiting for connect) */
    int ep_out;    /* EPOLLOUT currently registered */
    uint32_t req;  /* index of the assigned request */
    size_t wpos;   /* bytes of it written */
    int64_t t_origin;   /* latency origin: intended send time (open) / first write (closed) */
    int64_t t_write0;   /* first write of the current request */
    int64_t t_first;    /* clock read before the recv() that returned the first response byte */
    int64_t deadline;   /* timeout of the request or connect, or end of back-off */
    int64_t backoff_ns;
    int64_t rbytes;     /* response bytes so far */
    int64_t t_last;     /* when the latest response bytes were read (or arrived, see pfd) */
    /* response parser */
    int pstate;
    int status;
    int keepalive;
    int no_body;        /* HEAD request */
    int64_t remaining;  /* Content-Length left / chunk bytes left */
    int64_t chunk_size;
    int line_len;       /* chunked trailer: bytes on the current line */
    int hlen;           /* bytes accumulated in hbuf (header split over reads) */
    char *hbuf;
    int snip_len;
    char snip[TSW_SAMPLE_LEN];
    struct tsw_conn *idle_prev, *idle_next;
} tsw_conn;

struct tsw_load;

typedef struct tsw_loop {
    struct tsw_load *load;
    int id;
    pthread_t thread;
    int thread_started;
    int epfd, evfd, tfd;
    /* Open loop: the connections live in an inner epoll set `pfd`, polled without blocking on
       every wake-up. pfd is itself in epfd only while I/O must wake the loop (io_wake): while a
       connect or a partial write is pending (nout > 0), while every allowed connection is busy,
       or when receive timestamps are unavailable (ts_ok == 0). Otherwise responses are read at
       the next send time and their arrival time comes from the kernel (SO_TIMESTAMPNS, realtime,
       converted with rt_off), which saves one sleep/wake-up per request. */
    int pfd;
    int io_wake;
    int nout;          /* connections with EPOLLOUT registered (connecting / partial write) */
    int ts_ok;
    int64_t rt_off;    /* CLOCK_REALTIME - CLOCK_MONOTONIC, ns, refreshed every iteration */
    int64_t budget;    /* sends left (max_requests share), -1 = unlimited */
    int64_t end_ns;    /* duration limit (CLOCK_MONOTONIC), 0 = none */
    tsw_conn *conns;
    int nslots;     /* closed: connections of this loop; open: its max_connections */
    int nopen;      /* sockets open (connecting or connected) */
    int *free_slots;
    int nfree;
    tsw_conn *idle_head; /* open loop: connected, no request */
    int64_t in_flight;
    uint64_t rr;         /* round-robin counter */
    /* open-loop schedule */
    double next_intended; /* ns, CLOCK_MONOTONIC */
    double period_ns;
    double phase_ns;
    double t0;
    int64_t k;
    uint64_t rng;
    int64_t next_scan;
    char *rbuf;
    /* windows */
    tsw_window win[2];
    int cur;
    tsw_window *handed;  /* the window the last swap handed out */
    atomic_int swap_req;
    int swap_done;       /* under load->mu */
    int exited;          /* under load->mu */
    int64_t final_end_ns;
} tsw_loop;

typedef struct tsw_load {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *reqdata;
    size_t *req_off, *req_len;
    uint8_t *req_head;
    uint32_t nreq;
    int concurrency; /* > 0: closed loop */
    double rate;     /* > 0: open loop */
    int poisson;
    uint64_t seed;
    int max_connections;
    int64_t timeout_ns, scan_ns, late_threshold_ns;
    int nloops;
    int64_t duration_ns;  /* > 0: each loop ends by itself that long after start */
    int64_t max_requests; /* > 0: at most that many sends in all, then end once all answered */
    tsw_loop *loops;
    atomic_int stop;
    int started, stopped;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t take_mu;
    tsw_window agg;
} tsw_load;

/* ---------------------------------------------------------------- small helpers */

static inline int64_t tsw_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline uint64_t tsw_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* -ln(u) for u in (0, 1]: an exponential variate of mean 1. Written out (exponent split plus the
   atanh series, |error| < 1e-12) so the module needs nothing from libm. */
static inline double tsw_neg_log(double u)
{
    union { double d; uint64_t b; } x;
    x.d = u;
    int e = (int)((x.b >> 52) & 0x7ff) - 1023;
    x.b = (x.b & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL; /* mantissa m in [1, 2) */
    double m = x.d;
    if (m > 1.4142135623730951) { /* keep m in [sqrt(1/2), sqrt(2)) so |s| <= 0.172 */
        m *= 0.5;
        e += 1;
    }
    double s = (m - 1.0) / (m + 1.0), s2 = s * s, term = s, sum = 0.0;
    for (int k = 1; k <= 23; k += 2) {
        sum += term / k;
        term *= s2;
    }
    return -(e * 0.6931471805599453 + 2.0 * sum);
}

static void tsw_window_clear(tsw_window *w, int64_t start_ns)
{
    tsw_hist *h = w->hist;
    memset(w, 0, sizeof *w);
    w->hist = h;
    if (h)
        tsw_hist_reset(h);
    w->start_ns = w->end_ns = start_ns;
}

/* Keep up to TSW_MAX_SAMPLES distinct (status, message) pairs. */
static void tsw_add_sample(tsw_window *w, int status, const char *msg, size_t len)
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

static void tsw_add_sample_errno(tsw_window *w, const char *what, int err)
{
    char buf[TSW_SAMPLE_LEN];
    char ebuf[96];
    const char *es = strerror_r(err, ebuf, sizeof ebuf); /* GNU variant */
    int n = snprintf(buf, sizeof buf, "%s: %s", what, es);
    if (n < 0)
        n = 0;
    tsw_add_sample(w, -1, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static int tsw_epoll_wait_ns(int epfd, struct epoll_event *evs, int maxev, int64_t timeout_ns)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
    static int have_pwait2 = 1;
    if (have_pwait2) {
        struct timespec ts;
        ts.tv_sec = timeout_ns / 1000000000LL;
        ts.tv_nsec = timeout_ns % 1000000000LL;
        int n = epoll_pwait2(epfd, evs, maxev, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        have_pwait2 = 0;
    }
#endif
    /* ms resolution: round down, and poll (timeout 0) through the last partial ms */
    return epoll_wait(epfd, evs, maxev, (int)(timeout_ns / 1000000LL));
}

/* ---------------------------------------------------------------- connections */

static inline tsw_window *tsw_cw(tsw_loop *L) { return &L->win[L->cur]; }

static void tsw_idle_push(tsw_loop *L, tsw_conn *c)
{
    c->idle_prev = NULL;
    c->idle_next = L->idle_head;
    if (L->idle_head)
        L->idle_head->idle_prev = c;
    L->idle_head = c;
}

static void tsw_idle_remove(tsw_loop *L, tsw_conn *c)
{
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else if (L->idle_head == c)
        L->idle_head = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
}

/* The epoll set the connections are registered in. */
static inline int tsw_iofd(tsw_loop *L) { return L->pfd >= 0 ? L->pfd : L->epfd; }

static void tsw_set_out(tsw_loop *L, tsw_conn *c, int want_out)
{
    if (c->ep_out == want_out)
        return;
    struct epoll_event ev;
    ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(tsw_iofd(L), EPOLL_CTL_MOD, c->fd, &ev);
    c->ep_out = want_out;
    L->nout += want_out ? 1 : -1;
}

/* Close the socket; the slot stays with its loop (closed loop) or goes back to the free list. */
static void tsw_conn_close(tsw_loop *L, tsw_conn *c)
{
    if (c->state == TSW_C_FREE && c->fd < 0)
        return; /* already closed (and, open loop, already on the free list) */
    if (c->state == TSW_C_IDLE)
        tsw_idle_remove(L, c);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
        L->nopen--;
    }
    c->state = TSW_C_FREE;
    if (c->ep_out)
        L->nout--;
    c->ep_out = 0;
    if (L->load->rate > 0)
        L->free_slots[L->nfree++] = (int)(c - L->conns);
}

static void tsw_parser_reset(tsw_conn *c)
{
    c->pstate = TSW_P_HDR;
    c->status = 0;
    c->keepalive = 1;
    c->remaining = 0;
    c->hlen = 0;
    c->snip_len = 0;
    c->rbytes = 0;
}

/* Begin a non-blocking connect. Returns 0 when the socket is open (connected or connecting),
   -1 after counting a connect error (socket closed, state FREE). */
static int tsw_conn_open(tsw_loop *L, tsw_conn *c, int64_t now)
{
    tsw_load *D = L->load;
    int fd = socket(D->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        tsw_window *w = tsw_cw(L);
        w->errors++;
        w->connect_errors++;
        tsw_add_sample_errno(w, "socket", errno);
        c->state = TSW_C_FREE;
        if (D->rate > 0)
            L->free_slots[L->nfree++] = (int)(c - L->conns);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (L->pfd >= 0 && L->ts_ok && setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0)
        L->ts_ok = 0;
    c->fd = fd;
    L->nopen++;
    c->ep_out = 1;
    L->nout++;
    c->deadline = now + D->timeout_ns;
    int r = connect(fd, (struct sockaddr *)&D->addr, D->addrlen);
    if (r != 0 && errno != EINPROGRESS) {
        tsw_window *w = tsw_cw(L);
        w->errors++;
        w->connect_errors++;
        tsw_add_sample_errno(w, "connect", errno);
        tsw_conn_close(L, c);
        return -1;
    }
    struct epoll_event ev;
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c;
    if (epoll_ctl(tsw_iofd(L), EPOLL_CTL_ADD, fd, &ev) != 0) {
        tsw_window *w = tsw_cw(L);
        w->errors++;
        w->connect_errors++;
        tsw_add_sample_errno(w, "epoll_ctl", errno);
        tsw_conn_close(L, c);
        return -1;
    }
    c->state = TSW_C_CONNECTING;
    return 0;
}

static void tsw_start_write(tsw_loop *L, tsw_conn *c, int64_t now);

/* Closed loop: (re)open slot c, or put it into back-off if the connect fails at once. */
static void tsw_closed_reopen(tsw_loop *L, tsw_conn *c, int64_t now, int after_connect_failure)
{
    tsw_load *D = L->load;
    if (c->fd >= 0 || c->state != TSW_C_FREE)
        tsw_conn_close(L, c);
    if (after_connect_failure) {
        c->backoff_ns = c->backoff_ns ? c->backoff_ns * 2 : D->scan_ns;
        if (c->backoff_ns > TSW_MAX_BACKOFF_NS)
            c->backoff_ns = TSW_MAX_BACKOFF_NS;
        c->state = TSW_C_BACKOFF;
        c->deadline = now + c->backoff_ns;
        return;
    }
    if (tsw_conn_open(L, c, now) != 0) {
        c->backoff_ns = D->scan_ns;
        c->state = TSW_C_BACKOFF;
        c->deadline = now + c->backoff_ns;
    }
}

/* A request on c failed (status -1 with msg, or a connect failure). Counts it and recycles c. */
static void tsw_fail(tsw_loop *L, tsw_conn *c, int64_t now, const char *msg, int err, int is_timeout)
{
    tsw_load *D = L->load;
    tsw_window *w = tsw_cw(L);
    int was_connecting = c->state == TSW_C_CONNECTING;
    int counted = 0;
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
            tsw_add_sample_errno(w, msg, err);
        else
            tsw_add_sample(w, -1, msg, strlen(msg));
    }
    c->has_req = 0;
    if (D->concurrency > 0)
        tsw_closed_reopen(L, c, now, was_connecting);
    else
        tsw_conn_close(L, c);
}

/* ---------------------------------------------------------------- requests */

static inline uint32_t tsw_next_req(tsw_loop *L)
{
    tsw_load *D = L->load;
    uint64_t k = L->rr++ * (uint64_t)D->nloops + (uint64_t)L->id;
    return (uint32_t)(k % D->nreq);
}

static void tsw_continue_write(tsw_loop *L, tsw_conn *c)
{
    tsw_load *D = L->load;
    size_t len = D->req_len[c->req];
    const char *p = D->reqdata + D->req_off[c->req];
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
static void tsw_start_write(tsw_loop *L, tsw_conn *c, int64_t now)
{
    tsw_load *D = L->load;
    tsw_window *w = tsw_cw(L);
    if (D->concurrency > 0) {
        if (L->budget == 0) { /* max_requests reached: the connection stays quiet */
            c->state = TSW_C_IDLE;
            c->has_req = 0;
            tsw_set_out(L, c, 0);
            return;
        }
        if (L->budget > 0)
            L->budget--;
        c->req = tsw_next_req(L);
        c->t_origin = now;
    } else {
        int64_t late = now - c->t_origin;
        if (late > w->max_lateness_ns)
            w->max_lateness_ns = late;
        if (late > D->late_threshold_ns)
            w->late_sends++;
    }
    c->has_req = 1;
    c->t_write0 = now;
    c->wpos = 0;
    c->deadline = now + D->timeout_ns;
    tsw_parser_reset(c);
    c->no_body = D->req_head[c->req];
    c->state = TSW_C_WRITING;
    w->sent++;
    L->in_flight++;
    tsw_continue_write(L, c);
}

/* ---------------------------------------------------------------- response parsing */

static inline int tsw_lower(int ch) { return (ch >= 'A' && ch <= 'Z') ? ch + 32 : ch; }

static int tsw_name_is(const char *p, size_t n, const char *lname)
{
    size_t m = strlen(lname);
    if (n != m)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (tsw_lower((unsigned char)p[i]) != lname[i])
            return 0;
    return 1;
}

/* case-insensitive: does value v (length n) contain token lword? */
static int tsw_value_has(const char *v, size_t n, const char *lword)
{
    size_t m = strlen(lword);
    for (size_t i = 0; i + m <= n; i++) {
        size_t j = 0;
        while (j < m && tsw_lower((unsigned char)v[i + j]) == lword[j])
            j++;
        if (j == m)
            return 1;
    }
    return 0;
}

/* Parse a complete header block [h, h+n) (ends with CRLFCRLF). Returns 0, 1 for a 1xx interim
   response (caller parses the next block) or -1 with *why set. */
static int tsw_parse_head(tsw_conn *c, const char *h, size_t n, const char **why)
{
    if (n < 12 || memcmp(h, "HTTP/1.", 7) != 0 || h[8] != ' ' || h[9] < '0' || h[9] > '9' ||
        h[10] < '0' || h[10] > '9' || h[11] < '0' || h[11] > '9') {
        *why = "bad response: malformed status line";
        return -1;
    }
    int http10 = h[7] == '0';
    c->status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
    int64_t clen = -1;
    int chunked = 0, conn_close = 0, conn_keep = 0;
    const char *end = h + n;
    const char *line = memchr(h, '\n', n);
    line = line ? line + 1 : end;
    while (line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        const char *le = eol;
        if (le > line && le[-1] == '\r')
            le--;
        if (le == line)
            break; /* blank line: end of headers */
        const char *colon = memchr(line, ':', (size_t)(le - line));
        if (colon) {
            const char *v = colon + 1;
            while (v < le && (*v == ' ' || *v == '\t'))
                v++;
            size_t nlen = (size_t)(colon - line), vlen = (size_t)(le - v);
            if (tsw_name_is(line, nlen, "content-length")) {
                int64_t x = 0;
                size_t i = 0;
                for (; i < vlen && v[i] >= '0' && v[i] <= '9'; i++) {
                    if (x > (INT64_MAX - 9) / 10) {
                        *why = "bad response: Content-Length too large";
                        return -1;
                    }
                    x = x * 10 + (v[i] - '0');
                }
                if (i == 0) {
                    *why = "bad response: invalid Content-Length";
                    return -1;
                }
                clen = x;
            } else if (tsw_name_is(line, nlen, "transfer-encoding")) {
                if (tsw_value_has(v, vlen, "chunked"))
                    chunked = 1;
            } else if (tsw_name_is(line, nlen, "connection")) {
                if (tsw_value_has(v, vlen, "close"))
                    conn_close = 1;
                if (tsw_value_has(v, vlen, "keep-alive"))
                    conn_keep = 1;
            }
        }
        line = eol + 1;
    }
    if (c->status >= 100 && c->status < 200 && c->status != 101)
        return 1;
    c->keepalive = http10 ? conn_keep : !conn_close;
    if (c->no_body || c->status == 204 || c->status == 304) {
        c->pstate = TSW_P_DONE;
    } else if (chunked) {
        c->pstate = TSW_P_CHUNK_SIZE;
        c->chunk_size = 0;
    } else if (clen >= 0) {
        c->remaining = clen;
        c->pstate = clen ? TSW_P_BODY_CL : TSW_P_DONE;
    } else {
        c->pstate = TSW_P_BODY_EOF; /* delimited by close */
        c->keepalive = 0;
    }
    return 0;
}

static inline void tsw_snip(tsw_conn *c, const char *p, size_t n)
{
    if (c->status != 200 && c->snip_len < TSW_SAMPLE_LEN - 1) {
        size_t room = (size_t)(TSW_SAMPLE_LEN - 1 - c->snip_len);
        if (n > room)
            n = room;
        memcpy(c->snip + c->snip_len, p, n);
        c->snip_len += (int)n;
    }
}

/* The chunk-size line is complete: data follows, or the last chunk's trailer. */
static inline void tsw_chunk_line_done(tsw_conn *c)
{
    if (c->chunk_size == 0) {
        c->pstate = TSW_P_TRAILER;
        c->line_len = 0;
    } else {
        c->remaining = c->chunk_size;
        c->chunk_size = 0;
        c->pstate = TSW_P_CHUNK_DATA;
    }
}

/* Feed n response bytes. Returns 1 when the response is complete (*used = bytes consumed),
   0 when more is needed, -1 on a protocol error (*why set). */
static int tsw_feed(tsw_conn *c, const char *p, size_t n, size_t *used, const char **why)
{
    const char *p0 = p;
    while (c->pstate != TSW_P_DONE) {
        if (c->pstate == TSW_P_HDR) {
            if (n == 0)
                break;
            const char *hdr;
            size_t hend, take;
            if (c->hlen == 0) {
                const char *e = memmem(p, n, "\r\n\r\n", 4);
                if (!e) {
                    if (n > TSW_HDR_MAX) {
                        *why = "bad response: header too large";
                        return -1;
                    }
                    memcpy(c->hbuf, p, n);
                    c->hlen = (int)n;
                    p += n;
                    n = 0;
                    break;
                }
                hdr = p;
                hend = (size_t)(e - p) + 4;
                take = hend;
            } else {
                size_t old = (size_t)c->hlen, room = TSW_HDR_MAX - old;
                size_t cp = n < room ? n : room;
                memcpy(c->hbuf + old, p, cp);
                size_t from = old > 3 ? old - 3 : 0;
                const char *e = memmem(c->hbuf + from, old + cp - from, "\r\n\r\n", 4);
                if (!e) {
                    if (old + cp >= TSW_HDR_MAX) {
                        *why = "bad response: header too large";
                        return -1;
                    }
                    c->hlen = (int)(old + cp);
                    p += cp;
                    n -= cp;
                    break;
                }
                hdr = c->hbuf;
                hend = (size_t)(e - c->hbuf) + 4;
                take = hend - old;
            }
            int r = tsw_parse_head(c, hdr, hend, why);
            c->hlen = 0;
            p += take;
            n -= take;
            if (r < 0)
                return -1;
            continue; /* r == 1: interim response, parse the next header block */
        }
        if (n == 0)
            break;
        switch (c->pstate) {
        case TSW_P_BODY_CL: {
            size_t t = (int64_t)n < c->remaining ? n : (size_t)c->remaining;
            tsw_snip(c, p, t);
            p += t;
            n -= t;
            c->remaining -= (int64_t)t;
            if (c->remaining == 0)
                c->pstate = TSW_P_DONE;
            break;
        }
        case TSW_P_BODY_EOF:
            tsw_snip(c, p, n);
            p += n;
            n = 0;
            break;
        case TSW_P_CHUNK_SIZE: {
            char ch = *p++;
            n--;
            int d = (ch >= '0' && ch <= '9') ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                  : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10 : -1;
            if (d >= 0) {
                if (c->chunk_size > (INT64_MAX >> 5)) {
                    *why = "bad response: chunk too large";
                    return -1;
                }
                c->chunk_size = c->chunk_size * 16 + d;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                c->pstate = TSW_P_CHUNK_EXT;
            } else if (ch == '\r') {
                c->pstate = TSW_P_CHUNK_SIZE_LF;
            } else if (ch == '\n') {
                tsw_chunk_line_done(c);
            } else {
                *why = "bad response: invalid chunk size";
                return -1;
            }
            break;
        }
        case TSW_P_CHUNK_EXT:
        case TSW_P_CHUNK_SIZE_LF: {
            const char *lf = memchr(p, '\n', n);
            if (!lf) {
                p += n;
                n = 0;
                break;
            }
            n -= (size_t)(lf + 1 - p);
            p = lf + 1;
            tsw_chunk_line_done(c);
            break;
        }
        case TSW_P_CHUNK_DATA: {
            size_t t = (int64_t)n < c->remaining ? n : (size_t)c->remaining;
            tsw_snip(c, p, t);
            p += t;
            n -= t;
            c->remaining -= (int64_t)t;
            if (c->remaining == 0)
                c->pstate = TSW_P_CHUNK_DATA_CRLF;
            break;
        }
        case TSW_P_CHUNK_DATA_CRLF: {
            const char *lf = memchr(p, '\n', n);
            if (!lf) {
                p += n;
                n = 0;
                break;
            }
            n -= (size_t)(lf + 1 - p);
            p = lf + 1;
            c->pstate = TSW_P_CHUNK_SIZE;
            c->chunk_size = 0;
            break;
        }
        case TSW_P_TRAILER: {
            char ch = *p++;
            n--;
            if (ch == '\n') {
                if (c->line_len == 0)
                    c->pstate = TSW_P_DONE;
                c->line_len = 0;
            } else if (ch != '\r') {
                c->line_len++;
            }
            break;
        }
        default:
            *why = "internal parser error";
            return -1;
        }
    }
    *used = (size_t)(p - p0);
    return c->pstate == TSW_P_DONE;
}

/* Test hook (used by loadgen._parse_response): feed data to a fresh parser in pieces of at most
   `step` bytes, as recv() would. Returns 1 complete, 0 incomplete, -1 protocol error (*why set).
   *consumed = bytes used up to the end of the response; snip gets the error-body snippet. */
static int tsw_parse_test(const char *data, size_t n, size_t step, int head, int *status,
                          int *keepalive, size_t *consumed, char *snip, size_t sniplen,
                          const char **why)
{
    tsw_conn c;
    memset(&c, 0, sizeof c);
    c.hbuf = (char *)malloc(TSW_HDR_MAX);
    if (!c.hbuf) {
        *why = "out of memory";
        return -1;
    }
    tsw_parser_reset(&c);
    c.no_body = head;
    if (step == 0)
        step = n ? n : 1;
    size_t off = 0;
    int r = 0;
    *why = NULL;
    while (off < n) {
        size_t k = n - off < step ? n - off : step, used = 0;
        r = tsw_feed(&c, data + off, k, &used, why);
        if (r < 0)
            break;
        off += used;
        if (r == 1)
            break;
    }
    *status = c.status;
    *keepalive = c.keepalive;
    *consumed = off;
    size_t m = (size_t)c.snip_len < sniplen - 1 ? (size_t)c.snip_len : sniplen - 1;
    memcpy(snip, c.snip, m);
    snip[m] = 0;
    free(c.hbuf);
    return r;
}

/* ---------------------------------------------------------------- completion & dispatch */

static void tsw_open_dispatch_one(tsw_loop *L, tsw_conn *c, int64_t now);

/* The response on c was complete at t_done (its last byte read or, with pfd, arrived); now is
   the current time, used for what follows (the next send). */
static void tsw_complete(tsw_loop *L, tsw_conn *c, int64_t t_done, int64_t now, int reusable)
{
    tsw_load *D = L->load;
    tsw_window *w = tsw_cw(L);
    int64_t t1 = now;
    L->in_flight--;
    c->has_req = 0;
    w->recv_ns += t_done - c->t_first;
    if (c->status == 200) {
        w->completed++;
        tsw_hist_record(w->hist, t_done - c->t_origin);
    } else {
        w->errors++;
        if (w->nsamples < TSW_MAX_SAMPLES) {
            if (c->snip_len > 0) {
                tsw_add_sample(w, c->status, c->snip, (size_t)c->snip_len);
            } else {
                char b[32];
                int k = snprintf(b, sizeof b, "HTTP %d", c->status);
                tsw_add_sample(w, c->status, b, (size_t)k);
            }
        }
    }
    c->backoff_ns = 0;
    if (!reusable || !c->keepalive || c->wpos < D->req_len[c->req]) {
        if (D->concurrency > 0) {
            tsw_closed_reopen(L, c, t1, 0);
        } else {
            tsw_conn_close(L, c);
        }
        return;
    }
    if (D->concurrency > 0) {
        tsw_start_write(L, c, t1);
    } else {
        c->state = TSW_C_IDLE;
        if ((int64_t)L->next_intended <= t1 && L->budget != 0 &&
            !atomic_load_explicit(&D->stop, memory_order_relaxed))
            tsw_open_dispatch_one(L, c, t1);
        else
            tsw_idle_push(L, c);
    }
}

/* recv() into L->rbuf; with pfd also the kernel's arrival time of the data (*t_arrival, else
   left unchanged). */
static ssize_t tsw_recv(tsw_loop *L, tsw_conn *c, int64_t *t_arrival)
{
    if (L->pfd < 0)
        return recv(c->fd, L->rbuf, TSW_RBUF_SIZE, 0);
    struct iovec iov;
    iov.iov_base = L->rbuf;
    iov.iov_len = TSW_RBUF_SIZE;
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec)) * 2];
        struct cmsghdr align;
    } cbuf;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.buf;
    msg.msg_controllen = sizeof cbuf.buf;
    ssize_t n = recvmsg(c->fd, &msg, 0);
    if (n <= 0)
        return n;
    int found = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(cm), sizeof ts);
            int64_t t = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec - L->rt_off;
            /* sanity: after the request was written, not in the future (+ clock-read slack) */
            if (t >= c->t_write0 - 100000 && t <= *t_arrival + 100000) {
                *t_arrival = t < *t_arrival ? t : *t_arrival;
                found = 1;
            }
        }
    }
    if (!found)
        L->ts_ok = 0; /* no usable timestamps: wake up for I/O from now on */
    return n;
}

static void tsw_on_readable(tsw_loop *L, tsw_conn *c)
{
    int64_t now = tsw_now_ns();
    int64_t t0 = now;
    ssize_t n = tsw_recv(L, c, &t0);
    if (n > 0) {
        tsw_cw(L)->bytes_received += n;
        if (!c->has_req || c->state == TSW_C_CONNECTING) {
            /* data nobody asked for: drop the connection */
            if (L->load->concurrency > 0)
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
        int r = tsw_feed(c, L->rbuf, (size_t)n, &used, &why);
        if (r < 0) {
            tsw_fail(L, c, tsw_now_ns(), why, 0, 0);
            return;
        }
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
        if (n == 0 && c->pstate == TSW_P_BODY_EOF) {
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
    if (L->load->concurrency > 0)
        tsw_closed_reopen(L, c, now, 0);
    else
        tsw_conn_close(L, c);
}

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
    if (L->load->concurrency > 0 || c->has_req) {
        tsw_start_write(L, c, now); /* clears EPOLLOUT once written */
    } else {
        tsw_set_out(L, c, 0);
        if ((int64_t)L->next_intended <= now && L->budget != 0)
            tsw_open_dispatch_one(L, c, now);
        else
            tsw_idle_push(L, c);
    }
}

static void tsw_advance_schedule(tsw_loop *L)
{
    tsw_load *D = L->load;
    if (D->poisson) {
        double u = (double)(tsw_splitmix64(&L->rng) >> 11) * (1.0 / 9007199254740992.0);
        L->next_intended += tsw_neg_log(1.0 - u) * L->period_ns;
    } else {
        L->k++;
        L->next_intended = L->t0 + L->phase_ns + (double)L->k * L->period_ns;
    }
}

/* Give the due send to connection c (IDLE, not in the idle list). */
static void tsw_open_dispatch_one(tsw_loop *L, tsw_conn *c, int64_t now)
{
    if (L->budget > 0)
        L->budget--;
    c->req = tsw_next_req(L);
    c->t_origin = (int64_t)L->next_intended;
    tsw_advance_schedule(L);
    tsw_start_write(L, c, now);
}

/* Open loop: send everything that is due, as far as connections allow. */
static void tsw_dispatch_due(tsw_loop *L, int64_t now)
{
    while ((int64_t)L->next_intended <= now && L->budget != 0) {
        tsw_conn *c = L->idle_head;
        if (c) {
            tsw_idle_remove(L, c);
            tsw_open_dispatch_one(L, c, now);
            continue;
        }
        if (L->nfree == 0)
            return; /* all max_connections busy: the send waits and will be late */
        c = &L->conns[L->free_slots[--L->nfree]];
        if (L->budget > 0)
            L->budget--;
        c->req = tsw_next_req(L);
        c->t_origin = (int64_t)L->next_intended;
        c->has_req = 1;
        tsw_advance_schedule(L);
        if (tsw_conn_open(L, c, now) != 0) {
            c->has_req = 0; /* counted as a connect error; the send is consumed */
            continue;
        }
        /* written from tsw_on_connected */
    }
}

/* Timeouts and back-off. */
static void tsw_scan(tsw_loop *L, int64_t now)
{
    tsw_load *D = L->load;
    for (int i = 0; i < L->nslots; i++) {
        tsw_conn *c = &L->conns[i];
        switch (c->state) {
        case TSW_C_CONNECTING:
            if (now >= c->deadline)
                tsw_fail(L, c, now, "connect timeout", 0, 1);
            break;
        case TSW_C_WRITING:
        case TSW_C_READING:
            if (now >= c->deadline)
                tsw_fail(L, c, now, "timeout", 0, 1);
            break;
        case TSW_C_BACKOFF:
            if (now >= c->deadline) {
                c->state = TSW_C_FREE;
                if (tsw_conn_open(L, c, now) != 0) {
                    c->backoff_ns *= 2;
                    if (c->backoff_ns > TSW_MAX_BACKOFF_NS)
                        c->backoff_ns = TSW_MAX_BACKOFF_NS;
                    if (c->backoff_ns <= 0)
                        c->backoff_ns = D->scan_ns;
                    c->state = TSW_C_BACKOFF;
                    c->deadline = now + c->backoff_ns;
                }
            }
            break;
        default:
            break;
        }
    }
}

/* ---------------------------------------------------------------- windows */

static void tsw_snapshot(tsw_loop *L, tsw_window *w, int64_t now)
{
    w->end_ns = now;
    w->in_flight = L->in_flight;
    w->connections = L->nopen;
    w->schedule_lag_ns = 0;
    if (L->load->rate > 0 && (int64_t)L->next_intended < now)
        w->schedule_lag_ns = now - (int64_t)L->next_intended;
}

/* Loop thread (or the taker, once the thread is gone): close the current window, open the next. */
static void tsw_swap(tsw_loop *L, int64_t now)
{
    tsw_window *w = &L->win[L->cur];
    if (!L->exited)
        tsw_snapshot(L, w, now);
    L->cur ^= 1;
    tsw_window_clear(&L->win[L->cur], w->end_ns);
    if (L->exited) {
        L->win[L->cur].end_ns = w->end_ns;
        L->win[L->cur].in_flight = 0;
    }
    L->handed = w;
}

static void tsw_loop_check_swap(tsw_loop *L)
{
    if (atomic_load_explicit(&L->swap_req, memory_order_acquire)) {
        atomic_store_explicit(&L->swap_req, 0, memory_order_relaxed);
        tsw_swap(L, tsw_now_ns());
        pthread_mutex_lock(&L->load->mu);
        L->swap_done = 1;
        pthread_cond_broadcast(&L->load->cv);
        pthread_mutex_unlock(&L->load->mu);
    }
}

/* ---------------------------------------------------------------- the loop thread */

static void tsw_conn_event(tsw_loop *L, tsw_conn *c, uint32_t e)
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

static inline int64_t tsw_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Open loop: handle everything ready in the inner set, without blocking. */
static void tsw_poll_inner(tsw_loop *L, struct epoll_event *evs)
{
    int64_t mono = tsw_now_ns();
    L->rt_off = tsw_realtime_ns() - mono;
    for (;;) {
        int n = epoll_wait(L->pfd, evs, TSW_MAX_EVENTS, 0);
        for (int i = 0; i < n; i++)
            tsw_conn_event(L, (tsw_conn *)evs[i].data.ptr, evs[i].events);
        if (n < TSW_MAX_EVENTS)
            break;
    }
}

static void *tsw_loop_main(void *arg)
{
    tsw_loop *L = (tsw_loop *)arg;
    tsw_load *D = L->load;
    struct epoll_event evs[TSW_MAX_EVENTS];
    int64_t now = tsw_now_ns();

    if (D->rate > 0)
        prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    L->next_scan = now + D->scan_ns;
    /* Wake-ups come from a timerfd and epoll waits without a timeout. Closed loop: the timer is
       periodic (the timeout scan). Open loop: one-shot at the next wake time, re-armed only when
       that time changes (about once per send), so a response that wakes the loop costs no timer
       work. A timeout on every wait (epoll_pwait2) would arm and cancel an hrtimer each time,
       which in a VM can mean timer-register exits. Without a timerfd: epoll_pwait2 timeouts. */
    int use_tfd = 0; /* 1 periodic, 2 one-shot */
    int64_t armed = 0;
    if (L->tfd >= 0) {
        struct itimerspec its;
        memset(&its, 0, sizeof its);
        if (D->concurrency > 0) {
            its.it_interval.tv_sec = D->scan_ns / 1000000000LL;
            its.it_interval.tv_nsec = D->scan_ns % 1000000000LL;
            its.it_value = its.it_interval;
        }
        /* One-shot (open loop): edge-triggered, so the expiry count never has to be read (one
           syscall less per send; timerfd_settime re-arms it). A periodic timerfd only re-arms
           when read, so the closed loop reads it. */
        struct epoll_event tev;
        tev.events = EPOLLIN | (D->concurrency > 0 ? 0 : EPOLLET);
        tev.data.ptr = &L->tfd;
        if (timerfd_settime(L->tfd, 0, &its, NULL) == 0 && epoll_ctl(L->epfd, EPOLL_CTL_ADD, L->tfd, &tev) == 0)
            use_tfd = D->concurrency > 0 ? 1 : 2;
    }
    if (D->concurrency > 0) {
        for (int i = 0; i < L->nslots; i++)
            tsw_closed_reopen(L, &L->conns[i], now, 0);
    } else if (L->nfree > 0) {
        /* one warm connection so the first sends need no connect */
        tsw_conn *c = &L->conns[L->free_slots[--L->nfree]];
        c->has_req = 0;
        tsw_conn_open(L, c, now);
    }

    while (!atomic_load_explicit(&D->stop, memory_order_acquire)) {
        if (L->pfd >= 0)
            tsw_poll_inner(L, evs);
        now = tsw_now_ns();
        tsw_loop_check_swap(L);
        if ((L->end_ns && now >= L->end_ns) || (L->budget == 0 && L->in_flight == 0 && L->nout == 0))
            break; /* duration_s / max_requests reached: end as stop() would */
        if (D->rate > 0)
            tsw_dispatch_due(L, now);
        if (now >= L->next_scan) {
            tsw_scan(L, now);
            L->next_scan = now + D->scan_ns;
        }
        int64_t wake = L->next_scan;
        if (D->rate > 0 && (L->idle_head || L->nfree > 0) && L->budget != 0 &&
            (int64_t)L->next_intended < wake)
            wake = (int64_t)L->next_intended;
        if (L->end_ns && L->end_ns < wake)
            wake = L->end_ns;
        if (L->pfd >= 0) {
            int need = !L->ts_ok || L->nout > 0 || (!L->idle_head && L->nfree == 0) ||
                       L->budget == 0; /* max_requests reached: finish promptly */
            if (need != L->io_wake) {
                struct epoll_event pev;
                pev.events = EPOLLIN;
                pev.data.ptr = &L->pfd;
                if (epoll_ctl(L->epfd, need ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, L->pfd, &pev) == 0)
                    L->io_wake = need;
            }
        }
        int64_t dt = wake - now;
        if (dt < 0)
            dt = 0;
        int n;
        if (use_tfd == 1 && wake == L->next_scan) {
            n = epoll_wait(L->epfd, evs, TSW_MAX_EVENTS, -1);
        } else if (use_tfd == 2 && dt > 0) {
            if (wake != armed) {
                struct itimerspec its;
                memset(&its, 0, sizeof its);
                its.it_value.tv_sec = wake / 1000000000LL;
                its.it_value.tv_nsec = wake % 1000000000LL;
                timerfd_settime(L->tfd, TFD_TIMER_ABSTIME, &its, NULL);
                armed = wake;
            }
            n = epoll_wait(L->epfd, evs, TSW_MAX_EVENTS, -1);
        } else {
            n = tsw_epoll_wait_ns(L->epfd, evs, TSW_MAX_EVENTS, dt);
        }
        for (int i = 0; i < n; i++) {
            tsw_conn *c = (tsw_conn *)evs[i].data.ptr;
            if (!c) {
                uint64_t v;
                ssize_t r = read(L->evfd, &v, sizeof v);
                (void)r;
                continue;
            }
            if ((void *)c == (void *)&L->tfd) {
                if (use_tfd == 2) {
                    armed = 0; /* fired: a one-shot timer is now disarmed */
                } else {
                    uint64_t v;
                    ssize_t r = read(L->tfd, &v, sizeof v);
                    (void)r;
                }
                continue;
            }
            if ((void *)c == (void *)&L->pfd)
                continue; /* polled at the top of the next iteration */
            tsw_conn_event(L, c, evs[i].events);
        }
    }

    /* responses that already arrived are not abandoned */
    L->budget = 0; /* no new sends while draining */
    if (L->pfd >= 0)
        tsw_poll_inner(L, evs);
    /* final window: requests still in flight are abandoned by stop() */
    now = tsw_now_ns();
    tsw_snapshot(L, &L->win[L->cur], now);
    for (int i = 0; i < L->nslots; i++) {
        tsw_conn *c = &L->conns[i];
        if (c->fd >= 0) {
            close(c->fd);
            c->fd = -1;
        }
        c->state = TSW_C_FREE;
    }
    L->nopen = 0;
    L->idle_head = NULL;
    pthread_mutex_lock(&D->mu);
    L->final_end_ns = now;
    L->exited = 1;
    pthread_cond_broadcast(&D->cv);
    pthread_mutex_unlock(&D->mu);
    return NULL;
}

/* ---------------------------------------------------------------- public API */

static void tsw_load_free(tsw_load *D);

/* Returns NULL with a message in err on failure. reqdata holds nreq requests back to back. */
static tsw_load *tsw_load_new(const char *host, int port, const char *reqdata, const size_t *lens,
                              uint32_t nreq, int concurrency, double rate, int poisson, uint64_t seed,
                              int max_connections, double timeout_s, double late_threshold_s,
                              int threads, double duration_s, int64_t max_requests, char *err,
                              size_t errlen)
{
    if (nreq == 0) {
        snprintf(err, errlen, "no requests");
        return NULL;
    }
    if ((concurrency > 0) == (rate > 0)) {
        snprintf(err, errlen, "exactly one of concurrency > 0 or rate > 0 is required");
        return NULL;
    }
    if (threads < 1)
        threads = 1;
    if (concurrency > 0 && threads > concurrency)
        threads = concurrency;
    if (rate > 0) {
        if (max_connections < 1)
            max_connections = 1;
        if (threads > max_connections)
            threads = max_connections;
    }
    if (!(timeout_s > 0))
        timeout_s = 30.0;

    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0 || !res) {
        snprintf(err, errlen, "cannot resolve %s:%d: %s", host, port, gai_strerror(gai));
        return NULL;
    }

    tsw_load *D = (tsw_load *)calloc(1, sizeof *D);
    if (!D) {
        freeaddrinfo(res);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(&D->addr, res->ai_addr, res->ai_addrlen);
    D->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    pthread_mutex_init(&D->mu, NULL);
    pthread_cond_init(&D->cv, NULL);
    pthread_mutex_init(&D->take_mu, NULL);
    atomic_init(&D->stop, 0);
    D->concurrency = concurrency > 0 ? concurrency : 0;
    D->rate = rate > 0 ? rate : 0;
    D->poisson = poisson;
    D->seed = seed;
    D->max_connections = max_connections;
    D->timeout_ns = (int64_t)(timeout_s * 1e9);
    D->late_threshold_ns = (int64_t)(late_threshold_s * 1e9);
    D->scan_ns = D->timeout_ns / 10;
    if (D->scan_ns < 1000000)
        D->scan_ns = 1000000;
    if (D->scan_ns > 50000000)
        D->scan_ns = 50000000;
    D->nloops = threads;
    D->duration_ns = duration_s > 0 ? (int64_t)(duration_s * 1e9) : 0;
    D->max_requests = max_requests > 0 ? max_requests : 0;

    size_t total = 0;
    for (uint32_t i = 0; i < nreq; i++)
        total += lens[i];
    D->nreq = nreq;
    D->reqdata = (char *)malloc(total ? total : 1);
    D->req_off = (size_t *)calloc(nreq, sizeof(size_t));
    D->req_len = (size_t *)calloc(nreq, sizeof(size_t));
    D->req_head = (uint8_t *)calloc(nreq, 1);
    D->agg.hist = tsw_hist_new();
    D->loops = (tsw_loop *)calloc((size_t)threads, sizeof(tsw_loop));
    if (!D->reqdata || !D->req_off || !D->req_len || !D->req_head || !D->agg.hist || !D->loops)
        goto oom;
    memcpy(D->reqdata, reqdata, total);
    total = 0;
    for (uint32_t i = 0; i < nreq; i++) {
        D->req_off[i] = total;
        D->req_len[i] = lens[i];
        D->req_head[i] = lens[i] >= 5 && memcmp(reqdata + total, "HEAD ", 5) == 0;
        total += lens[i];
    }

    for (int i = 0; i < threads; i++)
        D->loops[i].epfd = D->loops[i].evfd = D->loops[i].tfd = D->loops[i].pfd = -1;
    int per_total = D->concurrency > 0 ? D->concurrency : max_connections;
    for (int i = 0; i < threads; i++) {
        tsw_loop *L = &D->loops[i];
        L->load = D;
        L->id = i;
        L->nslots = per_total / threads + (i < per_total % threads ? 1 : 0);
        L->conns = (tsw_conn *)calloc((size_t)L->nslots, sizeof(tsw_conn));
        L->free_slots = (int *)calloc((size_t)L->nslots, sizeof(int));
        L->rbuf = (char *)malloc(TSW_RBUF_SIZE);
        L->win[0].hist = tsw_hist_new();
        L->win[1].hist = tsw_hist_new();
        if (!L->conns || !L->free_slots || !L->rbuf || !L->win[0].hist || !L->win[1].hist)
            goto oom;
        for (int j = 0; j < L->nslots; j++) {
            L->conns[j].fd = -1;
            L->conns[j].hbuf = (char *)malloc(TSW_HDR_MAX);
            if (!L->conns[j].hbuf)
                goto oom;
        }
        if (D->rate > 0) {
            for (int j = L->nslots - 1; j >= 0; j--)
                L->free_slots[L->nfree++] = j;
        }
        atomic_init(&L->swap_req, 0);
        L->budget = D->max_requests > 0
                        ? D->max_requests / threads + (i < D->max_requests % threads ? 1 : 0)
                        : -1;
        L->epfd = epoll_create1(EPOLL_CLOEXEC);
        L->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        L->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC); /* -1: fall back */
        if (D->rate > 0) {
            L->pfd = epoll_create1(EPOLL_CLOEXEC); /* -1: connections go into epfd */
            if (L->pfd >= 0) {
                struct epoll_event pev;
                pev.events = EPOLLIN;
                pev.data.ptr = &L->pfd;
                if (epoll_ctl(L->epfd, EPOLL_CTL_ADD, L->pfd, &pev) == 0)
                    L->io_wake = 1;
                L->ts_ok = 1;
            }
        }
        if (L->epfd < 0 || L->evfd < 0) {
            snprintf(err, errlen, "epoll/eventfd: %s", strerror(errno));
            tsw_load_free(D);
            return NULL;
        }
        struct epoll_event ev;
        ev.events = EPOLLIN;
        ev.data.ptr = NULL;
        epoll_ctl(L->epfd, EPOLL_CTL_ADD, L->evfd, &ev);
        /* open loop: loop i of K sends at t0 + (i + jK)/R (constant) or is a Poisson stream of
           rate R/K (their superposition is Poisson of rate R) */
        if (D->rate > 0) {
            L->period_ns = 1e9 * threads / D->rate;
            L->phase_ns = D->poisson ? 0.0 : 1e9 * i / D->rate;
            L->rng = seed ^ (0x5851F42D4C957F2DULL * (uint64_t)(i + 1));
        }
    }
    return D;
oom:
    snprintf(err, errlen, "out of memory");
    tsw_load_free(D);
    return NULL;
}

/* Start the loop threads. 0 on success, else errno-style code. */
static int tsw_load_start(tsw_load *D)
{
    if (D->started)
        return EALREADY;
    D->started = 1;
    int64_t now = tsw_now_ns();
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals stay with the Python thread */
    int rc = 0;
    for (int i = 0; i < D->nloops; i++) {
        tsw_loop *L = &D->loops[i];
        tsw_window_clear(&L->win[0], now);
        tsw_window_clear(&L->win[1], now);
        L->cur = 0;
        L->end_ns = D->duration_ns > 0 ? now + D->duration_ns : 0;
        if (D->rate > 0) {
            L->t0 = (double)now;
            L->k = 0;
            if (D->poisson) {
                double u = (double)(tsw_splitmix64(&L->rng) >> 11) * (1.0 / 9007199254740992.0);
                L->next_intended = (double)now + tsw_neg_log(1.0 - u) * L->period_ns;
            } else {
                L->next_intended = (double)now + L->phase_ns;
            }
        }
        rc = pthread_create(&L->thread, NULL, tsw_loop_main, L);
        if (rc != 0)
            break;
        L->thread_started = 1;
        pthread_setname_np(L->thread, "tsw-loadgen"); /* visible at once in top -H and /proc */
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        atomic_store(&D->stop, 1);
        for (int i = 0; i < D->nloops; i++) {
            tsw_loop *L = &D->loops[i];
            if (L->thread_started) {
                uint64_t one = 1;
                ssize_t w = write(L->evfd, &one, sizeof one);
                (void)w;
                pthread_join(L->thread, NULL);
                L->thread_started = 0;
            } else {
                L->exited = 1;
                L->final_end_ns = now;
            }
        }
        D->stopped = 1;
    }
    return rc;
}

/* Stop and join; idempotent. */
static void tsw_load_stop(tsw_load *D)
{
    if (!D->started || D->stopped)
        return;
    atomic_store_explicit(&D->stop, 1, memory_order_release);
    for (int i = 0; i < D->nloops; i++) {
        uint64_t one = 1;
        ssize_t w = write(D->loops[i].evfd, &one, sizeof one);
        (void)w;
    }
    for (int i = 0; i < D->nloops; i++) {
        if (D->loops[i].thread_started) {
            pthread_join(D->loops[i].thread, NULL);
            D->loops[i].thread_started = 0;
        }
    }
    D->stopped = 1;
}

/* Started, not stopped, and some loop has not ended by itself (duration_s / max_requests). */
static int tsw_load_running(tsw_load *D)
{
    if (!D->started || D->stopped)
        return 0;
    int alive = 0;
    pthread_mutex_lock(&D->mu);
    for (int i = 0; i < D->nloops; i++)
        alive |= !D->loops[i].exited;
    pthread_mutex_unlock(&D->mu);
    return alive;
}

/* Swap every loop's window and merge them into D->agg. Holds D->take_mu on return: read
   D->agg, then call tsw_load_take_done(). Returns -1 (lock released) if never started. */
static int tsw_load_take(tsw_load *D)
{
    pthread_mutex_lock(&D->take_mu);
    if (!D->started) {
        pthread_mutex_unlock(&D->take_mu);
        return -1;
    }
    for (int i = 0; i < D->nloops; i++) {
        tsw_loop *L = &D->loops[i];
        pthread_mutex_lock(&D->mu);
        int gone = L->exited;
        L->swap_done = 0;
        pthread_mutex_unlock(&D->mu);
        if (!gone) {
            atomic_store_explicit(&L->swap_req, 1, memory_order_release);
            uint64_t one = 1;
            ssize_t w = write(L->evfd, &one, sizeof one);
            (void)w;
        }
    }
    for (int i = 0; i < D->nloops; i++) {
        tsw_loop *L = &D->loops[i];
        pthread_mutex_lock(&D->mu);
        while (!L->swap_done && !L->exited)
            pthread_cond_wait(&D->cv, &D->mu);
        int swapped = L->swap_done;
        pthread_mutex_unlock(&D->mu);
        if (!swapped) /* the thread is gone (it swapped nothing): do it here */
            tsw_swap(L, L->final_end_ns);
    }
    tsw_window *a = &D->agg;
    tsw_window_clear(a, 0);
    for (int i = 0; i < D->nloops; i++) {
        tsw_window *w = D->loops[i].handed;
        if (i == 0 || w->start_ns < a->start_ns)
            a->start_ns = w->start_ns;
        if (i == 0 || w->end_ns > a->end_ns)
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
            tsw_add_sample(a, w->samples[j].status, w->samples[j].msg, strlen(w->samples[j].msg));
        tsw_hist_merge(a->hist, w->hist);
    }
    return 0;
}

static void tsw_load_take_done(tsw_load *D) { pthread_mutex_unlock(&D->take_mu); }

static tsw_window *tsw_load_window(tsw_load *D) { return &D->agg; }

static int tsw_window_sample_status(const tsw_window *w, int i) { return w->samples[i].status; }
static const char *tsw_window_sample_msg(const tsw_window *w, int i) { return w->samples[i].msg; }

static void tsw_load_free(tsw_load *D)
{
    if (!D)
        return;
    tsw_load_stop(D);
    if (D->loops) {
        for (int i = 0; i < D->nloops; i++) {
            tsw_loop *L = &D->loops[i];
            if (L->conns) {
                for (int j = 0; j < L->nslots; j++) {
                    if (L->conns[j].fd >= 0)
                        close(L->conns[j].fd);
                    free(L->conns[j].hbuf);
                }
            }
            free(L->conns);
            free(L->free_slots);
            free(L->rbuf);
            tsw_hist_free(L->win[0].hist);
            tsw_hist_free(L->win[1].hist);
            if (L->epfd >= 0)
                close(L->epfd);
            if (L->evfd >= 0)
                close(L->evfd);
            if (L->tfd >= 0)
                close(L->tfd);
            if (L->pfd >= 0)
                close(L->pfd);
        }
        free(D->loops);
    }
    free(D->reqdata);
    free(D->req_off);
    free(D->req_len);
    free(D->req_head);
    tsw_hist_free(D->agg.hist);
    pthread_mutex_destroy(&D->mu);
    pthread_cond_destroy(&D->cv);
    pthread_mutex_destroy(&D->take_mu);
    free(D);
}

#endif /* TSW_LOADGEN_H */
