/*
 * tsw_closed_loop.c - the closed-loop driver: N connections, each with one request always in
 * flight.
 *
 * Each connection writes its next request as soon as the previous response is complete, so the
 * offered load follows the server's speed. A connection that fails is reopened at once; one
 * whose connect fails goes into back-off (one scan period, doubling up to 1 s) so that an
 * unreachable server costs little CPU.
 */
#include "tsw_conn.h"

/* Loop start: open every connection of this loop. */
void tsw_closed_begin(tsw_loop *L, int64_t now)
{
    for (int i = 0; i < L->nslots; i++)
        tsw_closed_reopen(L, &L->conns[i], now, 0);
}

/* (Re)open slot c, or put it into back-off if the connect fails at once. */
void tsw_closed_reopen(tsw_loop *L, tsw_conn *c, int64_t now, int after_connect_failure)
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

/* Give connected c its next request (latency counts from now). 0 when max_requests is used
   up: then c stays connected and quiet. */
int tsw_closed_assign(tsw_loop *L, tsw_conn *c, int64_t now)
{
    if (L->budget == 0) {
        c->state = TSW_C_IDLE;
        c->has_req = 0;
        tsw_set_out(L, c, 0);
        return 0;
    }
    if (L->budget > 0)
        L->budget--;
    c->req = tsw_next_req(L);
    tsw_seq_take(L, c);
    c->t_origin = now;
    return 1;
}

/* The timeout scan found c in back-off: retry the connect once its back-off is over. */
void tsw_closed_retry(tsw_loop *L, tsw_conn *c, int64_t now)
{
    if (now < c->deadline)
        return;
    c->state = TSW_C_FREE;
    if (tsw_conn_open(L, c, now) != 0) {
        c->backoff_ns *= 2;
        if (c->backoff_ns > TSW_MAX_BACKOFF_NS)
            c->backoff_ns = TSW_MAX_BACKOFF_NS;
        if (c->backoff_ns <= 0)
            c->backoff_ns = L->load->scan_ns;
        c->state = TSW_C_BACKOFF;
        c->deadline = now + c->backoff_ns;
    }
}
