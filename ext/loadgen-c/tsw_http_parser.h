/*
 * tsw_http_parser.h - an incremental parser of HTTP/1.x responses, and nothing else.
 *
 * Pure functions on a tsw_http_parser: no sockets, no clocks, no allocation after init. Bytes
 * are fed as they arrive, split anywhere; the parser reports when the response is complete and
 * how many of the fed bytes belong to it, so the caller can tell a reusable keep-alive
 * connection from one carrying bytes nobody asked for.
 *
 * Understood: the status line, Content-Length, Transfer-Encoding: chunked (decoded: chunk sizes,
 * extensions and trailers are parsed and skipped), Connection: close / keep-alive, HTTP/1.0,
 * 1xx interim responses (skipped), 204/304 and responses to HEAD (no body), and bodies
 * delimited by connection close (the caller ends those when it reads EOF). The first
 * TSW_HTTP_SNIP_LEN-1 body bytes of a non-200 response are kept as its error snippet.
 */
#ifndef TSW_HTTP_PARSER_H
#define TSW_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#define TSW_HDR_MAX 16384      /* largest response header block accepted */
#define TSW_HTTP_SNIP_LEN 160  /* error snippet buffer, with room for a NUL */

enum tsw_http_state {
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

typedef struct tsw_http_parser {
    int pstate;         /* enum tsw_http_state */
    int status;         /* of the final (non-1xx) response once its head is parsed */
    int keepalive;      /* the connection may carry another request after this response */
    int no_body;        /* the request was HEAD: the response has no body whatever it says */
    int64_t remaining;  /* Content-Length left / chunk bytes left */
    int64_t chunk_size; /* chunk-size digits so far */
    int64_t body_len;   /* body bytes seen (decoded, for chunked) */
    int line_len;       /* chunked trailer: bytes on the current line */
    int hlen;           /* bytes accumulated in hbuf (a header block split over reads) */
    char *hbuf;         /* TSW_HDR_MAX bytes, from tsw_http_parser_init */
    int snip_len;
    char snip[TSW_HTTP_SNIP_LEN];
    /* Server-sent events (sse set by the caller after reset): the decoded body is scanned for
       event ends (a blank line); each event's first bytes are kept, and an event that begins
       `data: {"error"` (how Triton's generate_stream reports a failure mid-stream) sets
       sse_error and becomes the snippet instead of counting as an event. */
    int sse;
    int sse_nl;         /* newlines in a row at the end of what was scanned (CRs skipped) */
    int sse_error;
    int64_t events;     /* complete events, error events excluded */
    int ev_len;
    char ev_head[TSW_HTTP_SNIP_LEN];
} tsw_http_parser;

/* Allocate the header buffer: 0, or -1 when out of memory. release() frees it. */
int tsw_http_parser_init(tsw_http_parser *p);
void tsw_http_parser_release(tsw_http_parser *p);

/* Ready for the response to a new request (no_body: the request was HEAD). */
static inline void tsw_http_parser_reset(tsw_http_parser *p, int no_body)
{
    p->pstate = TSW_P_HDR;
    p->status = 0;
    p->keepalive = 1;
    p->no_body = no_body;
    p->remaining = 0;
    p->body_len = 0;
    p->hlen = 0;
    p->snip_len = 0;
    p->sse_nl = 0;
    p->sse_error = 0;
    p->events = 0;
    p->ev_len = 0;
}

/* Feed n response bytes. Returns 1 when the response is complete (*used = the bytes of data
   that belong to it), 0 when more is needed (all n were used), -1 on a protocol error (*why
   set to a static message). Never reads outside [data, data + n). */
int tsw_http_feed(tsw_http_parser *p, const char *data, size_t n, size_t *used, const char **why);

/* The body runs until the server closes the connection: EOF completes the response. */
static inline int tsw_http_until_close(const tsw_http_parser *p) { return p->pstate == TSW_P_BODY_EOF; }

#endif /* TSW_HTTP_PARSER_H */
