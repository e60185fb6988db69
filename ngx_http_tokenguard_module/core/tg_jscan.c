#include <stdlib.h>
#include <string.h>

#include "tg_jscan.h"


enum {
    TG_JS_VALUE = 0,            /* a value is next */
    TG_JS_KEY,                  /* a key, or the end of the object */
    TG_JS_COLON,
    TG_JS_AFTER,                /* after a value: ',' or a closer */
    TG_JS_STRING,
    TG_JS_STRING_ESC,
    TG_JS_KEYSTR,
    TG_JS_KEYSTR_ESC,
    TG_JS_SCALAR,               /* a number, true, false or null */
    TG_JS_BAD
};


#define tg_js_ws(c)     ((c) == ' ' || (c) == '\t' || (c) == '\n'          \
                         || (c) == '\r')
#define tg_js_delim(c)  (tg_js_ws(c) || (c) == ',' || (c) == ']'           \
                         || (c) == '}')
#define tg_js_array(js, d)                                                   \
    ((js)->arrays[(d) / 8] & (1 << ((d) % 8)))


void
tg_jscan_init(tg_jscan_t *js, const char *const *paths, const size_t *max)
{
    size_t  i;

    memset(js, 0, sizeof(tg_jscan_t));

    for (i = 0; paths[i] != NULL && i < TG_JSCAN_SLOTS; i++) {
        js->slot[i].path = paths[i];
        js->slot[i].max = max[i];
    }

    js->nslots = i;
}


void
tg_jscan_reset(tg_jscan_t *js)
{
    size_t  i;

    js->state = TG_JS_VALUE;
    js->depth = 0;
    js->cap = NULL;
    js->cap_over = 0;
    js->done = 0;
    js->bad = 0;

    for (i = 0; i < js->nslots; i++) {
        js->slot[i].seen = 0;
        js->slot[i].whole = 0;
        js->slot[i].len = 0;
    }
}


void
tg_jscan_free(tg_jscan_t *js)
{
    size_t  i;

    for (i = 0; i < js->nslots; i++) {
        free(js->slot[i].buf);
        js->slot[i].buf = NULL;
    }
}


const char *
tg_jscan_value(tg_jscan_t *js, size_t i, size_t *len)
{
    tg_jscan_slot_t  *s;

    if (i >= js->nslots) {
        return NULL;
    }

    s = &js->slot[i];

    if (!s->seen || !s->whole || s->max == 0) {
        return NULL;
    }

    *len = s->len;

    return s->buf;
}


static void
tg_jscan_keep(tg_jscan_t *js, char c)
{
    tg_jscan_slot_t  *s;

    s = js->cap;

    if (js->cap_over) {
        return;
    }

    if (s->buf == NULL) {
        s->buf = malloc(s->max);
        if (s->buf == NULL) {
            js->cap_over = 1;
            return;
        }
    }

    if (s->len == s->max) {
        js->cap_over = 1;
        return;
    }

    s->buf[s->len++] = c;
}


/* a value starts at js->depth: is it at a path we keep? */
static void
tg_jscan_start(tg_jscan_t *js, char c)
{
    char              path[TG_JSCAN_DEPTH * (TG_JSCAN_KEY + 1)];
    size_t            d, i, n;
    tg_jscan_slot_t  *s;

    if (js->depth == 0 || js->depth > TG_JSCAN_DEPTH || js->cap != NULL) {
        return;
    }

    n = 0;

    for (d = 1; d <= js->depth; d++) {
        if (d > 1) {
            path[n++] = '.';
        }

        if (tg_js_array(js, d)) {
            path[n++] = '*';
            continue;
        }

        if (js->key_len[d - 1] > TG_JSCAN_KEY) {
            return;
        }

        memcpy(path + n, js->key[d - 1], js->key_len[d - 1]);
        n += js->key_len[d - 1];
    }

    for (i = 0; i < js->nslots; i++) {
        s = &js->slot[i];

        if (strlen(s->path) != n || memcmp(s->path, path, n) != 0) {
            continue;
        }

        s->seen = 1;
        s->whole = 0;
        s->len = 0;

        if (s->max) {
            js->cap = s;
            js->cap_depth = js->depth;
            js->cap_over = 0;
            tg_jscan_keep(js, c);
        }

        return;
    }
}


/* a value ended at js->depth */
static void
tg_jscan_end(tg_jscan_t *js)
{
    if (js->cap && js->depth == js->cap_depth) {
        js->cap->whole = !js->cap_over;
        js->cap = NULL;
    }

    js->state = TG_JS_AFTER;

    if (js->depth == 0) {
        js->done = 1;
    }
}


static void
tg_jscan_push(tg_jscan_t *js, int array)
{
    size_t  d;

    if (js->depth + 1 >= TG_JSCAN_NEST) {
        js->state = TG_JS_BAD;
        return;
    }

    d = ++js->depth;

    if (array) {
        js->arrays[d / 8] |= (uint8_t) (1 << (d % 8));

    } else {
        js->arrays[d / 8] &= (uint8_t) ~(1 << (d % 8));
    }

    if (d <= TG_JSCAN_DEPTH) {
        js->key_len[d - 1] = 0;
    }

    js->state = array ? TG_JS_VALUE : TG_JS_KEY;
}


static void
tg_jscan_close(tg_jscan_t *js, char c)
{
    if (js->depth == 0 || !tg_js_array(js, js->depth) != (c == '}')) {
        js->state = TG_JS_BAD;
        return;
    }

    js->depth--;
    tg_jscan_end(js);
}


/* a value is next: its first byte */
static void
tg_jscan_on_value(tg_jscan_t *js, char c)
{
    if (tg_js_ws(c)) {
        return;
    }

    if (c == ']' && js->depth && tg_js_array(js, js->depth)) {
        /* an empty array */
        tg_jscan_close(js, c);
        return;
    }

    if (js->done || c == ',' || c == ':' || c == '}' || c == ']') {
        js->state = TG_JS_BAD;
        return;
    }

    tg_jscan_start(js, c);

    if (c == '{' || c == '[') {
        tg_jscan_push(js, c == '[');

    } else if (c == '"') {
        js->state = TG_JS_STRING;

    } else {
        js->state = TG_JS_SCALAR;
    }
}


/* in an object: a key's opening quote, or the end of the object */
static void
tg_jscan_on_key(tg_jscan_t *js, char c)
{
    if (tg_js_ws(c)) {
        return;
    }

    if (c == '}') {
        tg_jscan_close(js, c);
        return;
    }

    if (c != '"') {
        js->state = TG_JS_BAD;
        return;
    }

    if (js->depth <= TG_JSCAN_DEPTH) {
        js->key_len[js->depth - 1] = 0;
    }

    js->state = TG_JS_KEYSTR;
}


/* a byte of a key: kept while the key can still be one of a path */
static void
tg_jscan_on_keystr(tg_jscan_t *js, char c)
{
    size_t  d;

    d = js->depth;

    if (c == '"') {
        js->state = TG_JS_COLON;
        return;
    }

    if (c == '\\') {
        js->state = TG_JS_KEYSTR_ESC;
    }

    if (d > TG_JSCAN_DEPTH || js->key_len[d - 1] > TG_JSCAN_KEY) {
        return;
    }

    if (c == '\\' || js->key_len[d - 1] == TG_JSCAN_KEY) {
        /* an escaped or long key is no key of a path */
        js->key_len[d - 1] = TG_JSCAN_KEY + 1;
        return;
    }

    js->key[d - 1][js->key_len[d - 1]++] = c;
}


/* a byte of a string value that the fast path did not skip */
static void
tg_jscan_on_string(tg_jscan_t *js, char c)
{
    if (c == '\\') {
        js->state = TG_JS_STRING_ESC;

    } else if (c == '"') {
        tg_jscan_end(js);
    }
}


static void
tg_jscan_on_colon(tg_jscan_t *js, char c)
{
    if (!tg_js_ws(c)) {
        js->state = (c == ':') ? TG_JS_VALUE : TG_JS_BAD;
    }
}


/* after a value: ',' or a closer */
static void
tg_jscan_on_after(tg_jscan_t *js, char c)
{
    if (tg_js_ws(c)) {
        return;
    }

    if (js->depth == 0) {
        /* something after the document */
        js->state = TG_JS_BAD;

    } else if (c == ',') {
        js->state = tg_js_array(js, js->depth) ? TG_JS_VALUE : TG_JS_KEY;

    } else if (c == '}' || c == ']') {
        tg_jscan_close(js, c);

    } else {
        js->state = TG_JS_BAD;
    }
}


/* the byte after a number, true, false or null ends it */
static void
tg_jscan_end_scalar(tg_jscan_t *js, char c)
{
    tg_jscan_end(js);

    if (js->cap) {
        /* the scalar was not the value kept: c is part of it */
        tg_jscan_keep(js, c);
    }
}


void
tg_jscan_feed(tg_jscan_t *js, const char *p, size_t len)
{
    char         c;
    const char  *end;

    end = p + len;

    for ( /* void */ ; p < end; p++) {

        if (js->state == TG_JS_STRING && js->cap == NULL) {
            /* most bytes are inside strings no one keeps */
            while (p < end && *p != '"' && *p != '\\') {
                p++;
            }

            if (p == end) {
                break;
            }
        }

        c = *p;

        if (js->cap
            && !(js->state == TG_JS_SCALAR && tg_js_delim(c)))
        {
            tg_jscan_keep(js, c);
        }

        switch (js->state) {

        case TG_JS_VALUE:
            tg_jscan_on_value(js, c);
            break;

        case TG_JS_KEY:
            tg_jscan_on_key(js, c);
            break;

        case TG_JS_KEYSTR:
            tg_jscan_on_keystr(js, c);
            break;

        case TG_JS_KEYSTR_ESC:
            js->state = TG_JS_KEYSTR;
            break;

        case TG_JS_COLON:
            tg_jscan_on_colon(js, c);
            break;

        case TG_JS_STRING:
            tg_jscan_on_string(js, c);
            break;

        case TG_JS_STRING_ESC:
            js->state = TG_JS_STRING;
            break;

        case TG_JS_SCALAR:
            if (!tg_js_delim(c)) {
                break;
            }

            tg_jscan_end_scalar(js, c);

            /* c is also the first byte after the scalar */
            /* fall through */

        case TG_JS_AFTER:
            tg_jscan_on_after(js, c);
            break;

        default:
            /* TG_JS_BAD: nothing more to learn */
            break;
        }

        if (js->state == TG_JS_BAD) {
            js->bad = 1;
            js->cap = NULL;
            return;
        }
    }
}
