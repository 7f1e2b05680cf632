/*
 * tsw_conn.c - opening, closing and reading a connection's socket (see tsw_conn.h).
 *
 * Sockets are non-blocking with TCP_NODELAY; in open loop they also ask for receive timestamps
 * (SO_TIMESTAMPNS) so a response's arrival time is known without waking up for it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "tsw_conn.h"

void tsw_conn_close(tsw_loop *L, tsw_conn *c)
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
    if (!tsw_is_closed_loop(L))
        L->free_slots[L->nfree++] = (int)(c - L->conns);
}

int tsw_conn_open(tsw_loop *L, tsw_conn *c, int64_t now)
{
    tsw_load *D = L->load;
    int fd = socket(D->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        tsw_window *w = tsw_cw(L);
        w->errors++;
        w->connect_errors++;
        tsw_window_add_sample_errno(w, "socket", errno);
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
        tsw_window_add_sample_errno(w, "connect", errno);
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
        tsw_window_add_sample_errno(w, "epoll_ctl", errno);
        tsw_conn_close(L, c);
        return -1;
    }
    c->state = TSW_C_CONNECTING;
    return 0;
}

ssize_t tsw_conn_recv(tsw_loop *L, tsw_conn *c, int64_t *t_arrival)
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
