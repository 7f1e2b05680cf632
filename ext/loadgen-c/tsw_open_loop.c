/*
 * tsw_open_loop.c - the open-loop scheduler: intended send times, and who sends them.
 *
 * Intended send times are t0 + k/R ("constant") or have exponential gaps of mean 1/R from a
 * seeded splitmix64 stream ("poisson"). Loop i of K sends at t0 + (i + jK)/R, or is a Poisson
 * stream of rate R/K (their superposition is Poisson of rate R). With request intervals (a list
 * of gaps, cycled through), send s is due at the sum of the first s + 1 gaps, and loop i of K
 * sends s = i, i + K, ... (tsw_open_offset_ns), so the loops together keep the list's gaps. At an
 * intended time the request
 * goes to an idle keep-alive connection; if there is none, a new connection is opened while
 * fewer than max_connections are open; otherwise the send waits for the next connection that
 * frees up and goes out late. Latency counts from the intended time (coordinated-omission
 * correction, as wrk2 does); a send is "late" when it starts more than late_threshold_ns after
 * it, and max_lateness_ns is the largest such delay.
 *
 * Responses do not wake the loop: connections sit in an inner epoll set (L->pfd) polled
 * without blocking at every wake-up, and a response's arrival time is the kernel's receive
 * timestamp. I/O wakes the loop only while it must (see tsw_open_update_io_wake).
 */
#include "tsw_conn.h"

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

/* An exponential gap of mean period_ns from the loop's seeded stream. */
static inline double tsw_poisson_gap(tsw_loop *L)
{
    double u = (double)(tsw_splitmix64(&L->rng) >> 11) * (1.0 / 9007199254740992.0);
    return tsw_neg_log(1.0 - u) * L->period_ns;
}

void tsw_open_schedule_plan(tsw_loop *L, uint64_t seed)
{
    tsw_load *D = L->load;
    L->period_ns = 1e9 * D->nloops / D->rate;
    L->phase_ns = D->poisson ? 0.0 : 1e9 * L->id / D->rate;
    L->rng = seed ^ (0x5851F42D4C957F2DULL * (uint64_t)(L->id + 1));
}

/* Send s of the whole load (all loops), in ns after start, for the deterministic schedules;
   -1 for Poisson (its gaps are drawn as the load runs). */
double tsw_open_offset_ns(const tsw_load *D, int64_t s)
{
    if (D->nival > 0)
        return (double)(s / D->nival) * D->ival_cycle + D->ival_end[s % D->nival];
    if (D->poisson || D->rate <= 0)
        return -1.0;
    return 1e9 * (double)s / D->rate;
}

void tsw_open_schedule_start(tsw_loop *L, int64_t now)
{
    L->t0 = (double)now;
    L->k = 0;
    if (L->load->nival > 0)
        L->next_intended = (double)now + tsw_open_offset_ns(L->load, L->id);
    else if (L->load->poisson)
        L->next_intended = (double)now + tsw_poisson_gap(L);
    else
        L->next_intended = (double)now + L->phase_ns;
}

static void tsw_advance_schedule(tsw_loop *L)
{
    if (L->load->nival > 0) {
        L->k++;
        L->next_intended = L->t0 + tsw_open_offset_ns(L->load, L->id + L->k * L->load->nloops);
    } else if (L->load->poisson) {
        L->next_intended += tsw_poisson_gap(L);
    } else {
        L->k++;
        L->next_intended = L->t0 + L->phase_ns + (double)L->k * L->period_ns;
    }
}

/* Loop start: one warm connection, so the first sends need no connect. */
void tsw_open_begin(tsw_loop *L, int64_t now)
{
    if (L->nfree > 0) {
        tsw_conn *c = &L->conns[L->free_slots[--L->nfree]];
        c->has_req = 0;
        tsw_conn_open(L, c, now);
    }
}

void tsw_open_note_lateness(tsw_loop *L, tsw_conn *c, int64_t now)
{
    tsw_window *w = tsw_cw(L);
    int64_t late = now - c->t_origin;
    if (late > w->max_lateness_ns)
        w->max_lateness_ns = late;
    if (late > L->load->late_threshold_ns)
        w->late_sends++;
}

/* Give the due send to connection c (IDLE, not in the idle list). */
void tsw_open_dispatch_one(tsw_loop *L, tsw_conn *c, int64_t now)
{
    if (L->budget > 0)
        L->budget--;
    c->req = tsw_next_req(L);
    tsw_seq_take(L, c);
    c->t_origin = (int64_t)L->next_intended;
    tsw_advance_schedule(L);
    tsw_start_write(L, c, now);
}

/* Send everything that is due, as far as connections allow. */
void tsw_open_dispatch_due(tsw_loop *L, int64_t now)
{
    while ((int64_t)L->next_intended <= now && L->budget != 0 && tsw_seq_ready(L)) {
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
        tsw_seq_take(L, c);
        c->t_origin = (int64_t)L->next_intended;
        c->has_req = 1;
        tsw_advance_schedule(L);
        if (tsw_conn_open(L, c, now) != 0) {
            tsw_seq_answered(L, c);
            c->has_req = 0; /* counted as a connect error; the send is consumed */
            continue;
        }
        /* written once connected (tsw_request.c) */
    }
}

/* Handle everything ready in the inner set, without blocking. */
void tsw_open_poll_inner(tsw_loop *L, struct epoll_event *evs)
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

/* The loop's wake time given the other deadlines (wake): the next send, if a connection could
   take it. */
int64_t tsw_open_next_wake(tsw_loop *L, int64_t wake)
{
    if ((L->idle_head || L->nfree > 0) && L->budget != 0 && tsw_seq_ready(L) && (int64_t)L->next_intended < wake)
        return (int64_t)L->next_intended;
    return wake;
}

/* Put the inner set into the loop's wait set only while I/O must wake the loop: a connect or a
   partial write is pending, every allowed connection is busy (a due send waits for one), the
   kernel gives no receive timestamps, max_requests is reached (finish promptly), or no
   sequence may send until an answer comes. */
void tsw_open_update_io_wake(tsw_loop *L)
{
    int need = !L->ts_ok || L->nout > 0 || (!L->idle_head && L->nfree == 0) || L->budget == 0 || !tsw_seq_ready(L);
    if (need != L->io_wake) {
        struct epoll_event pev;
        pev.events = EPOLLIN;
        pev.data.ptr = &L->pfd;
        if (epoll_ctl(L->epfd, need ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, L->pfd, &pev) == 0)
            L->io_wake = need;
    }
}
