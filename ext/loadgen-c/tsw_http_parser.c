/*
 * tsw_http_parser.c - the HTTP/1.x response parser (see tsw_http_parser.h for what it accepts).
 *
 * One job: turn response bytes, split anywhere, into "complete / need more / malformed" plus the
 * status, keep-alive and error snippet. It never touches a socket, so tests drive it directly
 * (loadgen._parse_stream) with arbitrary splits and malformed input.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif

#include <stdlib.h>
#include <string.h>

#include "tsw_http_parser.h"

int tsw_http_parser_init(tsw_http_parser *p)
{
    memset(p, 0, sizeof *p);
    p->hbuf = (char *)malloc(TSW_HDR_MAX);
    if (!p->hbuf)
        return -1;
    tsw_http_parser_reset(p, 0);
    return 0;
}

void tsw_http_parser_release(tsw_http_parser *p)
{
    free(p->hbuf);
    p->hbuf = NULL;
}

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
static int tsw_parse_head(tsw_http_parser *hp, const char *h, size_t n, const char **why)
{
    if (n < 12 || memcmp(h, "HTTP/1.", 7) != 0 || h[8] != ' ' || h[9] < '0' || h[9] > '9' ||
        h[10] < '0' || h[10] > '9' || h[11] < '0' || h[11] > '9') {
        *why = "bad response: malformed status line";
        return -1;
    }
    int http10 = h[7] == '0';
    hp->status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
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
    if (hp->status >= 100 && hp->status < 200 && hp->status != 101)
        return 1;
    hp->keepalive = http10 ? conn_keep : !conn_close;
    if (hp->no_body || hp->status == 204 || hp->status == 304) {
        hp->pstate = TSW_P_DONE;
    } else if (chunked) {
        hp->pstate = TSW_P_CHUNK_SIZE;
        hp->chunk_size = 0;
    } else if (clen >= 0) {
        hp->remaining = clen;
        hp->pstate = clen ? TSW_P_BODY_CL : TSW_P_DONE;
    } else {
        hp->pstate = TSW_P_BODY_EOF; /* delimited by close */
        hp->keepalive = 0;
    }
    return 0;
}

static inline void tsw_snip(tsw_http_parser *hp, const char *p, size_t n)
{
    if (hp->status != 200 && hp->snip_len < TSW_HTTP_SNIP_LEN - 1) {
        size_t room = (size_t)(TSW_HTTP_SNIP_LEN - 1 - hp->snip_len);
        if (n > room)
            n = room;
        memcpy(hp->snip + hp->snip_len, p, n);
        hp->snip_len += (int)n;
    }
}

#define TSW_SSE_ERROR_HEAD "data: {\"error\""

/* Scan decoded body bytes for server-sent events' ends (see tsw_http_parser.h). */
static inline void tsw_sse_scan(tsw_http_parser *hp, const char *p, size_t n)
{
    if (!hp->sse || hp->status != 200)
        return;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\r')
            continue;
        if (ch != '\n') {
            hp->sse_nl = 0;
            if (hp->ev_len < TSW_HTTP_SNIP_LEN - 1)
                hp->ev_head[hp->ev_len++] = ch;
            continue;
        }
        if (++hp->sse_nl < 2) {
            if (hp->ev_len > 0 && hp->ev_len < TSW_HTTP_SNIP_LEN - 1)
                hp->ev_head[hp->ev_len++] = ' ';
            continue;
        }
        hp->sse_nl = 0;
        if (hp->ev_len == 0)
            continue; /* blank lines between events */
        size_t m = sizeof TSW_SSE_ERROR_HEAD - 1;
        if ((size_t)hp->ev_len >= m && memcmp(hp->ev_head, TSW_SSE_ERROR_HEAD, m) == 0) {
            if (!hp->sse_error) {
                hp->sse_error = 1;
                memcpy(hp->snip, hp->ev_head, (size_t)hp->ev_len);
                hp->snip_len = hp->ev_len;
            }
        } else {
            hp->events++;
        }
        hp->ev_len = 0;
    }
}

/* The chunk-size line is complete: data follows, or the last chunk's trailer. */
static inline void tsw_chunk_line_done(tsw_http_parser *hp)
{
    if (hp->chunk_size == 0) {
        hp->pstate = TSW_P_TRAILER;
        hp->line_len = 0;
    } else {
        hp->remaining = hp->chunk_size;
        hp->chunk_size = 0;
        hp->pstate = TSW_P_CHUNK_DATA;
    }
}

/* Feed n response bytes. Returns 1 when the response is complete (*used = bytes consumed),
   0 when more is needed, -1 on a protocol error (*why set). */
int tsw_http_feed(tsw_http_parser *hp, const char *p, size_t n, size_t *used, const char **why)
{
    const char *p0 = p;
    while (hp->pstate != TSW_P_DONE) {
        if (hp->pstate == TSW_P_HDR) {
            if (n == 0)
                break;
            const char *hdr;
            size_t hend, take;
            if (hp->hlen == 0) {
                const char *e = memmem(p, n, "\r\n\r\n", 4);
                if (!e) {
                    if (n >= TSW_HDR_MAX) { /* the block with its end would not fit either */
                        *why = "bad response: header too large";
                        return -1;
                    }
                    memcpy(hp->hbuf, p, n);
                    hp->hlen = (int)n;
                    p += n;
                    n = 0;
                    break;
                }
                hdr = p;
                hend = (size_t)(e - p) + 4;
                take = hend;
                if (hend > TSW_HDR_MAX) { /* the same limit as for a block split over reads */
                    *why = "bad response: header too large";
                    return -1;
                }
            } else {
                size_t old = (size_t)hp->hlen, room = TSW_HDR_MAX - old;
                size_t cp = n < room ? n : room;
                memcpy(hp->hbuf + old, p, cp);
                size_t from = old > 3 ? old - 3 : 0;
                const char *e = memmem(hp->hbuf + from, old + cp - from, "\r\n\r\n", 4);
                if (!e) {
                    if (old + cp >= TSW_HDR_MAX) {
                        *why = "bad response: header too large";
                        return -1;
                    }
                    hp->hlen = (int)(old + cp);
                    p += cp;
                    n -= cp;
                    break;
                }
                hdr = hp->hbuf;
                hend = (size_t)(e - hp->hbuf) + 4;
                take = hend - old;
            }
            int r = tsw_parse_head(hp, hdr, hend, why);
            hp->hlen = 0;
            p += take;
            n -= take;
            if (r < 0)
                return -1;
            continue; /* r == 1: interim response, parse the next header block */
        }
        if (n == 0)
            break;
        switch (hp->pstate) {
        case TSW_P_BODY_CL: {
            size_t t = (int64_t)n < hp->remaining ? n : (size_t)hp->remaining;
            tsw_snip(hp, p, t);
            tsw_sse_scan(hp, p, t);
            p += t;
            n -= t;
            hp->remaining -= (int64_t)t;
            hp->body_len += (int64_t)t;
            if (hp->remaining == 0)
                hp->pstate = TSW_P_DONE;
            break;
        }
        case TSW_P_BODY_EOF:
            tsw_snip(hp, p, n);
            tsw_sse_scan(hp, p, n);
            hp->body_len += (int64_t)n;
            p += n;
            n = 0;
            break;
        case TSW_P_CHUNK_SIZE: {
            char ch = *p++;
            n--;
            int d = (ch >= '0' && ch <= '9') ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                  : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10 : -1;
            if (d >= 0) {
                if (hp->chunk_size > (INT64_MAX >> 5)) {
                    *why = "bad response: chunk too large";
                    return -1;
                }
                hp->chunk_size = hp->chunk_size * 16 + d;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                hp->pstate = TSW_P_CHUNK_EXT;
            } else if (ch == '\r') {
                hp->pstate = TSW_P_CHUNK_SIZE_LF;
            } else if (ch == '\n') {
                tsw_chunk_line_done(hp);
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
            tsw_chunk_line_done(hp);
            break;
        }
        case TSW_P_CHUNK_DATA: {
            size_t t = (int64_t)n < hp->remaining ? n : (size_t)hp->remaining;
            tsw_snip(hp, p, t);
            tsw_sse_scan(hp, p, t);
            p += t;
            n -= t;
            hp->remaining -= (int64_t)t;
            hp->body_len += (int64_t)t;
            if (hp->remaining == 0)
                hp->pstate = TSW_P_CHUNK_DATA_CRLF;
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
            hp->pstate = TSW_P_CHUNK_SIZE;
            hp->chunk_size = 0;
            break;
        }
        case TSW_P_TRAILER: {
            char ch = *p++;
            n--;
            if (ch == '\n') {
                if (hp->line_len == 0)
                    hp->pstate = TSW_P_DONE;
                hp->line_len = 0;
            } else if (ch != '\r') {
                hp->line_len++;
            }
            break;
        }
        default:
            *why = "internal parser error";
            return -1;
        }
    }
    *used = (size_t)(p - p0);
    return hp->pstate == TSW_P_DONE;
}
