/*
 * tsw_loop.c - one loop thread: wait for I/O and timers, run the mode's work, scan for timeouts,
 * swap windows when asked, and end on stop() or a limit. Also the loop's resources.
 *
 * Closed loop: a periodic timerfd drives the timeout scan, so epoll waits without a timeout and
 * no timer is armed and cancelled around each wait (in a VM that can cost timer-register
 * exits). Open loop: the loop sleeps until the next send on a one-shot absolute timerfd
 * (edge-triggered, re-armed about once per send).
 *
 * Timeouts: a request whose response is not complete timeout_ns after its first byte was
 * written is an error ("timeout"); its connection is closed and (closed loop) reopened. Connects
 * get the same limit. Deadlines are checked by a scan every clamp(timeout/10, 1 ms, 50 ms), so a
 * timeout fires up to one scan period late.
 *
 * Windows: the loop accumulates into one of two buffers. tsw_load_take() sets swap_req and
 * pokes the loop's eventfd; the loop swaps at the top of its next iteration and signals the
 * load's condition variable.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* epoll_pwait2 */
#endif

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "tsw_conn.h"

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

/* Timeouts and (closed loop) the end of back-offs. */
static void tsw_scan(tsw_loop *L, int64_t now)
{
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
            tsw_closed_retry(L, c, now);
            break;
        default:
            break;
        }
    }
}

static void tsw_snapshot(tsw_loop *L, tsw_window *w, int64_t now)
{
    w->end_ns = now;
    w->in_flight = L->in_flight;
    w->connections = L->nopen;
    w->schedule_lag_ns = 0;
    if (!tsw_is_closed_loop(L) && (int64_t)L->next_intended < now)
        w->schedule_lag_ns = now - (int64_t)L->next_intended;
}

/* Loop thread (or the taker, once the thread is gone): close the current window, open the next. */
void tsw_swap(tsw_loop *L, int64_t now)
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

/* Count windows: tell a waiting tsw_load_wait_answered() once this window holds its goal. */
static void tsw_loop_check_count(tsw_loop *L)
{
    int64_t goal = atomic_load_explicit(&L->count_goal, memory_order_acquire);
    if (goal <= 0)
        return;
    const tsw_window *w = tsw_cw(L);
    if (w->completed + w->errors < goal)
        return;
    atomic_store_explicit(&L->count_goal, 0, memory_order_relaxed);
    pthread_mutex_lock(&L->load->mu);
    L->count_reached = 1;
    pthread_cond_broadcast(&L->load->cv);
    pthread_mutex_unlock(&L->load->mu);
}

void *tsw_loop_main(void *arg)
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
    if (D->concurrency > 0)
        tsw_closed_begin(L, now);
    else
        tsw_open_begin(L, now);

    while (!atomic_load_explicit(&D->stop, memory_order_acquire)) {
        if (L->pfd >= 0)
            tsw_open_poll_inner(L, evs);
        now = tsw_now_ns();
        tsw_loop_check_swap(L);
        tsw_loop_check_count(L);
        if ((L->end_ns && now >= L->end_ns) || (L->budget == 0 && L->in_flight == 0 && L->nout == 0))
            break; /* duration_s / max_requests reached: end as stop() would */
        if (D->rate > 0)
            tsw_open_dispatch_due(L, now);
        if (now >= L->next_scan) {
            tsw_scan(L, now);
            L->next_scan = now + D->scan_ns;
        }
        int64_t wake = L->next_scan;
        if (D->rate > 0)
            wake = tsw_open_next_wake(L, wake);
        if (L->end_ns && L->end_ns < wake)
            wake = L->end_ns;
        if (L->pfd >= 0)
            tsw_open_update_io_wake(L);
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
        tsw_open_poll_inner(L, evs);
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

/* Allocate loop `id` of D with nslots connection slots and create its epoll set, eventfd and
   timerfd (open loop: also the inner epoll set). The caller has set every fd of the loop to -1
   first, so tsw_loop_release() undoes a partial init. */
enum tsw_error tsw_loop_init(tsw_loop *L, tsw_load *D, int id, int nslots, int *os_error)
{
    L->load = D;
    L->id = id;
    L->nslots = nslots;
    L->conns = (tsw_conn *)calloc((size_t)nslots, sizeof(tsw_conn));
    L->free_slots = (int *)calloc((size_t)nslots, sizeof(int));
    L->rbuf = (char *)malloc(TSW_RBUF_SIZE);
    L->win[0].hist = tsw_hist_new();
    L->win[1].hist = tsw_hist_new();
    if (!L->conns || !L->free_slots || !L->rbuf || !L->win[0].hist || !L->win[1].hist)
        return TSW_ERR_NOMEM;
    if (D->stream)
        for (int j = 0; j < 2; j++)
            if (!(L->win[j].ttft = tsw_hist_new()) || !(L->win[j].itl = tsw_hist_new()))
                return TSW_ERR_NOMEM;
    for (int j = 0; j < nslots; j++)
        L->conns[j].fd = -1;
    for (int j = 0; j < nslots; j++)
        if (tsw_http_parser_init(&L->conns[j].parser) != 0)
            return TSW_ERR_NOMEM;
    enum tsw_error seq = tsw_seq_init(L, D->concurrency > 0 ? nslots : D->seq_slots / D->nloops + (id < D->seq_slots % D->nloops ? 1 : 0));
    if (seq != TSW_OK)
        return seq;
    if (D->rate > 0) {
        for (int j = nslots - 1; j >= 0; j--)
            L->free_slots[L->nfree++] = j;
    }
    atomic_init(&L->swap_req, 0);
    atomic_init(&L->count_goal, 0);
    L->budget = D->max_requests > 0
                    ? D->max_requests / D->nloops + (id < D->max_requests % D->nloops ? 1 : 0)
                    : -1;
    L->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (L->epfd < 0) {
        *os_error = errno;
        return TSW_ERR_SYSTEM;
    }
    L->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (L->evfd < 0) {
        *os_error = errno;
        return TSW_ERR_SYSTEM;
    }
    L->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC); /* -1: fall back */
    if (D->rate > 0) {
        L->pfd = epoll_create1(EPOLL_CLOEXEC); /* -1: connections go into epfd */
        if (L->pfd >= 0) {
            struct epoll_event pev;
            pev.events = EPOLLIN;
            pev.data.ptr = &L->pfd;
            if (epoll_ctl(L->epfd, EPOLL_CTL_ADD, L->pfd, &pev) == 0)
                L->io_wake = 1;
            /* streaming: every token's arrival matters, so the loop wakes for I/O instead of
               reading responses at the next send (a read then would merge the tokens) */
            L->ts_ok = !D->stream;
        }
        tsw_open_schedule_plan(L, D->seed);
    }
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(L->epfd, EPOLL_CTL_ADD, L->evfd, &ev);
    return TSW_OK;
}

/* Free what tsw_loop_init() made (the thread has been joined). */
void tsw_loop_release(tsw_loop *L)
{
    if (L->conns) {
        for (int j = 0; j < L->nslots; j++) {
            if (L->conns[j].fd >= 0)
                close(L->conns[j].fd);
            tsw_http_parser_release(&L->conns[j].parser);
        }
    }
    tsw_seq_release(L);
    free(L->conns);
    free(L->free_slots);
    free(L->rbuf);
    for (int j = 0; j < 2; j++) {
        tsw_hist_free(L->win[j].hist);
        tsw_hist_free(L->win[j].ttft);
        tsw_hist_free(L->win[j].itl);
    }
    if (L->epfd >= 0)
        close(L->epfd);
    if (L->evfd >= 0)
        close(L->evfd);
    if (L->tfd >= 0)
        close(L->tfd);
    if (L->pfd >= 0)
        close(L->pfd);
}
