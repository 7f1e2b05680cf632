/*
 * tsw_loadgen.c - the public API (tsw_loadgen.h): check the config, resolve the host, build the
 * loops, start and stop their threads, and hand out merged windows.
 *
 * Everything that can fail does so here or in tsw_load_start(), as an enum tsw_error; once the
 * threads run, failures are per request and land in the windows as counts and error samples.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setname_np */
#endif

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tsw_loop.h"

const char *tsw_error_text(enum tsw_error err)
{
    switch (err) {
    case TSW_OK:
        return "no error";
    case TSW_ERR_CONFIG:
        return "invalid load config";
    case TSW_ERR_RESOLVE:
        return "cannot resolve the host";
    case TSW_ERR_NOMEM:
        return "out of memory";
    case TSW_ERR_SYSTEM:
        return "cannot create an epoll set or eventfd";
    case TSW_ERR_THREAD:
        return "cannot start the load thread";
    case TSW_ERR_STATE:
        return "the load is not in a state for this call";
    }
    return "unknown error";
}

/* Copy the requests into one buffer, noting where each starts and whether it is a HEAD. */
static enum tsw_error tsw_store_requests(tsw_load *D, const tsw_load_config *cfg)
{
    size_t total = 0;
    for (uint32_t i = 0; i < cfg->nreq; i++)
        total += cfg->req_lens[i];
    D->nreq = cfg->nreq;
    D->reqdata = (char *)malloc(total ? total : 1);
    D->req_off = (size_t *)calloc(cfg->nreq, sizeof(size_t));
    D->req_len = (size_t *)calloc(cfg->nreq, sizeof(size_t));
    D->req_head = (uint8_t *)calloc(cfg->nreq, 1);
    if (!D->reqdata || !D->req_off || !D->req_len || !D->req_head)
        return TSW_ERR_NOMEM;
    memcpy(D->reqdata, cfg->reqdata, total);
    total = 0;
    for (uint32_t i = 0; i < cfg->nreq; i++) {
        D->req_off[i] = total;
        D->req_len[i] = cfg->req_lens[i];
        D->req_head[i] = cfg->req_lens[i] >= 5 && memcmp(cfg->reqdata + total, "HEAD ", 5) == 0;
        total += cfg->req_lens[i];
    }
    return TSW_OK;
}

/* Request intervals as the ends of the gaps within one cycle; the mean rate they give is the
   open loop's rate (connections, threads and lateness are handled as for a rate). */
static enum tsw_error tsw_store_intervals(tsw_load *D, const tsw_load_config *cfg)
{
    if (cfg->nintervals == 0)
        return TSW_OK;
    D->ival_end = (double *)calloc(cfg->nintervals, sizeof(double));
    if (!D->ival_end)
        return TSW_ERR_NOMEM;
    double sum = 0.0;
    for (uint32_t j = 0; j < cfg->nintervals; j++) {
        if (!(cfg->intervals_ns[j] >= 0.0))
            return TSW_ERR_CONFIG;
        sum += cfg->intervals_ns[j];
        D->ival_end[j] = sum;
    }
    if (!(sum > 0.0))
        return TSW_ERR_CONFIG;
    D->nival = cfg->nintervals;
    D->ival_cycle = sum;
    D->rate = 1e9 * cfg->nintervals / sum;
    return TSW_OK;
}

/* Sequences: the settings and each request's marks, checked (inside their request, ids
   enough for every sequence in flight). */
static enum tsw_error tsw_store_sequences(tsw_load *D, const tsw_load_config *cfg)
{
    for (uint32_t i = 0; i < D->nreq; i++)
        if (D->req_len[i] > D->req_maxlen)
            D->req_maxlen = D->req_len[i];
    if (cfg->seq_length <= 0)
        return TSW_OK;
    if (!cfg->seq_marks || !(cfg->seq_variation >= 0.0) || (cfg->seq_id_end && cfg->seq_id_end < cfg->seq_id_start))
        return TSW_ERR_CONFIG;
    int slots = D->concurrency > 0 ? D->concurrency : (cfg->seq_slots > 0 ? cfg->seq_slots : 1);
    if (cfg->seq_id_end && cfg->seq_id_end - cfg->seq_id_start + 1 < (uint64_t)slots)
        return TSW_ERR_CONFIG;
    D->seq_marks = (uint32_t *)calloc(3 * (size_t)D->nreq, sizeof(uint32_t));
    if (!D->seq_marks)
        return TSW_ERR_NOMEM;
    for (uint32_t i = 0; i < D->nreq; i++) {
        const uint32_t *m = cfg->seq_marks + 3 * (size_t)i;
        if ((size_t)m[0] + TSW_SEQ_ID_WIDTH > D->req_len[i] || (size_t)m[1] + TSW_SEQ_FLAG_WIDTH > D->req_len[i] ||
            (size_t)m[2] + TSW_SEQ_FLAG_WIDTH > D->req_len[i])
            return TSW_ERR_CONFIG;
        memcpy(D->seq_marks + 3 * (size_t)i, m, 3 * sizeof(uint32_t));
    }
    D->seq_length = cfg->seq_length;
    D->seq_variation = cfg->seq_variation;
    D->seq_id_start = cfg->seq_id_start;
    D->seq_id_end = cfg->seq_id_end;
    D->seq_slots = slots;
    D->seq_serial = cfg->seq_serial;
    return TSW_OK;
}

/* The settings as the loops use them: modes, clamps and nanoseconds. */
static void tsw_apply_config(tsw_load *D, const tsw_load_config *cfg)
{
    int threads = cfg->threads < 1 ? 1 : cfg->threads;
    int max_connections = cfg->max_connections;
    if (cfg->concurrency > 0 && threads > cfg->concurrency)
        threads = cfg->concurrency;
    if (cfg->rate > 0 || cfg->nintervals > 0) {
        if (max_connections < 1)
            max_connections = 1;
        if (threads > max_connections)
            threads = max_connections;
    }
    double timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : 30.0;
    D->concurrency = cfg->concurrency > 0 ? cfg->concurrency : 0;
    D->rate = cfg->rate > 0 ? cfg->rate : 0;
    D->poisson = cfg->poisson;
    D->seed = cfg->seed;
    D->max_connections = max_connections;
    D->timeout_ns = (int64_t)(timeout_s * 1e9);
    D->late_threshold_ns = (int64_t)(cfg->late_threshold_s * 1e9);
    D->scan_ns = D->timeout_ns / 10;
    if (D->scan_ns < 1000000)
        D->scan_ns = 1000000;
    if (D->scan_ns > 50000000)
        D->scan_ns = 50000000;
    D->nloops = threads;
    D->duration_ns = cfg->duration_s > 0 ? (int64_t)(cfg->duration_s * 1e9) : 0;
    D->max_requests = cfg->max_requests > 0 ? cfg->max_requests : 0;
    D->stream = cfg->stream != 0;
}

enum tsw_error tsw_load_new(const tsw_load_config *cfg, tsw_load **out, int *os_error)
{
    *out = NULL;
    *os_error = 0;
    int open_loop = cfg->rate > 0 || (cfg->nintervals > 0 && cfg->intervals_ns);
    if (cfg->nreq == 0 || (cfg->concurrency > 0) == open_loop || (cfg->rate > 0 && cfg->nintervals > 0))
        return TSW_ERR_CONFIG;

    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", cfg->port);
    int gai = getaddrinfo(cfg->host, portstr, &hints, &res);
    if (gai != 0 || !res) {
        *os_error = gai;
        return TSW_ERR_RESOLVE;
    }

    tsw_load *D = (tsw_load *)calloc(1, sizeof *D);
    if (!D) {
        freeaddrinfo(res);
        return TSW_ERR_NOMEM;
    }
    memcpy(&D->addr, res->ai_addr, res->ai_addrlen);
    D->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    pthread_mutex_init(&D->mu, NULL);
    pthread_cond_init(&D->cv, NULL);
    pthread_mutex_init(&D->take_mu, NULL);
    atomic_init(&D->stop, 0);
    tsw_apply_config(D, cfg);

    enum tsw_error err = tsw_store_requests(D, cfg);
    if (err == TSW_OK)
        err = tsw_store_intervals(D, cfg); /* sets D->rate before the loops are built */
    if (err == TSW_OK)
        err = tsw_store_sequences(D, cfg);
    D->agg.hist = tsw_hist_new();
    if (D->stream) {
        D->agg.ttft = tsw_hist_new();
        D->agg.itl = tsw_hist_new();
        if (err == TSW_OK && (!D->agg.ttft || !D->agg.itl))
            err = TSW_ERR_NOMEM;
    }
    D->loops = (tsw_loop *)calloc((size_t)D->nloops, sizeof(tsw_loop));
    if (err == TSW_OK && (!D->agg.hist || !D->loops))
        err = TSW_ERR_NOMEM;
    if (D->loops) /* every fd -1 first, so freeing a half-built load closes only what it opened */
        for (int i = 0; i < D->nloops; i++)
            D->loops[i].epfd = D->loops[i].evfd = D->loops[i].tfd = D->loops[i].pfd = -1;
    int per_total = D->concurrency > 0 ? D->concurrency : D->max_connections;
    for (int i = 0; i < D->nloops && err == TSW_OK; i++) {
        int nslots = per_total / D->nloops + (i < per_total % D->nloops ? 1 : 0);
        err = tsw_loop_init(&D->loops[i], D, i, nslots, os_error);
    }
    if (err != TSW_OK) {
        tsw_load_free(D);
        return err;
    }
    *out = D;
    return TSW_OK;
}

/* Ask every started loop thread to end and wake it. */
static void tsw_signal_stop(tsw_load *D)
{
    atomic_store_explicit(&D->stop, 1, memory_order_release);
    for (int i = 0; i < D->nloops; i++) {
        uint64_t one = 1;
        ssize_t w = write(D->loops[i].evfd, &one, sizeof one);
        (void)w;
    }
}

static void tsw_join_all(tsw_load *D)
{
    for (int i = 0; i < D->nloops; i++) {
        if (D->loops[i].thread_started) {
            pthread_join(D->loops[i].thread, NULL);
            D->loops[i].thread_started = 0;
        }
    }
}

enum tsw_error tsw_load_start(tsw_load *D, int *os_error)
{
    *os_error = 0;
    if (D->started)
        return TSW_ERR_STATE;
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
        if (D->rate > 0)
            tsw_open_schedule_start(L, now);
        rc = pthread_create(&L->thread, NULL, tsw_loop_main, L);
        if (rc != 0)
            break;
        L->thread_started = 1;
        pthread_setname_np(L->thread, "tsw-loadgen"); /* visible at once in top -H and /proc */
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        return TSW_OK;
    /* undo: the loops that started end at once; the rest count as ended now */
    tsw_signal_stop(D);
    tsw_join_all(D);
    for (int i = 0; i < D->nloops; i++) {
        if (!D->loops[i].exited) {
            D->loops[i].exited = 1;
            D->loops[i].final_end_ns = now;
        }
    }
    D->stopped = 1;
    *os_error = rc;
    return TSW_ERR_THREAD;
}

void tsw_load_stop(tsw_load *D)
{
    if (!D->started || D->stopped)
        return;
    tsw_signal_stop(D);
    tsw_join_all(D);
    D->stopped = 1;
}

int tsw_load_running(tsw_load *D)
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

/* Holds D->take_mu from TSW_OK until tsw_load_take_done(), so D->agg stays still while read. */
enum tsw_error tsw_load_take(tsw_load *D, const tsw_window **window)
{
    pthread_mutex_lock(&D->take_mu);
    if (!D->started) {
        pthread_mutex_unlock(&D->take_mu);
        return TSW_ERR_STATE;
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
    tsw_window_clear(&D->agg, 0);
    for (int i = 0; i < D->nloops; i++)
        tsw_window_add(&D->agg, D->loops[i].handed, i == 0);
    *window = &D->agg;
    return TSW_OK;
}

void tsw_load_take_done(tsw_load *D) { pthread_mutex_unlock(&D->take_mu); }

enum tsw_error tsw_load_wait_answered(tsw_load *D, int64_t n, double timeout_s, int *reached)
{
    *reached = 0;
    if (!D->started)
        return TSW_ERR_STATE;
    int64_t share = n <= 0 ? 0 : (n + D->nloops - 1) / D->nloops;
    pthread_mutex_lock(&D->mu);
    for (int i = 0; i < D->nloops; i++) {
        tsw_loop *L = &D->loops[i];
        L->count_reached = share == 0;
        if (share > 0 && !L->exited) {
            atomic_store_explicit(&L->count_goal, share, memory_order_release);
            uint64_t one = 1; /* the loop checks at its next iteration, even if it has enough */
            ssize_t w = write(L->evfd, &one, sizeof one);
            (void)w;
        }
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* the condition variable's clock */
    int64_t ns = until.tv_nsec + (int64_t)(timeout_s > 0 ? timeout_s * 1e9 : 0);
    until.tv_sec += ns / 1000000000LL;
    until.tv_nsec = ns % 1000000000LL;
    int done = 0, timed_out = 0;
    while (!done && !timed_out) {
        done = 1;
        for (int i = 0; i < D->nloops; i++)
            done &= D->loops[i].count_reached || D->loops[i].exited;
        if (!done)
            timed_out = pthread_cond_timedwait(&D->cv, &D->mu, &until) == ETIMEDOUT;
    }
    int all = 1;
    for (int i = 0; i < D->nloops; i++) {
        atomic_store_explicit(&D->loops[i].count_goal, 0, memory_order_release);
        all &= D->loops[i].count_reached;
    }
    pthread_mutex_unlock(&D->mu);
    *reached = all;
    return TSW_OK;
}

double tsw_load_planned_offset_ns(const tsw_load *D, int64_t s)
{
    if (D->concurrency > 0 || s < 0)
        return -1.0;
    return tsw_open_offset_ns(D, s);
}

void tsw_load_free(tsw_load *D)
{
    if (!D)
        return;
    tsw_load_stop(D);
    if (D->loops) {
        for (int i = 0; i < D->nloops; i++)
            tsw_loop_release(&D->loops[i]);
        free(D->loops);
    }
    free(D->reqdata);
    free(D->req_off);
    free(D->req_len);
    free(D->req_head);
    free(D->ival_end);
    free(D->seq_marks);
    tsw_hist_free(D->agg.hist);
    tsw_hist_free(D->agg.ttft);
    tsw_hist_free(D->agg.itl);
    pthread_mutex_destroy(&D->mu);
    pthread_cond_destroy(&D->cv);
    pthread_mutex_destroy(&D->take_mu);
    free(D);
}
