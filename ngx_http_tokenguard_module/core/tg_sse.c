#include <stdlib.h>
#include <string.h>

#include "tg_sse.h"


/* streaming: where in a line */
enum {
    TG_SSE_NAME = 0,
    TG_SSE_SPACE_DATA,          /* after "data:", a space may follow */
    TG_SSE_SPACE_EVENT,
    TG_SSE_DATA,
    TG_SSE_EVENT,
    TG_SSE_IGNORE
};


static int tg_sse_keep(tg_sse_t *sse, const char *p, size_t n, int eol,
    tg_sse_event_pt handler, void *data);
static void tg_sse_stream(tg_sse_t *sse, const char *p, size_t n,
    void *data);
static void tg_sse_stream_eol(tg_sse_t *sse, tg_sse_event_pt handler,
    void *data);
static void tg_sse_stream_dispatch(tg_sse_t *sse, tg_sse_event_pt handler,
    void *data);


void
tg_sse_init(tg_sse_t *sse, size_t max)
{
    memset(sse, 0, sizeof(tg_sse_t));
    sse->max = max;
}


void
tg_sse_init_stream(tg_sse_t *sse, tg_sse_data_pt sink)
{
    memset(sse, 0, sizeof(tg_sse_t));
    sse->sink = sink;
}


void
tg_sse_free(tg_sse_t *sse)
{
    free(sse->line);
    free(sse->data);
    sse->line = NULL;
    sse->data = NULL;
}


static int
tg_sse_grow(char **buf, size_t *size, size_t need)
{
    char    *p;
    size_t   n;

    if (need <= *size) {
        return 0;
    }

    n = *size ? *size : 256;

    while (n < need) {
        n *= 2;
    }

    p = realloc(*buf, n);
    if (p == NULL) {
        return -1;
    }

    *buf = p;
    *size = n;

    return 0;
}


static void
tg_sse_dispatch(tg_sse_t *sse, tg_sse_event_pt handler, void *data)
{
    if (sse->data_len) {
        /* the last data line's "\n" is not part of the data */
        handler(data, sse->event, sse->event_len, sse->data,
                sse->data_len - 1);
    }

    sse->data_len = 0;
    sse->event_len = 0;
}


static void
tg_sse_line(tg_sse_t *sse, const char *l, size_t len,
    tg_sse_event_pt handler, void *data)
{
    size_t       name_len;
    const char  *colon, *value;

    if (len == 0) {
        tg_sse_dispatch(sse, handler, data);
        return;
    }

    if (l[0] == ':') {
        return;
    }

    colon = memchr(l, ':', len);

    if (colon) {
        name_len = colon - l;
        value = colon + 1;

        if (value < l + len && *value == ' ') {
            value++;
        }

    } else {
        name_len = len;
        value = l + len;
    }

    len -= value - l;

    if (name_len == 4 && memcmp(l, "data", 4) == 0) {

        if (sse->data_len + len + 1 > sse->max) {
            /* too large to keep: this event is dropped */
            sse->data_len = 0;
            return;
        }

        if (tg_sse_grow(&sse->data, &sse->data_size,
                        sse->data_len + len + 1) != 0)
        {
            sse->nomem = 1;
            return;
        }

        memcpy(sse->data + sse->data_len, value, len);
        sse->data_len += len;
        sse->data[sse->data_len++] = '\n';

    } else if (name_len == 5 && memcmp(l, "event", 5) == 0) {
        sse->event_len = len < sizeof(sse->event) ? len : 0;
        memcpy(sse->event, value, sse->event_len);
    }
}


/*
 * Both modes split the bytes in the same way: pieces of a line, each
 * followed by its end or by the end of what has come so far.
 */
int
tg_sse_feed(tg_sse_t *sse, const char *p, size_t len,
    tg_sse_event_pt handler, void *data)
{
    size_t       n;
    const char  *end, *eol, *cr, *lf;

    end = p + len;
    lf = NULL;

    while (p < end) {

        if (sse->last_cr) {
            sse->last_cr = 0;

            if (*p == '\n') {
                p++;
                continue;
            }
        }

        /*
         * one search for the next LF serves every CR-ended line before it:
         * a search per line would make CR-only streams quadratic
         */
        if (lf == NULL || lf < p) {
            lf = memchr(p, '\n', end - p);

            if (lf == NULL) {
                lf = end;
            }
        }

        eol = (lf < end) ? lf : NULL;
        cr = memchr(p, '\r', (eol ? eol : end) - p);

        if (cr) {
            eol = cr;
        }

        n = (eol ? eol : end) - p;

        if (sse->sink) {
            tg_sse_stream(sse, p, n, data);

            if (eol) {
                tg_sse_stream_eol(sse, handler, data);
            }

        } else if (tg_sse_keep(sse, p, n, eol != NULL, handler, data) != 0) {
            return -1;
        }

        if (eol == NULL) {
            break;
        }

        sse->last_cr = (*eol == '\r');
        p = eol + 1;
    }

    return sse->nomem ? -1 : 0;
}


/* a piece of a line, kept until the line is whole */
static int
tg_sse_keep(tg_sse_t *sse, const char *p, size_t n, int eol,
    tg_sse_event_pt handler, void *data)
{
    if (!sse->skipping) {
        if (sse->line_len + n > sse->max) {
            sse->skipping = 1;
            sse->line_len = 0;

        } else if (eol && sse->line_len == 0) {
            /* the whole line is here: no copy */
            tg_sse_line(sse, p, n, handler, data);

        } else {
            if (tg_sse_grow(&sse->line, &sse->line_size,
                            sse->line_len + n) != 0)
            {
                sse->nomem = 1;
                return -1;
            }

            memcpy(sse->line + sse->line_len, p, n);
            sse->line_len += n;

            if (eol) {
                tg_sse_line(sse, sse->line, sse->line_len, handler, data);
                sse->line_len = 0;
            }
        }
    }

    if (eol && sse->skipping) {
        sse->skipping = 0;
        sse->data_len = 0;
    }

    return 0;
}


void
tg_sse_finish(tg_sse_t *sse, tg_sse_event_pt handler, void *data)
{
    if (sse->sink) {
        if (sse->lstate != TG_SSE_NAME || sse->name_len) {
            tg_sse_stream_eol(sse, handler, data);
        }

        tg_sse_stream_dispatch(sse, handler, data);
        return;
    }

    if (sse->line_len && !sse->skipping) {
        tg_sse_line(sse, sse->line, sse->line_len, handler, data);
        sse->line_len = 0;
    }

    tg_sse_dispatch(sse, handler, data);
}


static void
tg_sse_stream_dispatch(tg_sse_t *sse, tg_sse_event_pt handler, void *data)
{
    if (sse->has_data) {
        handler(data, sse->event, sse->event_len, NULL, sse->total);
    }

    sse->has_data = 0;
    sse->total = 0;
    sse->event_len = 0;
}


/* a data line: the "\n" that joins it to the event's data before it */
static void
tg_sse_stream_data(tg_sse_t *sse, void *data)
{
    if (sse->has_data) {
        sse->sink(data, "\n", 1);
        sse->total++;
    }

    sse->has_data = 1;
}


static void
tg_sse_stream_eol(tg_sse_t *sse, tg_sse_event_pt handler, void *data)
{
    if (sse->lstate == TG_SSE_NAME) {

        if (sse->name_len == 0) {
            tg_sse_stream_dispatch(sse, handler, data);

        } else if (sse->name_len == 4 && memcmp(sse->name, "data", 4) == 0) {
            /* a field without a colon: an empty value */
            tg_sse_stream_data(sse, data);

        } else if (sse->name_len == 5 && memcmp(sse->name, "event", 5) == 0)
        {
            sse->event_len = 0;
        }

    } else if (sse->lstate == TG_SSE_EVENT
               || sse->lstate == TG_SSE_SPACE_EVENT)
    {
        if (sse->event_len >= sizeof(sse->event)) {
            /* too long to be a name we know */
            sse->event_len = 0;
        }
    }

    sse->lstate = TG_SSE_NAME;
    sse->name_len = 0;
}


/* streaming: a piece of a line, no CR or LF in it, read as it comes */
static void
tg_sse_stream(tg_sse_t *sse, const char *p, size_t n, void *data)
{
    char         c;
    const char  *end;

    end = p + n;

    while (p < end) {
        c = *p;

        switch (sse->lstate) {

        case TG_SSE_NAME:
            p++;

            if (c != ':') {
                if (sse->name_len < sizeof(sse->name)) {
                    sse->name[sse->name_len++] = c;
                }

                break;
            }

            if (sse->name_len == 4 && memcmp(sse->name, "data", 4) == 0) {
                tg_sse_stream_data(sse, data);
                sse->lstate = TG_SSE_SPACE_DATA;

            } else if (sse->name_len == 5
                       && memcmp(sse->name, "event", 5) == 0)
            {
                sse->event_len = 0;
                sse->lstate = TG_SSE_SPACE_EVENT;

            } else {
                /* a comment, or a field nobody reads */
                sse->lstate = TG_SSE_IGNORE;
            }

            break;

        case TG_SSE_SPACE_DATA:
        case TG_SSE_SPACE_EVENT:
            sse->lstate = (sse->lstate == TG_SSE_SPACE_DATA) ? TG_SSE_DATA
                                                             : TG_SSE_EVENT;
            if (c == ' ') {
                p++;
            }

            break;

        case TG_SSE_DATA:
            sse->sink(data, p, end - p);
            sse->total += end - p;
            return;

        case TG_SSE_EVENT:
            while (p < end && sse->event_len <= sizeof(sse->event)) {
                if (sse->event_len < sizeof(sse->event)) {
                    sse->event[sse->event_len] = *p;
                }

                sse->event_len++;
                p++;
            }

            return;

        default:
            return;
        }
    }
}
