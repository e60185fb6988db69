/* the streaming JSON scan's shortcuts: spans, kept runs, path masks */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tg_jscan.h"
#include "tg_usage.h"


static size_t
span_slow(const char *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len && p[i] != '"' && p[i] != '\\'; i++) {
        /* void */
    }

    return i;
}


static void
jscan_span(void)
{
    int            same_fast, same_portable;
    size_t         len, at, want;
    unsigned int   b;
    char           buf[80];

    same_fast = 1;
    same_portable = 1;

    /* every byte value at every place of a run, any length */
    for (b = 0; b < 256; b++) {
        for (len = 0; len <= 40; len++) {
            for (at = 0; at <= len && at < 40; at++) {
                memset(buf, 'a', sizeof(buf));
                buf[at] = (char) b;
                /* what follows: a stop, or a byte that borrows */
                buf[at + 1] = (char) (b & 1 ? '\\' : 0x01);

                want = span_slow(buf, len);

                if (tg_jscan_span(buf, len) != want) {
                    same_fast = 0;
                }

                if (tg_jscan_span_portable(buf, len) != want) {
                    same_portable = 0;
                }
            }
        }
    }

    ok(same_fast, "jscan: the SSE2 span stops where it must");
    ok(same_portable, "jscan: the portable span stops where it must");
}


static const char *const  paths[] = {
    "usage", "type", "choices.*", "choices.*.finish_reason", NULL
};
static const size_t       paths_max[] = { 128, 32, 0, 16 };


/* the scan fed in pieces of n bytes (0: whole); "kept" values out */
static void
scan(const char *doc, size_t len, size_t n, char *out, size_t size)
{
    size_t       i, k, vlen;
    size_t       o;
    const char  *v;
    tg_jscan_t   js;

    tg_jscan_init(&js, paths, paths_max);

    for (i = 0; i < len; i += k) {
        k = (n == 0 || len - i < n) ? len - i : n;
        tg_jscan_feed(&js, doc + i, k);
    }

    o = snprintf(out, size, "%d%d", js.done, js.bad);

    for (i = 0; i < js.nslots; i++) {
        v = tg_jscan_value(&js, i, &vlen);
        o += snprintf(out + o, size - o, "|%d:%.*s", js.slot[i].seen,
                      v ? (int) vlen : 4, v ? v : "none");
    }

    tg_jscan_free(&js);
}


static void
scan_str(const char *doc, size_t n, char *out, size_t size)
{
    scan(doc, strlen(doc), n, out, size);
}


/*
 * A kept value's buffer starts small and grows: values of every size up
 * to the bound are kept byte for byte, in pieces of any size, and again
 * after a reset (which keeps the grown buffer)
 */
static void
jscan_grow(void)
{
    int          same;
    char        *doc;
    size_t       i, n, len, vlen, sizes[] = { 3, 511, 512, 513, 1500, 4096,
                                              5000 };
    const char  *v;
    tg_jscan_t   js;

    static const char *const  grow_paths[] = { "usage", NULL };
    static const size_t       grow_max[] = { 5000 };

    doc = malloc(6000);
    same = doc != NULL;

    tg_jscan_init(&js, grow_paths, grow_max);

    for (i = 0; same && i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (n = 1; n <= 4096; n *= 8) {
            /* "usage":"xxx...", its value sizes[i] bytes with the quotes */
            len = snprintf(doc, 6000, "{\"usage\":\"%0*d\"}",
                           (int) sizes[i] - 2, 0);
            tg_jscan_reset(&js);
            tg_jscan_feed(&js, doc, 1);

            for (vlen = 1; vlen < len; vlen += n) {
                tg_jscan_feed(&js, doc + vlen,
                              len - vlen < n ? len - vlen : n);
            }

            v = tg_jscan_value(&js, 0, &vlen);

            if (v == NULL || vlen != sizes[i]
                || memcmp(v, doc + 9, vlen) != 0 || !js.done || js.bad)
            {
                printf("# %zu bytes in pieces of %zu: %s\n", sizes[i], n,
                       v ? "differs" : "not kept");
                same = 0;
            }
        }
    }

    ok(same, "jscan: values up to the bound kept whole as the buffer grows,"
       " fed in pieces, after resets");

    len = snprintf(doc, 6000, "{\"usage\":\"%0*d\"}", 5001 - 2, 0);
    tg_jscan_reset(&js);
    tg_jscan_feed(&js, doc, len);
    ok(tg_jscan_value(&js, 0, &vlen) == NULL && js.slot[0].seen
       && js.slot[0].size <= 5000,
       "jscan: one byte over the bound: seen, not kept, no buffer over it");

    tg_jscan_free(&js);
    free(doc);
}


static void
jscan_split(void)
{
    int          same;
    size_t       at, n, len;
    char         doc[512], want[1024], got[1024];

    /*
     * An escaped quote and backslash at every place of a 16-byte block:
     * the string goes on, nothing in it is a key, the usage after it is
     * kept byte for byte, fed whole or in pieces of every size.
     */
    same = 1;

    for (at = 0; at < 40; at++) {
        len = snprintf(doc, sizeof(doc),
                       "{\"text\":\"%.*s\\\",\\\"usage\\\":{\\\\\\\"x\\\"}\","
                       "\"type\" : \"delta\",\"choices\":[{\"finish_reason\":"
                       "null}],\"usage\":{\"prompt_tokens\":12,"
                       "\"s\":\"}\\\"{\"} }",
                       (int) at, "abcdefghijklmnopqrstuvwxyzabcdefghijklmn");

        scan(doc, len, 0, want, sizeof(want));

        if (strcmp(want, "10|1:{\"prompt_tokens\":12,\"s\":\"}\\\"{\"}"
                   "|1:\"delta\"|1:none|1:null") != 0)
        {
            printf("# %s\n", want);
            same = 0;
        }

        for (n = 1; n < len; n++) {
            scan(doc, len, n, got, sizeof(got));

            if (strcmp(got, want) != 0) {
                printf("# at %zu, pieces of %zu: %s\n", at, n, got);
                same = 0;
            }
        }
    }

    ok(same, "jscan: strings with escapes at every place, kept values,"
       " whole and in pieces of every size");

    /* a kept value of exactly its bound is whole, one byte more is not */
    len = snprintf(doc, sizeof(doc), "{\"type\":\"%030d\"}", 0);
    scan(doc, len, 7, got, sizeof(got));
    ok(strstr(got, "|1:\"000000000000000000000000000000\"|") != NULL,
       "jscan: a value of its bound is kept");

    len = snprintf(doc, sizeof(doc), "{\"type\":\"%031d\"}", 0);
    scan(doc, len, 7, got, sizeof(got));
    ok(strstr(got, "|1:none|") != NULL && got[0] == '1',
       "jscan: a value over its bound is seen, not kept");

    /* a scalar kept ends before the byte that ends it */
    scan_str("{\"type\":12345 ,\"usage\":true}", 3, got, sizeof(got));
    is_str(got, "10|1:true|1:12345|0:none|0:none",
           "jscan: scalars kept without what ends them");

    /* keys that only look like a path's: escaped, longer, at depth 2 */
    scan_str("{\"us\\u0061ge\":1,\"usage_\":2,\"x\":{\"usage\":3},"
         "\"usagexxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\":4,\"choices\":{\"*\":"
         "{\"finish_reason\":5}}}", 5, got, sizeof(got));
    is_str(got, "10|0:none|0:none|1:none|1:5",
           "jscan: only keys of a path match (\"*\" matches an object's"
           " key \"*\" as before)");

    /* escaped and long keys deeper than a path goes (ASan: no overread) */
    scan_str("{\"choices\":[{\"c\\u0068oices\":0,\"fin\\u0069sh_reason\":1,"
             "\"finish_reason\""
             ":2,\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\":"
             "{\"\\u0069\":3}}]}", 5, got, sizeof(got));
    is_str(got, "10|0:none|0:none|1:none|1:2",
           "jscan: escaped and long keys below a path match nothing");

    /* the array's elements are at "*", nested arrays are not */
    scan_str("[{\"usage\":1}, {\"choices\":[[{\"finish_reason\":1}],"
         "{\"finish_reason\":\"stop\"}]}]", 4, got, sizeof(got));
    is_str(got, "10|0:none|0:none|0:none|0:none",
           "jscan: paths start at the root object");
}


/* what a model writes is text: usage-shaped output is never usage */
static void
jscan_text_is_not_usage(void)
{
    size_t       at;
    int          found;
    char         ev[512];
    tg_usage_t   u;

    found = 0;

    for (at = 0; at < 33; at++) {
        snprintf(ev, sizeof(ev),
                 "{\"choices\":[{\"delta\":{\"content\":\"%.*s\\\"},"
                 "\\\"usage\\\":{\\\"prompt_tokens\\\":1,"
                 "\\\"completion_tokens\\\":1}}\"},\"finish_reason\":null}]}",
                 (int) at, "data: {\"type\":\"message_delta\"}......");

        memset(&u, 0, sizeof(tg_usage_t));
        tg_usage_from_event(TG_API_CHAT, ev, strlen(ev), &u);
        found |= u.has_input || u.has_output;
    }

    ok(!found, "jscan: usage-shaped text in a delta is not usage, wherever"
       " its escapes fall in a block");
}


void
test_jscan(void)
{
    jscan_span();
    jscan_split();
    jscan_grow();
    jscan_text_is_not_usage();
}
