/*
 * tsw_conn.h - a connection's socket: open, close, receive, and its epoll registration.
 *
 * The connection slots belong to a loop (tsw_loop.h). Open loop: a closed slot goes back to the
 * loop's free list and connected idle ones sit in its idle list. The small helpers used on
 * every request are inline here; opening and receiving live in tsw_conn.c.
 */
#ifndef TSW_CONN_H
#define TSW_CONN_H

#include <sys/types.h>

#include "tsw_loop.h"

static inline void tsw_idle_push(tsw_loop *L, tsw_conn *c)
{
    c->idle_prev = NULL;
    c->idle_next = L->idle_head;
    if (L->idle_head)
        L->idle_head->idle_prev = c;
    L->idle_head = c;
}

static inline void tsw_idle_remove(tsw_loop *L, tsw_conn *c)
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

/* Ask epoll for writability (a connect or a partial write is pending) or stop asking. */
static inline void tsw_set_out(tsw_loop *L, tsw_conn *c, int want_out)
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

/* Begin a non-blocking connect. Returns 0 when the socket is open (connected or connecting),
   -1 after counting a connect error (socket closed, state FREE). */
int tsw_conn_open(tsw_loop *L, tsw_conn *c, int64_t now);

/* Close the socket; the slot stays with its loop (closed loop) or goes back to the free list. */
void tsw_conn_close(tsw_loop *L, tsw_conn *c);

/* recv() into L->rbuf; with pfd also the kernel's arrival time of the data (*t_arrival, else
   left unchanged). */
ssize_t tsw_conn_recv(tsw_loop *L, tsw_conn *c, int64_t *t_arrival);

#endif /* TSW_CONN_H */
