/*
 * tg_json_parse() against jansson on the same bytes: both accept or both
 * refuse, and what both accept is the same tree (types, decoded strings,
 * numbers, keys in order).  Input: one byte of flags, then the JSON.
 */

#include <jansson.h>
#include <math.h>

#include "fuzz.h"
#include "tg_json.h"


/* where a string may be: in the input, or decoded in the string space */
static const char     *fuzz_in;
static size_t          fuzz_in_len;
static tg_json_doc_t  *fuzz_doc;


static int
fuzz_placed(const char *s, size_t len)
{
    if (s >= fuzz_in && s + len <= fuzz_in + fuzz_in_len) {
        return 1;
    }

    /* a decoded one is NUL-terminated */
    return fuzz_doc->strings != NULL && s >= fuzz_doc->strings
           && s + len < fuzz_doc->strings + fuzz_doc->ssize
           && s[len] == '\0';
}


static void
fuzz_same(const tg_json_t *t, json_t *j)
{
    size_t       i, n;
    tg_json_t   *e;
    const char  *key;
    json_t      *v;
    void        *it;

    switch (t->type) {

    case TG_JSON_NULL:
        fuzz_assert(json_is_null(j));
        break;

    case TG_JSON_TRUE:
        fuzz_assert(json_is_true(j));
        break;

    case TG_JSON_FALSE:
        fuzz_assert(json_is_false(j));
        break;

    case TG_JSON_NUMBER:
        fuzz_assert(json_is_number(j));
        fuzz_assert(tg_json_number_value(t) == json_number_value(j)
                    || (isnan(tg_json_number_value(t))
                        && isnan(json_number_value(j))));
        break;

    case TG_JSON_STRING:
        fuzz_assert(json_is_string(j));
        fuzz_assert(t->len == json_string_length(j));
        fuzz_assert(memcmp(t->str, json_string_value(j), t->len) == 0);
        fuzz_assert(fuzz_placed(t->str, t->len));
        break;

    case TG_JSON_ARRAY:
        fuzz_assert(json_is_array(j));
        fuzz_assert(t->count == json_array_size(j));
        i = 0;
        tg_json_foreach(t, e) {
            fuzz_same(e, json_array_get(j, i++));
        }
        fuzz_assert(i == t->count);
        break;

    case TG_JSON_OBJECT:
        fuzz_assert(json_is_object(j));
        /* members in input order; jansson keeps that order too */
        n = 0;
        it = json_object_iter(j);
        tg_json_foreach(t, e) {
            fuzz_assert(it != NULL);
            key = json_object_iter_key(it);
            v = json_object_iter_value(it);
            fuzz_assert(e->key_len == strlen(key)
                        && memcmp(e->key, key, e->key_len) == 0);
            fuzz_assert(fuzz_placed(e->key, e->key_len));
            fuzz_same(e, v);
            it = json_object_iter_next(j, it);
            n++;
        }
        fuzz_assert(it == NULL && n == t->count);
        break;
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int            jflags, flags;
    unsigned       c;
    json_t        *j;
    tg_json_t     *t;
    json_error_t   err;
    tg_json_doc_t  doc;
    fuzz_input_t   in;

    in.p = data;
    in.len = size;
    c = fuzz_byte(&in);

    /* duplicates always refused: jansson keeps the last, in its place */
    flags = TG_JSON_REJECT_DUPLICATES;
    jflags = JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL
             | JSON_REJECT_DUPLICATES;

    if (c & 1) {
        flags |= TG_JSON_ALLOW_NUL;
        jflags |= JSON_ALLOW_NUL;
    }

    if (c & 2) {
        flags |= TG_JSON_ONE_VALUE;
        jflags |= JSON_DISABLE_EOF_CHECK;
    }

    t = tg_json_parse(&doc, (const char *) in.p, in.len, flags);
    fuzz_in = (const char *) in.p;
    fuzz_in_len = in.len;
    fuzz_doc = &doc;
    j = json_loadb((const char *) in.p, in.len, jflags, &err);

    /* jansson refuses what is nested deeper than 2048 a little earlier */
    if (t != NULL && j == NULL && strstr(err.text, "depth") != NULL) {
        tg_json_free(&doc);
        return 0;
    }

    /*
     * jansson takes a NUL byte between tokens for the end of its input
     * (and may then accept what is cut there); we refuse the byte
     */
    if (t == NULL && j != NULL && doc.position < in.len
        && in.p[doc.position] == '\0')
    {
        json_decref(j);
        tg_json_free(&doc);
        return 0;
    }

    /* jansson has no NUL in a key even with JSON_ALLOW_NUL; we take it */
    if (t != NULL && j == NULL
        && strstr(err.text, "NUL byte in object key") != NULL)
    {
        tg_json_free(&doc);
        return 0;
    }

    fuzz_assert(doc.nomem || (t == NULL) == (j == NULL));

    if (t != NULL && j != NULL) {
        fuzz_same(t, j);
    }

    if (t == NULL && !doc.nomem) {
        fuzz_assert(doc.error[0] != '\0' && doc.position <= in.len);
    }

    json_decref(j);
    tg_json_free(&doc);

    return 0;
}
