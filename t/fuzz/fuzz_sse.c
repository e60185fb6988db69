/*
 * The SSE parser.  Input: a byte for the size limit, two for the seed of
 * the split points, then the stream.  The stream is parsed whole, in
 * chunks cut at points from the seed, and byte by byte: the three must
 * give the same events.
 */

#include "fuzz.h"
#include "tg_sse.h"


typedef struct {
    char    *buf;
    size_t   len;
    size_t   size;
    size_t   n;
    size_t   max;
} fuzz_log_t;


static void
fuzz_log_add(fuzz_log_t *log, const void *p, size_t len)
{
    char  *b;

    if (len == 0) {
        return;
    }

    if (log->len + len > log->size) {
        log->size = (log->len + len) * 2;
        b = realloc(log->buf, log->size);
        if (b == NULL) {
            abort();
        }

        log->buf = b;
    }

    memcpy(log->buf + log->len, p, len);
    log->len += len;
}


static void
fuzz_on_event(void *data, const char *event, size_t event_len,
    const char *payload, size_t len)
{
    fuzz_log_t  *log = data;

    fuzz_assert(event_len < 64 && len < log->max);

    /* touch every byte, so that ASan checks the spans */
    fuzz_log_add(log, &event_len, sizeof(size_t));
    fuzz_log_add(log, event, event_len);
    fuzz_log_add(log, &len, sizeof(size_t));
    fuzz_log_add(log, payload, len);
    log->n++;
}


/* streaming: the data pieces of the event in progress */
typedef struct {
    fuzz_log_t   *log;
    fuzz_log_t    cur;
} fuzz_stream_t;


static void
fuzz_on_data(void *data, const char *p, size_t len)
{
    fuzz_stream_t  *st = data;

    fuzz_log_add(&st->cur, p, len);
}


static void
fuzz_on_stream_event(void *data, const char *event, size_t event_len,
    const char *payload, size_t len)
{
    fuzz_stream_t  *st = data;

    fuzz_assert(payload == NULL && len == st->cur.len);

    fuzz_on_event(st->log, event, event_len, st->cur.buf, len);
    st->cur.len = 0;
}


/* the streaming parser, split at random: the same events, same data */
static void
fuzz_parse_stream(const char *p, size_t len, uint32_t seed, fuzz_log_t *log)
{
    size_t          n;
    tg_sse_t        sse;
    fuzz_stream_t   st;

    memset(&st, 0, sizeof(fuzz_stream_t));
    st.log = log;
    log->max = (size_t) -1;

    tg_sse_init_stream(&sse, fuzz_on_data);

    while (len) {
        n = 1 + fuzz_rand(&seed) % 64;
        n = n < len ? n : len;

        fuzz_assert(tg_sse_feed(&sse, p, n, fuzz_on_stream_event, &st)
                    == 0);
        p += n;
        len -= n;
    }

    tg_sse_finish(&sse, fuzz_on_stream_event, &st);
    tg_sse_free(&sse);
    free(st.cur.buf);
}


static void
fuzz_parse(const char *p, size_t len, size_t max, uint32_t seed,
    int bytewise, fuzz_log_t *log)
{
    size_t    n;
    tg_sse_t  sse;

    tg_sse_init(&sse, max);
    log->max = max;

    while (len) {
        if (bytewise) {
            n = 1;

        } else if (seed) {
            n = 1 + fuzz_rand(&seed) % 64;
            n = n < len ? n : len;

        } else {
            n = len;
        }

        fuzz_assert(tg_sse_feed(&sse, p, n, fuzz_on_event, log) == 0);

        p += n;
        len -= n;
    }

    tg_sse_finish(&sse, fuzz_on_event, log);
    tg_sse_free(&sse);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char          *stream;
    size_t         max;
    uint32_t       seed;
    fuzz_input_t   in;
    fuzz_log_t     whole, split, bytes;

    in.p = data;
    in.len = size;

    /* small limits run the "too long" paths; 0 is the module's 1M */
    max = fuzz_byte(&in);
    max = max ? max : 1024 * 1024;

    seed = fuzz_byte(&in) << 8;
    seed |= fuzz_byte(&in);
    seed |= 1;

    stream = fuzz_dup(in.p, in.len);

    memset(&whole, 0, sizeof(fuzz_log_t));
    memset(&split, 0, sizeof(fuzz_log_t));
    memset(&bytes, 0, sizeof(fuzz_log_t));

    fuzz_parse(stream, in.len, max, 0, 0, &whole);
    fuzz_parse(stream, in.len, max, seed, 0, &split);
    fuzz_parse(stream, in.len, max, 0, 1, &bytes);

    fuzz_assert(whole.n == split.n && whole.len == split.len
                && (whole.len == 0
                    || memcmp(whole.buf, split.buf, whole.len) == 0));
    fuzz_assert(whole.n == bytes.n && whole.len == bytes.len
                && (whole.len == 0
                    || memcmp(whole.buf, bytes.buf, whole.len) == 0));

    if (max == 1024 * 1024 && in.len < max) {
        /* nothing is over the limit: streaming gives the same events */
        fuzz_log_t  slog;

        memset(&slog, 0, sizeof(fuzz_log_t));
        fuzz_parse_stream(stream, in.len, seed, &slog);

        fuzz_assert(whole.n == slog.n && whole.len == slog.len
                    && (whole.len == 0
                        || memcmp(whole.buf, slog.buf, whole.len) == 0));
        free(slog.buf);
    }

    free(whole.buf);
    free(split.buf);
    free(bytes.buf);
    free(stream);

    return 0;
}
