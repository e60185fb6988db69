#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tap.h"
#include "tg_json.h"


/* "ok", or the parser's error */
static const char *
parse(const char *s, int flags)
{
    tg_json_t            *v;
    tg_json_doc_t         doc;
    static char           out[80];

    v = tg_json_parse(&doc, s, strlen(s), flags);
    strcpy(out, v != NULL ? "ok" : doc.error);
    tg_json_free(&doc);

    return out;
}


void
test_json(void)
{
    tg_json_t      *v, *m, *e;
    size_t          i, len;
    char           *c;
    tg_json_doc_t   doc;
    const char     *s;

    /* input, flags, "ok" or the error, test name */
    static const struct {
        const char  *input;
        int          flags;
        const char  *want;
        const char  *name;
    } cases[] = {
        { "{\"a\":1,\"a\":2}", TG_JSON_REJECT_DUPLICATES,
          "duplicate object key", "json: duplicates refused when asked" },
        { "{\"a\":1,\"a\":2}", 0, "ok",
          "json: else the last wins" },
        { "\"\\u0000\"", 0, "\\u0000 is not allowed",
          "json: NUL refused by default" },
        { "\"\\u0000\"", TG_JSON_ALLOW_NUL, "ok",
          "json: NUL allowed when asked" },
        { "\"\xc3\x28\"", 0, "invalid UTF-8 in a string",
          "json: invalid UTF-8" },
        { "\"\xe0\x80\xaf\"", 0, "invalid UTF-8 in a string",
          "json: overlong UTF-8" },
        { "\"\xed\xa0\x80\"", 0, "invalid UTF-8 in a string",
          "json: an encoded surrogate" },
        { "\"\\ud800\"", 0, "invalid Unicode escape",
          "json: a lone high surrogate" },
        { "\"\\udc00\"", 0, "invalid Unicode escape",
          "json: a lone low surrogate" },
        { "\"a\tb\"", 0, "control character in a string",
          "json: a raw tab in a string" },
        { "01", 0, "invalid number",
          "json: leading zero" },
        { "01", TG_JSON_ONE_VALUE, "invalid number",
          "json: leading zero, one value" },
        { "truex", TG_JSON_ONE_VALUE, "invalid token",
          "json: a longer word" },
        { "true,", TG_JSON_ONE_VALUE, "ok",
          "json: one value, then a comma" },
        { "1.", 0, "invalid number",
          "json: 1." },
        { "-", 0, "invalid number",
          "json: -" },
        { "1e999", 0, "number out of range",
          "json: 1e999" },
        { "[1,]", 0, "invalid number",
          "json: trailing comma" },
        { "{\"a\" 1}", 0, "':' expected",
          "json: no colon" },
        { "{1:2}", 0, "a string key expected",
          "json: number key" },
        { "[1 2]", 0, "',' or ']' expected",
          "json: no comma" },
        { "tru", 0, "invalid token",
          "json: tru" },
        { "\"abc", 0, "unterminated string",
          "json: unterminated" },
        { "", 0, "unexpected end of input",
          "json: empty" },
        { "{} x", 0, "end of input expected",
          "json: trailing text" },
        { "{} x", TG_JSON_ONE_VALUE, "ok",
          "json: one value" },
    };

    s = " {\"a\" : [1, -2.5e1, \"x\\u00e9\\ud83d\\ude00\\n\", true, false,"
        " null, {}], \"b\": {\"c\": \"d\"}, \"a2\": 0} ";
    v = tg_json_parse(&doc, s, strlen(s), TG_JSON_REJECT_DUPLICATES);
    ok(tg_json_is_object(v) && v->count == 3, "json: an object of three");
    m = tg_json_get(v, "a");
    ok(tg_json_is_array(m) && tg_json_array_size(m) == 7, "json: an array");

    i = 0;
    tg_json_array_foreach(m, i, e) {
        if (i == 0) {
            ok(tg_json_is_number(e) && tg_json_number_value(e) == 1,
               "json: 1");
        } else if (i == 1) {
            ok(tg_json_is_number(e) && tg_json_number_value(e) == -25,
               "json: -2.5e1");
        } else if (i == 2) {
            is_str(e->str, "x\xc3\xa9\xf0\x9f\x98\x80\n",
                   "json: escapes and a surrogate pair decoded");
            is_int(e->len, 8, "json: decoded length");
        } else if (i == 3) {
            ok(tg_json_is_true(e), "json: true");
        } else if (i == 4) {
            ok(tg_json_is_boolean(e) && !tg_json_is_true(e), "json: false");
        } else if (i == 5) {
            ok(tg_json_is_null(e), "json: null");
        } else {
            ok(tg_json_is_object(e) && e->count == 0, "json: {}");
        }
    }

    is_int(i, 7, "json: seven elements visited");
    e = tg_json_get(tg_json_get(v, "b"), "c");
    ok(e->len == 1 && e->str[0] == 'd', "json: nested");
    ok(e->str > s && e->str < s + strlen(s),
       "json: a string without escapes is left in the input");
    ok(tg_json_get(v, "z") == NULL, "json: no such key");
    ok(tg_json_get(m, "a") == NULL, "json: get on an array");
    ok(tg_json_first(tg_json_get(v, "a2")) == NULL, "json: a scalar has no"
       " elements");

    c = tg_json_compact(tg_json_get(v, "a"), &len);
    is_str(c, "[1,-2.5e1,\"x\\u00e9\\ud83d\\ude00\\n\",true,false,null,{}]",
           "json: compact text, strings as written");
    is_int(len, strlen(c), "json: compact length");
    free(c);
    tg_json_free(&doc);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        is_str(parse(cases[i].input, cases[i].flags), cases[i].want,
               cases[i].name);
    }

    c = malloc(2 * TG_JSON_MAX_DEPTH + 3);
    memset(c, '[', TG_JSON_MAX_DEPTH + 1);
    memset(c + TG_JSON_MAX_DEPTH + 1, ']', TG_JSON_MAX_DEPTH + 1);
    c[2 * TG_JSON_MAX_DEPTH + 2] = '\0';
    is_str(parse(c, 0), "nested too deep", "json: nesting bounded");
    c[TG_JSON_MAX_DEPTH] = ' ';
    c[TG_JSON_MAX_DEPTH + 1] = ' ';
    is_str(parse(c, 0), "ok", "json: nesting at the limit");
    free(c);

    /* the position of an error, never the text */
    v = tg_json_parse(&doc, "{\"secret\": x}", 13, 0);
    ok(v == NULL && doc.position == 11, "json: the error's position");
    ok(strstr(doc.error, "secret") == NULL, "json: the error quotes nothing");
    tg_json_free(&doc);
}


/* the integers summed without strtod() are its values, bit for bit */
void
test_json_numbers(void)
{
    char           big[400];
    size_t         i, n, k;
    double         want, got;
    tg_json_t     *v;
    tg_json_doc_t  doc;

    static const size_t  digits[] = { 299, 300, 301, 309, 310 };
    static const char   *bad[] = {
        "-", "01", "-01", "1.", "1.e1", "1e", "1e+", "1E-", ".5", "+1",
        "0x10", "1.5.2", "--1",
    };

    static const char  *texts[] = {
        "0", "-0", "7", "-25", "1000000", "999999999999999",
        "-999999999999999", "1000000000000000", "9007199254740993",
        "123456789012345678901234567890", "1e2", "1.5", "-0.0", "2E-3",
        "1e400",
    };

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        want = strtod(texts[i], NULL);
        v = tg_json_parse(&doc, texts[i], strlen(texts[i]),
                          TG_JSON_ONE_VALUE);

        if (isinf(want)) {
            ok(v == NULL, "json numbers: %s out of range", texts[i]);
            tg_json_free(&doc);
            continue;
        }

        got = tg_json_number_value(v);
        ok(v != NULL && memcmp(&got, &want, sizeof(double)) == 0,
           "json numbers: %s as strtod() reads it", texts[i]);
        tg_json_free(&doc);
    }

    /*
     * Integers of up to 300 characters are taken without strtod(); longer
     * ones are asked whether they fit a double: 10^308 does, 10^309 not
     */
    for (k = 0; k < sizeof(digits) / sizeof(digits[0]); k++) {
        for (n = 0; n < 2; n++) {
            big[0] = '-';
            big[n] = '1';
            memset(big + n + 1, '0', digits[k] - 1);
            big[n + digits[k]] = '\0';

            v = tg_json_parse(&doc, big, strlen(big), 0);
            ok((v != NULL) == (digits[k] < 310),
               "json numbers: %s1 and %zu zeros %s", n ? "-" : "",
               digits[k] - 1, digits[k] < 310 ? "read" : "out of range");
            tg_json_free(&doc);
        }
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = tg_json_parse(&doc, bad[i], strlen(bad[i]), 0);
        ok(v == NULL, "json numbers: %s refused", bad[i]);
        tg_json_free(&doc);
    }
}


/* the byte-by-byte answer: what both spans must agree with */
static size_t
plain_span_slow(const char *s, size_t len)
{
    size_t         i;
    unsigned char  b;

    for (i = 0; i < len; i++) {
        b = (unsigned char) s[i];

        if (b == '"' || b == '\\' || b < 0x20 || b >= 0x80) {
            break;
        }
    }

    return i;
}


/* the SSE2 and the word-at-a-time spans find the same first stop */
void
test_json_plain_span(void)
{
    int            same_fast, same_portable;
    size_t         len, at, want;
    unsigned int   b;
    char           buf[80];

    same_fast = 1;
    same_portable = 1;

    /* every byte value at every place of a plain run, any length */
    for (b = 0; b < 256; b++) {
        for (len = 0; len <= 40; len++) {
            for (at = 0; at <= len && at < 40; at++) {
                memset(buf, 'a', sizeof(buf));
                buf[at] = (char) b;
                /* what follows the stop: a '"' or a byte that borrows */
                buf[at + 1] = (char) (b & 1 ? '"' : 0x1f);

                want = plain_span_slow(buf, len);

                if (tg_json_plain_span(buf, len) != want) {
                    same_fast = 0;
                }

                if (tg_json_plain_span_portable(buf, len) != want) {
                    same_portable = 0;
                }
            }
        }
    }

    ok(same_fast, "json: the SSE2 span stops where it must");
    ok(same_portable, "json: the portable span stops where it must");
}


/*
 * Strings decoded in runs of 16 bytes: every escape at every place of a
 * run, with a second one after it, decoded as jansson decodes them
 */
#define A40  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B40  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

void
test_json_decode_runs(void)
{
    int            same;
    char           buf[256];
    size_t         e, f, at, len, n;
    json_t        *j;
    tg_json_t     *v;
    tg_json_doc_t  doc;

    static const char  *esc[] = {
        "\\n", "\\\"", "\\\\", "\\/", "\\t", "\\b", "\\u00e9", "\\u0041",
        "\\ud83d\\ude00", "\xc3\xa9", "\\n\\n", "x"
    };

    same = 1;

    for (e = 0; e < sizeof(esc) / sizeof(esc[0]); e++) {
        for (f = 0; f < sizeof(esc) / sizeof(esc[0]); f += 3) {
            for (len = 0; len <= 40; len++) {
                for (at = 0; at <= len; at++) {
                    n = snprintf(buf, sizeof(buf), "[\"%.*s%s%.*s%s\"]",
                                 (int) at, A40, esc[e], (int) (len - at),
                                 B40, esc[f]);

                    j = json_loadb(buf, n, 0, NULL);
                    v = tg_json_parse(&doc, buf, n, 0);
                    v = tg_json_first(v);

                    if (j == NULL || v == NULL
                        || v->len != json_string_length(json_array_get(j, 0))
                        || memcmp(v->str,
                                  json_string_value(json_array_get(j, 0)),
                                  v->len) != 0)
                    {
                        same = 0;
                    }

                    json_decref(j);
                    tg_json_free(&doc);
                }
            }
        }
    }

    ok(same, "json: strings decoded in runs as jansson decodes them");
}


/* duplicates found pair by pair (small objects) and sorted (large ones) */
void
test_json_duplicates(void)
{
    int     all;
    size_t  n, i, dup, len;
    char    buf[2048];

    all = 1;

    for (n = 2; n <= 40; n++) {
        for (dup = 0; dup < 3; dup++) {
            len = 0;
            buf[len++] = '{';

            for (i = 0; i < n; i++) {
                /* dup 0: none ("k1" and "k1x" differ); 1: first and last
                 * the same; 2: "k\u0000" twice, equal past a NUL */
                if (i == n - 1 && dup == 1) {
                    len += sprintf(buf + len, "\"k0\":0");

                } else if (i >= n - 2 && dup == 2) {
                    len += sprintf(buf + len, "\"k\\u0000\":0");

                } else if (i == n - 1) {
                    len += sprintf(buf + len, "\"k1x\":0");

                } else {
                    len += sprintf(buf + len, "\"k%zu\":0", i);
                }

                buf[len++] = i + 1 < n ? ',' : '}';
            }

            buf[len] = '\0';

            if (strcmp(parse(buf, TG_JSON_REJECT_DUPLICATES
                                  | TG_JSON_ALLOW_NUL),
                       dup ? "duplicate object key" : "ok") != 0)
            {
                all = 0;
            }
        }
    }

    ok(all, "json: duplicates found in objects of 2 to 40 members");
}


/*
 * Where values live: nodes in the document until it is full, then in one
 * allocation; strings in the input unless they hold escapes.
 */
void
test_json_storage(void)
{
    int             all;
    size_t          n, i, len, k;
    char           *buf;
    tg_json_t      *v, *e, *m;
    tg_json_doc_t   doc;
    const char     *s;

    s = "[\"plain\", \"esc\\n\", \"caf\xc3\xa9\", \"\\u0041b\", \"\"]";
    v = tg_json_parse(&doc, s, strlen(s), 0);
    ok(v != NULL && v->count == 5, "json storage: five strings");
    e = tg_json_first(v);
    ok(e->str == s + 2 && e->len == 5, "json storage: plain, in the input");
    e = tg_json_next(e);
    ok(e->len == 4 && memcmp(e->str, "esc\n", 5) == 0
       && (e->str < s || e->str > s + strlen(s)),
       "json storage: an escape, decoded apart and NUL-terminated");
    e = tg_json_next(e);
    ok(e->len == 5 && memcmp(e->str, "caf\xc3\xa9", 5) == 0
       && e->str > s && e->str < s + strlen(s),
       "json storage: UTF-8 without escapes, in the input");
    e = tg_json_next(e);
    ok(e->len == 2 && memcmp(e->str, "Ab", 3) == 0,
       "json storage: a \\u escape first");
    e = tg_json_next(e);
    ok(e->len == 0, "json storage: an empty string");
    ok(doc.nodes == doc.small, "json storage: a small document allocates"
       " no nodes");
    tg_json_free(&doc);

    s = "{\"a\\u0062\": 1, \"ab\": 2}";
    v = tg_json_parse(&doc, s, strlen(s), TG_JSON_REJECT_DUPLICATES);
    ok(v == NULL && strcmp(doc.error, "duplicate object key") == 0,
       "json storage: an escaped key and a plain one are the same key");
    tg_json_free(&doc);

    /* strcmp()'s reading of a decoded NUL, kept for the fields compared */
    s = "[\"tool\\u0000x\", \"toolx\", \"too\", \"tool\"]";
    v = tg_json_parse(&doc, s, strlen(s), TG_JSON_ALLOW_NUL);
    e = tg_json_first(v);
    ok(tg_json_string_is(e, "tool"), "json storage: \"tool\\u0000x\" reads"
       " as \"tool\"");
    e = tg_json_next(e);
    ok(!tg_json_string_is(e, "tool"), "json storage: \"toolx\" is not");
    e = tg_json_next(e);
    ok(!tg_json_string_is(e, "tool"), "json storage: \"too\" is not");
    e = tg_json_next(e);
    ok(tg_json_string_is(e, "tool"), "json storage: \"tool\" is");
    ok(!tg_json_string_is(v, "tool"), "json storage: an array is not");
    tg_json_free(&doc);

    /* around the end of small: every value there, read back in order */
    buf = malloc(16 * 400 + 16);
    all = 1;

    for (n = TG_JSON_SMALL - 4; n <= TG_JSON_SMALL + 4 || n == 300;
         n = (n == TG_JSON_SMALL + 4) ? 300 : n + 1)
    {
        for (k = 0; k < 2; k++) {
            /* k 0: dense (short input, the hint below the need) */
            len = 0;
            buf[len++] = '[';

            for (i = 0; i + 1 < n; i++) {
                len += sprintf(buf + len, k ? "{\"k\": \"v%zu\"}," : "\"%zu\",",
                               i);
            }

            buf[len - 1] = ']';
            buf[len] = '\0';

            v = tg_json_parse(&doc, buf, len, 0);
            if (v == NULL || v->count != n - 1) {
                all = 0;
                tg_json_free(&doc);
                continue;
            }

            i = 0;

            tg_json_foreach(v, e) {
                m = k ? tg_json_get(e, "k") : e;

                if (!tg_json_is_string(m)
                    || (size_t) atoi(m->str + k) != i)
                {
                    all = 0;
                }

                i++;
            }

            if (i != n - 1 || doc.n != (k ? 2 * n - 1 : n)
                || (doc.n <= TG_JSON_SMALL) != (doc.nodes == doc.small))
            {
                all = 0;
            }

            tg_json_free(&doc);
        }
    }

    ok(all, "json storage: documents around the end of small read back");

    /* the same document parsed again after a free */
    s = "{\"a\": [1, \"x\\ty\"]}";
    for (i = 0, all = 1; i < 3; i++) {
        v = tg_json_parse(&doc, s, strlen(s), 0);
        e = tg_json_get(v, "a");
        m = e ? tg_json_next(tg_json_first(e)) : NULL;
        all = all && m != NULL && m->len == 3 && memcmp(m->str, "x\ty", 3) == 0;
        tg_json_free(&doc);
    }

    ok(all, "json storage: a document reused");
    free(buf);
}
