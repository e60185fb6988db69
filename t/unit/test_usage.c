/* the SSE parser and the usage extractors */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tap.h"
#include "tg_json.h"
#include "tg_sse.h"
#include "tg_usage.h"


typedef struct {
    int     n;
    char    log[4096];
    size_t  len;
} events_t;


static void
on_event(void *data, const char *event, size_t elen, const char *payload,
    size_t len)
{
    events_t  *e = data;

    e->n++;
    e->len += snprintf(e->log + e->len, sizeof(e->log) - e->len,
                       "[%.*s|%.*s]", (int) elen, event, (int) len, payload);
}


static const char *
parse_split(const char *stream, size_t at, events_t *e)
{
    tg_sse_t  sse;
    size_t    len = strlen(stream);

    memset(e, 0, sizeof(events_t));
    tg_sse_init(&sse, 1 << 20);
    tg_sse_feed(&sse, stream, at, on_event, e);
    tg_sse_feed(&sse, stream + at, len - at, on_event, e);
    tg_sse_finish(&sse, on_event, e);
    tg_sse_free(&sse);

    return e->log;
}


/* streaming: the data comes in pieces, the event at its end */
typedef struct {
    events_t   e;
    char       data[4096];
    size_t     len;
} stream_t;


static void
on_data(void *data, const char *p, size_t len)
{
    stream_t  *st = data;

    if (st->len + len <= sizeof(st->data)) {
        memcpy(st->data + st->len, p, len);
    }

    st->len += len;
}


static void
on_stream_event(void *data, const char *event, size_t elen,
    const char *payload, size_t len)
{
    stream_t  *st = data;

    if (payload == NULL && len == st->len && len <= sizeof(st->data)) {
        on_event(&st->e, event, elen, st->data, len);

    } else {
        on_event(&st->e, "MISMATCH", 8, "", 0);
    }

    st->len = 0;
}


static const char *
parse_split_stream(const char *stream, size_t at, stream_t *st)
{
    tg_sse_t  sse;
    size_t    len = strlen(stream);

    memset(st, 0, sizeof(stream_t));
    tg_sse_init_stream(&sse, on_data);
    tg_sse_feed(&sse, stream, at, on_stream_event, st);
    tg_sse_feed(&sse, stream + at, len - at, on_stream_event, st);
    tg_sse_finish(&sse, on_stream_event, st);
    tg_sse_free(&sse);

    return st->e.log;
}


/* a usage scan fed events by the streaming parser, one byte at a time */
static tg_usage_t  *scan_u;

static void
on_scan_data(void *data, const char *p, size_t len)
{
    tg_usage_scan_feed(data, p, len);
}


static void
on_scan_event(void *data, const char *event, size_t elen,
    const char *payload, size_t len)
{
    (void) event;
    (void) elen;
    (void) payload;
    (void) len;

    (void) tg_usage_scan_end(data, scan_u);
}


static void
test_usage_stream(void)
{
    char             *big, *p;
    size_t            i, n;
    stream_t          st;
    tg_sse_t          sse;
    tg_usage_t        u;
    tg_usage_scan_t   scan;
    const char       *s, *want;

    s = "event: a\ndata: 1\n\n: comment\r\ndata: x\r\ndata: y\r\n\r\n"
        "data:z\rdata:  w\r\revent: last\ndata: [DONE]\n\n"
        "data\n\nevent\ndata:q\n\nretry: 5\ndata: tail";
    want = "[a|1][|x\ny][|z\n w][last|[DONE]][|][|q][|tail]";

    for (i = 0; i <= strlen(s); i++) {
        if (strcmp(parse_split_stream(s, i, &st), want) != 0) {
            break;
        }
    }

    is_int(i, strlen(s) + 1, "sse stream: the same events split at every"
           " byte");
    is_str(parse_split_stream(s, 0, &st), want, "sse stream: LF, CRLF, CR,"
           " comments, fields without a colon");

    /* a 4 MB delta, then the usage chunk: found, nothing kept */
    n = 4 * 1024 * 1024;
    big = malloc(n + 512);
    p = big;
    p += sprintf(p, "data: {\"choices\":[{\"delta\":{\"content\":\"");
    memset(p, 'x', n);
    p += n;
    p += sprintf(p, "\"}}]}\n\ndata: {\"choices\":[],\"usage\":"
                 "{\"prompt_tokens\":7,\"completion_tokens\":9}}\n\n");

    memset(&u, 0, sizeof(tg_usage_t));
    scan_u = &u;
    tg_usage_scan_init(&scan, TG_API_CHAT, 1);
    tg_sse_init_stream(&sse, on_scan_data);

    for (i = 0; i < (size_t) (p - big); i += 1000) {
        n = (size_t) (p - big) - i < 1000 ? (size_t) (p - big) - i : 1000;
        tg_sse_feed(&sse, big + i, n, on_scan_event, &scan);
    }

    tg_sse_finish(&sse, on_scan_event, &scan);
    tg_usage_scan_free(&scan);
    free(big);

    ok(u.input == 7 && u.output == 9, "usage: behind a 4 MB event,"
       " streamed");
}


typedef struct {
    tg_api_e     api;
    tg_usage_t  *u;
} usage_ctx_t;


static void
on_usage(void *data, const char *event, size_t elen, const char *payload,
    size_t len)
{
    (void) event;
    (void) elen;

    usage_ctx_t  *c = data;

    tg_usage_from_event(c->api, payload, len, c->u);
}


/* the stream cut in two at every byte gives the same usage */
static int
usage_every_split(tg_api_e api, const char *stream, tg_usage_t *want)
{
    size_t       at, len;
    tg_sse_t     sse;
    tg_usage_t   u;
    usage_ctx_t  c;

    len = strlen(stream);

    for (at = 0; at <= len; at++) {
        memset(&u, 0, sizeof(tg_usage_t));
        c.api = api;
        c.u = &u;

        tg_sse_init(&sse, 1 << 20);
        tg_sse_feed(&sse, stream, at, on_usage, &c);
        tg_sse_feed(&sse, stream + at, len - at, on_usage, &c);
        tg_sse_finish(&sse, on_usage, &c);
        tg_sse_free(&sse);

        if (at == 0) {
            *want = u;
            continue;
        }

        if (memcmp(&u, want, sizeof(tg_usage_t)) != 0) {
            return (int) at;
        }
    }

    return 0;
}


static tg_usage_t
body(tg_api_e api, const char *json, int whole)
{
    tg_usage_t  u;

    memset(&u, 0, sizeof(tg_usage_t));
    tg_usage_from_body(api, json, strlen(json), whole, &u);

    return u;
}


static void
on_count(void *data, const char *event, size_t elen, const char *payload,
    size_t len)
{
    (void) event;
    (void) elen;
    (void) payload;
    (void) len;

    (*(size_t *) data)++;
}


/* a chunk of CR-ended lines searched for an LF once per line: 25 s */
static void
sse_cr_only(void)
{
    char      *b;
    size_t     i, n, events;
    clock_t    t;
    tg_sse_t   sse;

    n = 4 * 1024 * 1024;

    b = malloc(n);
    if (b == NULL) {
        return;
    }

    for (i = 0; i < n; i += 8) {
        memcpy(b + i, "data:x\r\r", 8);
    }

    events = 0;
    tg_sse_init(&sse, 1 << 20);
    t = clock();
    tg_sse_feed(&sse, b, n, on_count, &events);

    ok(events == n / 8 && clock() - t < CLOCKS_PER_SEC,
       "sse: CR-only lines in one large chunk are linear");

    tg_sse_free(&sse);
    free(b);
}


/*
 * A tail of 25000 nested "usage" objects took each key as a start and
 * parsed the rest of the body from there: 14 s of a worker's CPU.
 */
static void
nested_usage(void)
{
    int          i, n;
    char        *b, *p;
    clock_t      t;
    tg_usage_t   u;

    n = 25000;

    b = malloc(n * 10 + 64);
    if (b == NULL) {
        return;
    }

    p = b;

    for (i = 0; i < n; i++) {
        memcpy(p, "{\"usage\":", 9);
        p += 9;
    }

    *p++ = '1';
    memset(p, '}', n);
    p += n;

    memset(&u, 0, sizeof(tg_usage_t));
    t = clock();

    ok(tg_usage_from_body(TG_API_CHAT, b, p - b, 1, &u) == 0
       && clock() - t < 2 * CLOCKS_PER_SEC,
       "usage: nested \"usage\" keys are not quadratic");

    free(b);

    /* a "\u0000" in a string of the usage object costs no count */
    u = body(TG_API_GENERATE, "{\"usageMetadata\":{\"promptTokenCount\":7,"
             "\"candidatesTokenCount\":5,\"note\":\"a\\u0000b\"}}", 1);
    ok(u.has_input && u.input == 7 && u.has_output && u.output == 5,
       "usage: read with a \\u0000 in one of its strings");

    /* a body cut short is never believed, whatever its tail holds */
    u = body(TG_API_CHAT, "{\"usage\":{\"prompt_tokens\":3,"
             "\"completion_tokens\":4},\"x\":{\"usage\":null},"
             "\"usage\":{},\"usage\":\"cut", 1);
    ok(!u.has_input && !u.has_output, "usage: not from a body cut short");

    /* an echoed tool schema holds a "usage" object, the body is cut */
    u = body(TG_API_RESPONSES, "{\"tools\":[{\"parameters\":{\"properties\":"
             "{\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}}],"
             "\"output\":[", 1);
    ok(!u.has_input && !u.has_output, "usage: not from an echoed schema");

    /* the same, whole: only the top-level usage counts */
    u = body(TG_API_RESPONSES, "{\"usage\":{\"input_tokens\":50,"
             "\"output_tokens\":60},\"tools\":[{\"parameters\":"
             "{\"properties\":{\"usage\":{\"input_tokens\":1,"
             "\"output_tokens\":1}}}}]}", 1);
    ok(u.input == 50 && u.output == 60 && !u.background,
       "usage: the top-level usage, not the echoed one after it");

    u = body(TG_API_RESPONSES, "{\"id\":\"resp_1\",\"status\":\"queued\","
             "\"background\":true,\"usage\":null}", 1);
    ok(u.background && !u.has_input, "usage: a background response");
}


/* the model the response names (gen_ai.response.model), every dialect */
static void
response_model(void)
{
    tg_usage_t   u, want;
    const char  *s;

    u = body(TG_API_CHAT, "{\"model\":\"gpt-4o-2024-08-06\",\"choices\":"
             "[{\"message\":{\"content\":\"{\\\"model\\\":\\\"x\\\"}\"}}],"
             "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}", 1);
    is_str(u.model, "gpt-4o-2024-08-06", "usage: chat body names its model");

    u = body(TG_API_CHAT, "{\"choices\":[{\"message\":{\"model\":\"y\"}}]}",
             1);
    is_str(u.model, "", "usage: a nested model is not the response's");

    u = body(TG_API_CHAT, "{\"model\":\"a\\nb\",\"usage\":{}}", 1);
    is_str(u.model, "", "usage: an escaped model name is not kept");

    u = body(TG_API_CHAT, "{\"model\":\"gpt-4o\",\"usage\":{", 1);
    is_str(u.model, "", "usage: not from a body cut short");

    u = body(TG_API_MESSAGES, "{\"model\":\"claude-sonnet-4-5-20250929\","
             "\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}", 1);
    is_str(u.model, "claude-sonnet-4-5-20250929", "usage: messages body");

    u = body(TG_API_RESPONSES, "{\"model\":\"o3-2025-04-16\",\"usage\":"
             "{\"input_tokens\":3,\"output_tokens\":4}}", 1);
    is_str(u.model, "o3-2025-04-16", "usage: responses body");

    u = body(TG_API_GENERATE, "{\"modelVersion\":\"gemini-2.5-flash\","
             "\"usageMetadata\":{\"promptTokenCount\":1}}", 1);
    is_str(u.model, "gemini-2.5-flash", "usage: gemini body");

    u = body(TG_API_GENERATE, "[{\"modelVersion\":\"gemini-2.5-pro\"},"
             "{\"usageMetadata\":{\"promptTokenCount\":1}}]", 1);
    is_str(u.model, "gemini-2.5-pro", "usage: gemini JSON-array stream");

    s = "data: {\"type\":\"message_start\",\"message\":{\"model\":"
        "\"claude-haiku-4-5\",\"usage\":{\"input_tokens\":5,"
        "\"output_tokens\":1}}}\n\n"
        "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}"
        "\n\n";
    is_int(usage_every_split(TG_API_MESSAGES, s, &want), 0,
           "usage: messages stream model, split anywhere");
    is_str(want.model, "claude-haiku-4-5", "usage: messages stream model");

    s = "data: {\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{}]}\n\n"
        "data: {\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[],"
        "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n";
    is_int(usage_every_split(TG_API_CHAT, s, &want), 0,
           "usage: chat stream model, split anywhere");
    is_str(want.model, "gpt-4o-mini-2024-07-18", "usage: chat stream model");

    s = "data: {\"type\":\"response.completed\",\"response\":{\"model\":"
        "\"gpt-5\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}}\n\n";
    is_int(usage_every_split(TG_API_RESPONSES, s, &want), 0,
           "usage: responses stream model, split anywhere");
    is_str(want.model, "gpt-5", "usage: responses stream model");

    s = "data: {\"modelVersion\":\"gemini-2.0-flash\",\"candidates\":"
        "[{\"finishReason\":\"STOP\"}],\"usageMetadata\":"
        "{\"promptTokenCount\":1,\"candidatesTokenCount\":2}}\n\n";
    is_int(usage_every_split(TG_API_GENERATE, s, &want), 0,
           "usage: gemini stream model, split anywhere");
    is_str(want.model, "gemini-2.0-flash", "usage: gemini stream model");
}


/* usage objects of every dialect and shape, and some that are no usage */
static const char *const  usage_shapes[] = {
    "{\"prompt_tokens\":100,\"completion_tokens\":40,\"total_tokens\":140,"
    "\"prompt_tokens_details\":{\"cached_tokens\":10,\"audio_tokens\":30,"
    "\"cache_write_tokens\":5},\"completion_tokens_details\":"
    "{\"reasoning_tokens\":20,\"audio_tokens\":15,"
    "\"accepted_prediction_tokens\":0}}",

    "{\"input_tokens\":100,\"output_tokens\":40,\"input_tokens_details\":"
    "{\"cached_tokens\":80,\"cache_write_tokens\":3},"
    "\"output_tokens_details\":{\"reasoning_tokens\":25},"
    "\"total_tokens\":140}",

    "{\"input_tokens\":10,\"cache_read_input_tokens\":20,"
    "\"cache_creation_input_tokens\":30,\"cache_creation\":"
    "{\"ephemeral_5m_input_tokens\":10,\"ephemeral_1h_input_tokens\":20},"
    "\"output_tokens\":50,\"server_tool_use\":{\"web_search_requests\":2},"
    "\"output_tokens_details\":{\"thinking_tokens\":7},"
    "\"service_tier\":\"standard\"}",

    "{\"promptTokenCount\":100,\"toolUsePromptTokenCount\":7,"
    "\"cachedContentTokenCount\":40,\"candidatesTokenCount\":30,"
    "\"thoughtsTokenCount\":20,\"promptTokensDetails\":["
    "{\"modality\":\"TEXT\",\"tokenCount\":50},"
    "{\"modality\":\"AUDIO\",\"tokenCount\":30},"
    "{\"modality\":\"IMAGE\",\"tokenCount\":15},"
    "{\"modality\":\"DOCUMENT\",\"tokenCount\":5},"
    "{\"modality\":\"VIDEO\",\"tokenCount\":4}],"
    "\"toolUsePromptTokensDetails\":[{\"modality\":\"IMAGE\","
    "\"tokenCount\":2}],\"cacheTokensDetails\":[{\"modality\":\"AUDIO\","
    "\"tokenCount\":12},{\"modality\":\"VIDEO\",\"tokenCount\":1}],"
    "\"candidatesTokensDetails\":[{\"modality\":\"AUDIO\",\"tokenCount\":7},"
    "{\"modality\":\"IMAGE\",\"tokenCount\":3}],\"trafficType\":\"ON_DEMAND\"}",

    "{\"promptTokenCount\":0,\"candidatesTokenCount\":0,"
    "\"promptTokensDetails\":[{\"modality\":\"AUDIO\"},"
    "{\"modality\":\"AUDIO\",\"tokenCount\":5},{\"tokenCount\":3},7,\"x\","
    "{\"modality\":\"IMAGE\",\"tokenCount\":\"9\"},{\"modality\":\"IMAGE\","
    "\"modality\":\"VIDEO\",\"tokenCount\":6}],\"thoughtsTokenCount\":3}",

    "{\"candidatesTokenCount\":4,\"cachedContentTokenCount\":2}",
    "{\"promptTokenCount\":9}",
    "{\"promptTokenCount\":9,\"promptTokenCount\":true,"
    "\"candidatesTokenCount\":1}",

    "{\"prompt_tokens\":1,\"prompt_tokens\":2,\"completion_tokens\":3,"
    "\"completion_tokens\":\"x\",\"prompt_tokens_details\":"
    "{\"cached_tokens\":9},\"prompt_tokens_details\":{\"audio_tokens\":4},"
    "\"input_tokens\":5,\"input_tokens\":6,\"cache_creation\":{},"
    "\"cache_creation\":7}",

    "{\"prompt_tokens\":true,\"completion_tokens\":null,\"input_tokens\":"
    "[1],\"output_tokens\":{\"a\":1},\"prompt_tokens_details\":"
    "[{\"cached_tokens\":1}],\"cache_read_input_tokens\":false}",

    "{\"prompt_tokens\":999999999999999,\"completion_tokens\":"
    "1000000000000,\"input_tokens\":1000000000001,\"output_tokens\":0,"
    "\"promptTokenCount\":1000000000000,\"thoughtsTokenCount\":"
    "999999999999}",

    "{\"prompt_tokens\":5,\"prompt_tokens_details\":{\"cached_tokens\":9},"
    "\"input_tokens\":5,\"input_tokens_details\":{\"cached_tokens\":9},"
    "\"cache_read_input_tokens\":9,\"promptTokenCount\":5,"
    "\"cachedContentTokenCount\":9}",

    " { \"prompt_tokens\" : 7 ,\n\t\"completion_tokens\":8\r,"
    "\"prompt_tokens_details\" :\t{ \"cached_tokens\" : 1 } } ",

    "{}",
    "{\"prompt_tokens\":8,\"total_tokens\":8}",
    "{\"a\":{\"b\":{\"c\":[[[[1]]],[],{}]}},\"prompt_tokens\":3,"
    "\"\":0,\"completion_tokens\":0}",
    "[1,2]",
    "12",
    "\"usage\"",
    "null",
    NULL
};


/* the bytes a shape is mutated to, one at a time ('\0': deleted) */
static const char  usage_mutations[] = "09-.eE\"}],:{[ntx \\\001\303";


/* a usage object in a document of each kind */
static void
usage_doc(char *out, size_t size, int doc, const char *usage, size_t len)
{
    static const char *const  docs[][2] = {
        { "{\"choices\":[],\"usage\":", "}" },
        { "{\"usageMetadata\":", "}" },
        { "{\"type\":\"response.completed\",\"response\":{\"usage\":", "}}" },
        { "{\"type\":\"message_start\",\"message\":{\"usage\":", "}}" },
        { "{\"type\":\"message_delta\",\"usage\":", "}" },
        { "[{\"usageMetadata\":{}},{\"usageMetadata\":", "}]" },
    };

    snprintf(out, size, "%s%.*s%s", docs[doc][0], (int) len, usage,
             docs[doc][1]);
}


/*
 * The first key's first letter as an escape: the same document, read
 * through the decoding path.  0 if there is none.
 */
static int
usage_escaped(const char *s, size_t len, char *out, size_t size)
{
    char        c;
    const char *q;

    q = memchr(s, '"', len);

    if (q == NULL || (size_t) (q - s) + 1 >= len || len + 6 > size) {
        return 0;
    }

    c = q[1];

    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')) {
        return 0;
    }

    snprintf(out, size, "%.*s\\u%04x%.*s", (int) (q + 1 - s), s,
             (unsigned) c, (int) (len - (q + 2 - s)), q + 2);

    return 1;
}


static const tg_api_e  usage_apis[] = {
    TG_API_CHAT, TG_API_COMPLETIONS, TG_API_RESPONSES, TG_API_EMBEDDINGS,
    TG_API_MESSAGES, TG_API_GENERATE, TG_API_NONE
};


/* every api, as a body and as an event: 0 if both ways agree */
static int
usage_same(const char *usage, size_t len)
{
    int         d, found, efound;
    size_t      a, n, elen;
    char        esc[1024], doc[1200], edoc[1200];
    tg_api_e    api;
    tg_usage_t  u, eu;

    if (!usage_escaped(usage, len, esc, sizeof(esc))) {
        return 0;
    }

    elen = strlen(esc);

    for (a = 0; a < sizeof(usage_apis) / sizeof(usage_apis[0]); a++) {
        api = usage_apis[a];

        for (d = 0; d < 6; d++) {
            usage_doc(doc, sizeof(doc), d, usage, len);
            usage_doc(edoc, sizeof(edoc), d, esc, elen);

            /* what an earlier event left, to be kept or replaced */
            memset(&u, 0x11, sizeof(tg_usage_t));
            u.has_input = 0;
            u.has_output = 1;
            u.background = 0;
            strcpy(u.model, "m");
            eu = u;

            n = strlen(doc);
            found = tg_usage_from_body(api, doc, n, 1, &u);
            efound = tg_usage_from_body(api, edoc, strlen(edoc), 1, &eu);

            if (found != efound || memcmp(&u, &eu, sizeof(tg_usage_t)) != 0) {
                return 1;
            }

            if (d != 5) {
                /* the same document as a stream's event, after the body */
                tg_usage_from_event(api, doc, n, &u);
                tg_usage_from_event(api, edoc, strlen(edoc), &eu);
            }

            if (memcmp(&u, &eu, sizeof(tg_usage_t)) != 0) {
                return 1;
            }
        }
    }

    return 0;
}


/*
 * Every usage shape, and every byte of the first ones changed or deleted:
 * the counts are the same when a key is escaped, in every dialect, as a
 * body and as an event
 */
static void
usage_escape_differential(void)
{
    char         m[1024];
    size_t       i, j, k, len, n, same, diff;
    const char  *s;

    same = 0;
    diff = 0;

    for (i = 0; usage_shapes[i] != NULL; i++) {
        s = usage_shapes[i];
        len = strlen(s);

        diff += usage_same(s, len);
        same++;

        for (j = 0; i < 12 && j < len; j++) {
            for (k = 0; k < sizeof(usage_mutations); k++) {
                if (k % 3 != 0 && usage_mutations[k] != '\0') {
                    continue;
                }

                memcpy(m, s, len);

                if (usage_mutations[k] == '\0') {
                    memmove(m + j, m + j + 1, len - j - 1);
                    n = len - 1;

                } else {
                    m[j] = usage_mutations[k];
                    n = len;
                }

                diff += usage_same(m, n);
                same++;
            }
        }
    }

    is_int(diff, 0, "usage: the same counts with a key escaped, in every"
           " dialect, body and event");
    ok(same > 1000, "usage: %zu usage objects compared", same);
}


void
test_usage(void)
{
    size_t       i;
    events_t     e;
    tg_usage_t   u;
    const char  *s, *want;

    test_usage_stream();

    s = "event: a\ndata: 1\n\n: comment\r\ndata: x\r\ndata: y\r\n\r\n"
        "data:z\rdata:  w\r\revent: last\ndata: [DONE]\n\n";
    want = "[a|1][|x\ny][|z\n w][last|[DONE]]";

    for (i = 0; i <= strlen(s); i++) {
        if (strcmp(parse_split(s, i, &e), want) != 0) {
            break;
        }
    }

    is_int(i, strlen(s) + 1, "sse: the same events split at every byte");
    is_str(parse_split(s, 0, &e), want, "sse: LF, CRLF, CR, comments,"
           " multi-line data");
    is_str(parse_split("data: tail", 3, &e), "[|tail]",
           "sse: an event without its final blank line is kept");
    is_str(parse_split("event: x\n\ndata: y\n\n", 0, &e), "[|y]",
           "sse: an event with no data is not dispatched, its name reset");

    {
        tg_sse_t  sse;

        memset(&e, 0, sizeof(e));
        tg_sse_init(&sse, 16);
        tg_sse_feed(&sse, "data: this line is far too long\n\ndata: ok\n\n",
                    44, on_event, &e);
        tg_sse_free(&sse);
        is_str(e.log, "[|ok]", "sse: an event over the limit is dropped,"
               " the next one kept");
    }

    /* OpenAI chat stream: usage on a final chunk that still has choices */
    s = "data: {\"choices\":[{\"delta\":{\"content\":\"usage is\"}}],"
        "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n"
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":12,"
        "\"completion_tokens\":30,\"prompt_tokens_details\":"
        "{\"cached_tokens\":4},\"completion_tokens_details\":"
        "{\"reasoning_tokens\":10}}}\n\ndata: [DONE]\n\n";
    is_int(usage_every_split(TG_API_CHAT, s, &u), 0,
           "usage: openai chat stream split at every byte");
    ok(u.has_input && u.has_output && u.input == 12 && u.output == 30
       && u.cached == 4, "usage: openai chat stream: 12 in (4 cached),"
       " 30 out (reasoning included)");

    s = "event: response.created\ndata: {\"type\":\"response.created\","
        "\"response\":{\"usage\":null}}\n\n"
        "event: response.completed\ndata: {\"type\":\"response.completed\","
        "\"response\":{\"usage\":{\"input_tokens\":100,\"output_tokens\":"
        "50,\"input_tokens_details\":{\"cached_tokens\":80}}}}\n\n";
    is_int(usage_every_split(TG_API_RESPONSES, s, &u), 0,
           "usage: responses stream split at every byte");
    ok(u.input == 100 && u.output == 50 && u.cached == 80,
       "usage: responses stream from response.completed");

    s = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
        "{\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":200,"
        "\"cache_creation_input_tokens\":30,\"output_tokens\":1}}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
        "\"delta\":{\"text\":\"hi\"}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":"
        "{\"output_tokens\":77}}\n\n";
    is_int(usage_every_split(TG_API_MESSAGES, s, &u), 0,
           "usage: anthropic stream split at every byte");
    ok(u.input == 240 && u.cached == 200 && u.cache_write == 30
       && u.output == 77, "usage: anthropic: input from message_start (all"
       " of it), output from the cumulative message_delta");

    /* cut before message_delta: the output is not known, not 1 */
    s = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
        "{\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
        "\"delta\":{\"text\":\"hi\"}}\n\n";
    is_int(usage_every_split(TG_API_MESSAGES, s, &u), 0,
           "usage: anthropic stream cut short");
    ok(u.has_input && u.input == 10 && !u.has_output,
       "usage: anthropic: message_start's output_tokens is no count");

    s = "data: {\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":9}}"
        "\r\n\r\ndata: {\"usageMetadata\":{\"promptTokenCount\":9,"
        "\"candidatesTokenCount\":20,\"thoughtsTokenCount\":5,"
        "\"cachedContentTokenCount\":3}}\r\n\r\n";
    is_int(usage_every_split(TG_API_GENERATE, s, &u), 0,
           "usage: gemini stream split at every byte");
    ok(u.input == 9 && u.output == 25 && u.cached == 3,
       "usage: gemini: the last chunk, thoughts counted as output");

    u = body(TG_API_CHAT, "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
             "\"completion_tokens\":6}}", 1);
    ok(u.input == 5 && u.output == 6, "usage: openai JSON body");

    u = body(TG_API_EMBEDDINGS, "{\"data\":[],\"usage\":{\"prompt_tokens\":8,"
             "\"total_tokens\":8}}", 1);
    ok(u.has_output && u.input == 8 && u.output == 0,
       "usage: embeddings have no output");

    u = body(TG_API_MESSAGES, "{\"content\":[],\"usage\":{\"input_tokens\":3,"
             "\"output_tokens\":4}}", 1);
    ok(u.input == 3 && u.output == 4, "usage: anthropic JSON body");

    u = body(TG_API_GENERATE, "[{\"usageMetadata\":{\"promptTokenCount\":1}},"
             "{\"usageMetadata\":{\"promptTokenCount\":2,"
             "\"candidatesTokenCount\":3}}]", 1);
    ok(u.input == 2 && u.output == 3, "usage: gemini JSON array stream");

    u = body(TG_API_CHAT, "ed, long text\",\"role\":\"assistant\"}}],"
             "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6}}", 0);
    ok(!u.has_input && !u.has_output, "usage: never from a body's tail");

    u = body(TG_API_CHAT, "{\"choices\":[{\"message\":{\"content\":"
             "\"the \\\"usage\\\": {\\\"prompt_tokens\\\": 99}\"}}],"
             "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6}}", 1);
    ok(u.input == 5 && u.output == 6, "usage: a quoted \"usage\" in the"
       " text is not taken");

    u = body(TG_API_CHAT, "{\"choices\":[{\"message\":{\"content\":\"x\"}}]}",
             1);
    ok(!u.has_input && !u.has_output, "usage: none in the body");

    u = body(TG_API_CHAT, "{\"usage\":{\"prompt_tokens\":-1,"
             "\"completion_tokens\":\"x\"}}", 1);
    ok(!u.has_input && !u.has_output, "usage: wrong types are ignored");

    /* fuzz: huge counts were cast and summed past int64_t */
    u = body(TG_API_CHAT, "{\"usage\":{\"prompt_tokens\":1e300,"
             "\"completion_tokens\":7}}", 1);
    ok(!u.has_input && u.has_output && u.output == 7,
       "usage: a count over a trillion is ignored");

    u = body(TG_API_MESSAGES, "{\"usage\":{\"input_tokens\":9e18,"
             "\"cache_read_input_tokens\":9e18,\"output_tokens\":1}}", 1);
    ok(u.input == 0 && u.cached == 0 && u.output == 1,
       "usage: anthropic parts over a trillion do not overflow the sum");

    u = body(TG_API_GENERATE, "{\"usageMetadata\":{\"promptTokenCount\":"
             "1000000000000,\"toolUsePromptTokenCount\":9e18,"
             "\"candidatesTokenCount\":2,\"thoughtsTokenCount\":9e18}}", 1);
    ok(u.input == 1000000000000LL && u.output == 2,
       "usage: gemini sums take counts up to a trillion");

    /* every unit a price can name, as each dialect reports it */
    s = "event: message_start\ndata: {\"type\":\"message_start\","
        "\"message\":{\"usage\":{\"input_tokens\":10,"
        "\"cache_read_input_tokens\":20,\"cache_creation_input_tokens\":"
        "30,\"cache_creation\":{\"ephemeral_5m_input_tokens\":10,"
        "\"ephemeral_1h_input_tokens\":20},\"output_tokens\":1}}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\","
        "\"usage\":{\"output_tokens\":50,\"server_tool_use\":"
        "{\"web_search_requests\":2}}}\n\n";
    is_int(usage_every_split(TG_API_MESSAGES, s, &u), 0,
           "usage: anthropic cache TTLs and searches split at every byte");
    ok(u.input == 60 && u.cached == 20 && u.cache_write == 30
       && u.cache_write_5m == 10 && u.cache_write_1h == 20
       && u.web_searches == 2 && u.output == 50,
       "usage: anthropic: writes by TTL, web searches from message_delta");

    u = body(TG_API_CHAT, "{\"usage\":{\"prompt_tokens\":100,"
             "\"completion_tokens\":40,\"prompt_tokens_details\":"
             "{\"cached_tokens\":10,\"audio_tokens\":30,"
             "\"cache_write_tokens\":5},\"completion_tokens_details\":"
             "{\"reasoning_tokens\":20,\"audio_tokens\":15}}}", 1);
    ok(u.input == 100 && u.cached == 10 && u.input_audio == 30
       && u.cache_write == 5 && u.output == 40 && u.reasoning == 20
       && u.output_audio == 15, "usage: openai chat audio and reasoning");

    u = body(TG_API_RESPONSES, "{\"usage\":{\"input_tokens\":100,"
             "\"output_tokens\":40,\"output_tokens_details\":"
             "{\"reasoning_tokens\":25}}}", 1);
    ok(u.output == 40 && u.reasoning == 25, "usage: responses reasoning");

    u = body(TG_API_GENERATE, "{\"usageMetadata\":{\"promptTokenCount\":"
             "100,\"cachedContentTokenCount\":40,\"candidatesTokenCount\":"
             "30,\"thoughtsTokenCount\":20,\"promptTokensDetails\":["
             "{\"modality\":\"TEXT\",\"tokenCount\":50},"
             "{\"modality\":\"AUDIO\",\"tokenCount\":30},"
             "{\"modality\":\"IMAGE\",\"tokenCount\":15},"
             "{\"modality\":\"DOCUMENT\",\"tokenCount\":5}],"
             "\"cacheTokensDetails\":[{\"modality\":\"AUDIO\","
             "\"tokenCount\":12}],\"candidatesTokensDetails\":["
             "{\"modality\":\"AUDIO\",\"tokenCount\":7}]}}", 1);
    ok(u.input == 100 && u.cached == 40 && u.input_audio == 30
       && u.input_image == 20 && u.cache_audio_read == 12
       && u.output == 50 && u.reasoning == 20 && u.output_audio == 7,
       "usage: gemini modalities, thoughts as output and as reasoning");

    u = body(TG_API_GENERATE, "{\"usageMetadata\":{\"promptTokenCount\":"
             "9,\"promptTokensDetails\":[{\"modality\":\"AUDIOX\","
             "\"tokenCount\":5},{\"modality\":\"AUDI\",\"tokenCount\":4},"
             "{\"modality\":\"AUDIO\",\"tokenCount\":3},"
             "{\"modality\":\"AUDIO\",\"tokenCount\":2}]}}", 1);
    ok(u.input == 9 && u.input_audio == 3, "usage: gemini: the first part"
       " of exactly that modality");

    nested_usage();
    sse_cr_only();
    response_model();
    usage_escape_differential();
}
