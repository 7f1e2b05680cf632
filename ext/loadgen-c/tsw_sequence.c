/*
 * tsw_sequence.c - sequences of requests for stateful models (Triton's sequence batcher).
 *
 * A sequence slot is one "user": it sends a sequence of requests under one id, the first with
 * sequence_start, the last with sequence_end, then starts the next sequence under a new id.
 * A sequence's length is seq_length, varied uniformly by seq_variation percent either way
 * (at least 1). Closed loop: each connection owns one slot, so concurrency is the number of
 * sequences in flight and a sequence's requests go out one after the other. Open loop: the
 * loop has seq_slots slots and each intended send goes to the next slot with no request in
 * flight (round-robin): always serial, as seq_serial asks, because the sends of one sequence
 * may go over different connections, which would not keep their order. When no slot may
 * send, the due send waits (and is late), as it does for a connection.
 *
 * Ids: loop i of K owns start + i, start + i + K, ... (wrapping at seq_id_end), and gives out
 * the next one no slot of the loop holds; a slot gives up its id only once its sequence's last
 * request is answered, so an id is reused only after its sequence ended.
 *
 * The request bytes are shared by all connections; a connection that sends a sequence's
 * request copies it into its own buffer and fills in the id and the two flags there (fixed
 * width fields, so no length changes). After a stop, tsw_load_open_sequences() names the
 * sequences cut off before their end, for the caller to end (perf_analyzer completes them too).
 */
#include <stdlib.h>
#include <string.h>

#include "tsw_loop.h"

enum tsw_error tsw_seq_init(tsw_loop *L, int nseqs)
{
    tsw_load *D = L->load;
    if (!tsw_seq_on(L))
        return TSW_OK;
    if (nseqs < 1) /* more loops than sequences */
        return TSW_ERR_CONFIG;
    L->nseqs = nseqs;
    L->seqs = (tsw_seq *)calloc((size_t)nseqs, sizeof(tsw_seq));
    if (!L->seqs)
        return TSW_ERR_NOMEM;
    for (int j = 0; j < L->nslots; j++) {
        L->conns[j].seq = -1;
        L->conns[j].wbuf = (char *)malloc(D->req_maxlen);
        if (!L->conns[j].wbuf)
            return TSW_ERR_NOMEM;
    }
    L->seq_next = D->seq_id_start + (uint64_t)L->id;
    L->seq_rng = D->seed ^ (0xD1B54A32D192ED03ULL * (uint64_t)(L->id + 1));
    /* enough ids of this loop for its slots? (the whole range: checked by tsw_load_new) */
    if (D->seq_id_end) {
        uint64_t span = D->seq_id_end - D->seq_id_start + 1;
        uint64_t mine = span > (uint64_t)L->id ? (span - 1 - (uint64_t)L->id) / (uint64_t)D->nloops + 1 : 0;
        if (mine < (uint64_t)nseqs)
            return TSW_ERR_CONFIG;
    }
    return TSW_OK;
}

void tsw_seq_release(tsw_loop *L)
{
    if (L->conns)
        for (int j = 0; j < L->nslots; j++)
            free(L->conns[j].wbuf);
    free(L->seqs);
    L->seqs = NULL;
}

/* May slot s take the next send? Only with no request of it in flight: the open loop's
   requests travel over several connections, which do not keep their order, and the sequence
   batcher needs a sequence's requests in order (its first must come first). */
static inline int tsw_seq_may_send(const tsw_loop *L, const tsw_seq *s)
{
    (void)L;
    return s->pending == 0;
}

/* Open loop: some slot may take the next send (always true without sequences). */
int tsw_seq_ready(tsw_loop *L)
{
    if (!tsw_seq_on(L) || tsw_is_closed_loop(L))
        return 1;
    for (int j = 0; j < L->nseqs; j++)
        if (tsw_seq_may_send(L, &L->seqs[j]))
            return 1;
    return 0;
}

static int tsw_seq_draw_length(tsw_loop *L)
{
    tsw_load *D = L->load;
    double spread = D->seq_length * D->seq_variation / 100.0;
    int lo = (int)(D->seq_length - spread + 0.5), hi = (int)(D->seq_length + spread + 0.5);
    if (lo < 1)
        lo = 1;
    if (hi < lo)
        hi = lo;
    double u = (double)(tsw_splitmix64(&L->seq_rng) >> 11) * (1.0 / 9007199254740992.0);
    int n = lo + (int)(u * (double)(hi - lo + 1));
    return n > hi ? hi : n;
}

static int tsw_seq_id_held(const tsw_loop *L, uint64_t id)
{
    for (int j = 0; j < L->nseqs; j++) {
        const tsw_seq *s = &L->seqs[j];
        if ((s->left > 0 || s->pending > 0) && s->id == id)
            return 1;
    }
    return 0;
}

/* The next id of this loop that no slot holds (there is one: tsw_seq_init checked the range). */
static uint64_t tsw_seq_new_id(tsw_loop *L)
{
    tsw_load *D = L->load;
    for (;;) {
        uint64_t id = L->seq_next;
        uint64_t next = id + (uint64_t)D->nloops;
        if (next < id || (D->seq_id_end && next > D->seq_id_end)) /* past the range: wrap */
            next = D->seq_id_start + (uint64_t)L->id;
        L->seq_next = next;
        if (id == 0) /* Triton reads id 0 as "no sequence" */
            continue;
        if (!tsw_seq_id_held(L, id))
            return id;
    }
}

/* Give c's next request (c->req is set) to a sequence: closed loop c's own slot, open loop
   the next slot that may send (the caller checked tsw_seq_ready). */
void tsw_seq_take(tsw_loop *L, tsw_conn *c)
{
    if (!tsw_seq_on(L))
        return;
    int j;
    if (tsw_is_closed_loop(L)) {
        j = (int)(c - L->conns);
    } else {
        j = L->seq_rr;
        for (int k = 0; k < L->nseqs && !tsw_seq_may_send(L, &L->seqs[j]); k++)
            j = (j + 1) % L->nseqs;
        L->seq_rr = (j + 1) % L->nseqs;
    }
    tsw_seq *s = &L->seqs[j];
    int start = 0;
    if (s->left == 0) {
        s->id = tsw_seq_new_id(L);
        s->left = tsw_seq_draw_length(L);
        start = 1;
    }
    s->left--;
    s->pending++;
    c->seq = j;
    /* the request with the marks filled in */
    tsw_load *D = L->load;
    const uint32_t *m = D->seq_marks + 3 * (size_t)c->req;
    memcpy(c->wbuf, D->reqdata + D->req_off[c->req], D->req_len[c->req]);
    char digits[TSW_SEQ_ID_WIDTH];
    int n = 0;
    uint64_t v = s->id;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < TSW_SEQ_ID_WIDTH);
    char *at = c->wbuf + m[0];
    for (int k = 0; k < TSW_SEQ_ID_WIDTH; k++)
        at[k] = k < n ? digits[n - 1 - k] : ' ';
    memcpy(c->wbuf + m[1], start ? "true " : "false", TSW_SEQ_FLAG_WIDTH);
    memcpy(c->wbuf + m[2], s->left == 0 ? "true " : "false", TSW_SEQ_FLAG_WIDTH);
}

/* c's request was answered or failed (or never went out): its slot may go on. */
void tsw_seq_answered(tsw_loop *L, tsw_conn *c)
{
    if (!tsw_seq_on(L) || c->seq < 0)
        return;
    L->seqs[c->seq].pending--;
    c->seq = -1;
}

int tsw_load_open_sequences(tsw_load *D, uint64_t *ids, int max)
{
    if (D->seq_length <= 0 || !D->stopped)
        return 0;
    int n = 0;
    for (int i = 0; i < D->nloops; i++) {
        tsw_loop *L = &D->loops[i];
        for (int j = 0; j < L->nseqs; j++) {
            if (L->seqs[j].left > 0) {
                if (n < max)
                    ids[n] = L->seqs[j].id;
                n++;
            }
        }
    }
    return n;
}
