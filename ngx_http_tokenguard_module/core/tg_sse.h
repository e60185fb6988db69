/*
 * An incremental server-sent events parser: bytes in, events out, split
 * anywhere (mid-line, mid-CRLF), per the WHATWG event-stream rules: lines
 * end in CRLF, LF or CR; "data:" lines join with "\n"; ":" starts a
 * comment; a blank line dispatches.  Pure C, no nginx headers.
 */

#ifndef TG_SSE_H
#define TG_SSE_H

#include <stddef.h>


typedef void (*tg_sse_event_pt)(void *data, const char *event,
    size_t event_len, const char *payload, size_t len);

/* streaming: an event's data, piece by piece ("\n" between its lines) */
typedef void (*tg_sse_data_pt)(void *data, const char *p, size_t len);


typedef struct {
    char     *line;             /* the line being read */
    size_t    line_len;
    size_t    line_size;
    char     *data;             /* the event's data so far */
    size_t    data_len;
    size_t    data_size;
    char      event[64];
    size_t    event_len;
    size_t    max;              /* larger lines or events are skipped */
    int       last_cr;          /* a CR ended the last line: skip an LF */
    int       skipping;         /* the current line is over max */
    int       nomem;

    /* streaming (tg_sse_init_stream): no line or data is kept */
    tg_sse_data_pt  sink;
    int       lstate;           /* where in the line */
    char      name[6];          /* the field name read so far */
    size_t    name_len;
    size_t    total;            /* the event's data bytes */
    unsigned  has_data:1;       /* the event has a data line */
    unsigned  in_data:1;        /* this line's data was announced */
} tg_sse_t;


/* max: the largest event data kept (bytes); larger events are dropped */
void tg_sse_init(tg_sse_t *sse, size_t max);

/*
 * Streaming: each event's data goes to sink as it arrives, the handler
 * is called at its end with payload NULL and len its size.  Memory is
 * this struct, whatever the lines or events.
 */
void tg_sse_init_stream(tg_sse_t *sse, tg_sse_data_pt sink);

/* calls handler for each complete event; returns 0, -1 out of memory */
int tg_sse_feed(tg_sse_t *sse, const char *p, size_t len,
    tg_sse_event_pt handler, void *data);

/* the stream ended: an event without its final blank line still counts */
void tg_sse_finish(tg_sse_t *sse, tg_sse_event_pt handler, void *data);

void tg_sse_free(tg_sse_t *sse);

#endif /* TG_SSE_H */
