/*
 * tsw_loop.h - the state every unit of the load generator works on, and how the units call
 * each other. Internal: loadgen.pyx sees only tsw_loadgen.h.
 *
 * A tsw_load owns K loops (K = `threads`, 1 by default); each loop is one pthread with its own
 * epoll set, connections, counters and histograms, and gets 1/K of the concurrency (closed loop)
 * or of the rate and max_connections (open loop). On a small host shared with the server one
 * loop is best: the work per request is a few syscalls and a thread gains nothing but wake-ups.
 * Requests are stored once in one buffer and sent round-robin (loop i of K sends requests i,
 * i+K, ...). One request is outstanding per connection (no pipelining) and connections are kept
 * alive. The hot path allocates nothing; per request it is one send(), normally one recv() and a
 * share of one epoll_wait(), plus a few vDSO clock reads.
 *
 * Units: tsw_conn.c (sockets and epoll registration), tsw_request.c (one request's life on a
 * connection), tsw_closed_loop.c and tsw_open_loop.c (what each mode does when a connection is
 * free), tsw_sequence.c (sequence ids and controls of stateful models), tsw_loop.c (the thread: waits, timers, timeouts, window swaps), tsw_loadgen.c (the
 * public API), tsw_http_parser.c and tsw_window.c (pure helpers).
 */
#ifndef TSW_LOOP_H
#define TSW_LOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "tsw_clock.h"
#include "tsw_http_parser.h"
#include "tsw_loadgen.h"
#include "tsw_window.h"

#define TSW_RBUF_SIZE 262144   /* per-loop receive buffer */
#define TSW_MAX_EVENTS 256
#define TSW_MAX_BACKOFF_NS 1000000000LL

enum tsw_conn_state { TSW_C_FREE = 0, TSW_C_BACKOFF, TSW_C_CONNECTING, TSW_C_IDLE, TSW_C_WRITING, TSW_C_READING };

typedef struct tsw_conn {
    int fd;
    int state;     /* enum tsw_conn_state */
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
    tsw_http_parser parser;
    struct tsw_conn *idle_prev, *idle_next;
    int seq;            /* sequences: the loop's sequence slot of the request, -1 for none */
    int64_t tokens;     /* streaming: events of the current response recorded so far */
    int64_t t_token;    /* streaming: when the latest of them arrived */
    char *wbuf;         /* sequences: the request as sent, its marks filled in (else NULL) */
} tsw_conn;

/* A sequence slot (tsw_sequence.c): one "user" sending a sequence after another. */
typedef struct tsw_seq {
    uint64_t id;  /* the current sequence's id */
    int left;     /* its requests not sent yet; 0: the next send starts a new sequence */
    int pending;  /* its requests sent and not answered */
} tsw_seq;

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
    /* sequences: slots (closed loop: slot j is connection j's), round-robin and id state */
    tsw_seq *seqs;
    int nseqs;
    int seq_rr;
    uint64_t seq_next;   /* the next id this loop tries (loop i of K owns ids start + i + jK) */
    uint64_t seq_rng;
    /* Windows: the loop accumulates into win[cur]. tsw_load_take() sets swap_req and pokes
       evfd; the loop swaps buffers at the top of its next iteration and signals load->cv, so
       the load never pauses and no counter is read while it is being written. */
    tsw_window win[2];
    int cur;
    tsw_window *handed;  /* the window the last swap handed out */
    atomic_int swap_req;
    int swap_done;       /* under load->mu */
    int exited;          /* under load->mu */
    int64_t final_end_ns;
    /* Count windows: tsw_load_wait_answered() sets count_goal (answered requests of the current
       window); the loop clears it and sets count_reached (under load->mu) once the window holds
       that many, checked at the top of each iteration. 0: nobody waits. */
    atomic_llong count_goal;
    int count_reached;   /* under load->mu */
} tsw_loop;

struct tsw_load {
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
    /* request intervals (open loop): ival_end[j] = intervals[0] + ... + intervals[j] in ns, so
       send s of the load is due at (s / n) * ival_cycle + ival_end[s % n] after start */
    double *ival_end;
    uint32_t nival;
    double ival_cycle;
    /* sequences (tsw_load_config's seq_* fields); seq_length 0: off */
    int seq_length;
    double seq_variation;
    uint64_t seq_id_start, seq_id_end;
    int seq_slots, seq_serial;
    uint32_t *seq_marks;
    size_t req_maxlen;
    int stream;      /* responses are server-sent event streams: token timing (tsw_request.c) */
    tsw_loop *loops;
    atomic_int stop;
    int started, stopped;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t take_mu;
    tsw_window agg;
};

/* The window the loop is filling now. */
static inline tsw_window *tsw_cw(tsw_loop *L) { return &L->win[L->cur]; }

static inline int tsw_is_closed_loop(const tsw_loop *L) { return L->load->concurrency > 0; }

/* The next request of this loop's round-robin share. */
static inline uint32_t tsw_next_req(tsw_loop *L)
{
    struct tsw_load *D = L->load;
    uint64_t k = L->rr++ * (uint64_t)D->nloops + (uint64_t)L->id;
    return (uint32_t)(k % D->nreq);
}

static inline uint64_t tsw_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* tsw_sequence.c: sequences of requests (stateful models); every call is a no-op without them */
static inline int tsw_seq_on(const tsw_loop *L) { return L->load->seq_length > 0; }
enum tsw_error tsw_seq_init(tsw_loop *L, int nseqs);
int tsw_seq_ready(tsw_loop *L);
void tsw_seq_take(tsw_loop *L, tsw_conn *c);
void tsw_seq_answered(tsw_loop *L, tsw_conn *c);
void tsw_seq_release(tsw_loop *L);

/* tsw_request.c: one request's life on a connection */
void tsw_start_write(tsw_loop *L, tsw_conn *c, int64_t now);
void tsw_continue_write(tsw_loop *L, tsw_conn *c);
void tsw_fail(tsw_loop *L, tsw_conn *c, int64_t now, const char *msg, int err, int is_timeout);
void tsw_conn_event(tsw_loop *L, tsw_conn *c, uint32_t events);

/* tsw_closed_loop.c */
void tsw_closed_begin(tsw_loop *L, int64_t now);
void tsw_closed_reopen(tsw_loop *L, tsw_conn *c, int64_t now, int after_connect_failure);
int tsw_closed_assign(tsw_loop *L, tsw_conn *c, int64_t now);
void tsw_closed_retry(tsw_loop *L, tsw_conn *c, int64_t now);

/* tsw_open_loop.c */
void tsw_open_schedule_plan(tsw_loop *L, uint64_t seed);
void tsw_open_schedule_start(tsw_loop *L, int64_t now);
void tsw_open_begin(tsw_loop *L, int64_t now);
void tsw_open_note_lateness(tsw_loop *L, tsw_conn *c, int64_t now);
void tsw_open_dispatch_one(tsw_loop *L, tsw_conn *c, int64_t now);
void tsw_open_dispatch_due(tsw_loop *L, int64_t now);
void tsw_open_poll_inner(tsw_loop *L, struct epoll_event *evs);
int64_t tsw_open_next_wake(tsw_loop *L, int64_t wake);
void tsw_open_update_io_wake(tsw_loop *L);
double tsw_open_offset_ns(const struct tsw_load *D, int64_t s);

/* tsw_loop.c: the thread and its resources */
enum tsw_error tsw_loop_init(tsw_loop *L, struct tsw_load *D, int id, int nslots, int *os_error);
void tsw_loop_release(tsw_loop *L);
void *tsw_loop_main(void *arg);
void tsw_swap(tsw_loop *L, int64_t now);

#endif /* TSW_LOOP_H */
