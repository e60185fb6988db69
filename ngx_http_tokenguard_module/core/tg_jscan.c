/*
 * Most bytes of a response are inside strings (the model's text, echoed
 * prompts): their runs without a quote or a backslash are skipped, or
 * copied into a kept value, 16 bytes at a time (SSE2, always there on
 * x86-64; 8 at a time otherwise).  A kept value is one contiguous run of
 * the input, copied once per feed, not byte by byte.
 */

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <stdint.h>
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
#define tg_js_delim(c)  tg_js_delims[(unsigned char) (c)]
#define tg_js_array(js, d)                                                   \
    ((js)->arrays[(d) / 8] & (1 << ((d) % 8)))

/*
 * What ends a scalar: a space, ',', ']' or '}'.  A table: each byte of a
 * number is one load, not seven comparisons.
 */
static const unsigned char  tg_js_delims[256] = {
    ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, [' '] = 1, [','] = 1, [']'] = 1,
    ['}'] = 1
};


/* a kept value's first buffer: malloc() keeps blocks this small at hand */
#define TG_JSCAN_FIRST  512


/* slot i's path split into its keys, and the masks that know them */
static void
tg_jscan_path(tg_jscan_t *js, size_t i)
{
    size_t            d, n, len;
    tg_jscan_slot_t  *s;
    const char       *p, *dot;

    s = &js->slot[i];
    p = s->path;

    /* no key read (at most TG_JSCAN_KEY) matches where the path has none */
    memset(s->key_len, 0xff, TG_JSCAN_DEPTH);

    for (d = 0; d < TG_JSCAN_DEPTH; d++) {
        dot = strchr(p, '.');
        len = dot ? (size_t) (dot - p) : strlen(p);

        /* nor a longer key of the path */
        n = len <= TG_JSCAN_KEY ? len : 0xff;

        s->key_off[d] = (uint8_t) (p - s->path);
        s->key_len[d] = (uint8_t) n;

        if (len == 1 && *p == '*') {
            js->star[d] |= (uint8_t) (1 << i);
        }

        if (dot == NULL) {
            js->ends[d] |= (uint8_t) (1 << i);
            return;
        }

        p = dot + 1;
    }

    /* deeper than TG_JSCAN_DEPTH keys: ends nowhere, never matches */
}


void
tg_jscan_init(tg_jscan_t *js, const char *const *paths, const size_t *max)
{
    size_t  i;

    memset(js, 0, sizeof(tg_jscan_t));

    for (i = 0; paths[i] != NULL && i < TG_JSCAN_SLOTS; i++) {
        js->slot[i].path = paths[i];
        js->slot[i].max = max[i];
        tg_jscan_path(js, i);
    }

    js->nslots = i;
    js->match[0] = (uint8_t) ((1 << i) - 1);
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
        js->slot[i].size = 0;
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


/*
 * Eight bytes at a time: a word with no '"' or '\\' is skipped whole; a
 * word with one is read byte by byte, so that borrows between bytes
 * (false alarms above a hit) and the byte order do not matter.
 */
size_t
tg_jscan_span_portable(const char *p, size_t len)
{
    size_t    i;
    uint64_t  w, x, y;

    const uint64_t  ones = 0x0101010101010101ULL;
    const uint64_t  highs = 0x8080808080808080ULL;

    i = 0;

    while (i + 8 <= len) {
        memcpy(&w, p + i, 8);

        x = w ^ (ones * '"');
        y = w ^ (ones * '\\');

        if ((((x - ones) & ~x) | ((y - ones) & ~y)) & highs) {
            break;
        }

        i += 8;
    }

    while (i < len && p[i] != '"' && p[i] != '\\') {
        i++;
    }

    return i;
}


static inline size_t
tg_jscan_span_fast(const char *p, size_t len)
{
#ifdef __SSE2__
    int      mask;
    size_t   i;
    __m128i  v, quote, backslash;

    quote = _mm_set1_epi8('"');
    backslash = _mm_set1_epi8('\\');
    i = 0;

    while (i + 16 <= len) {
        v = _mm_loadu_si128((const __m128i *) (p + i));
        mask = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                              _mm_cmpeq_epi8(v, backslash)));
        if (mask) {
            return i + __builtin_ctz(mask);
        }

        i += 16;
    }

    return i + tg_jscan_span_portable(p + i, len - i);
#else
    return tg_jscan_span_portable(p, len);
#endif
}


size_t
tg_jscan_span(const char *p, size_t len)
{
    return tg_jscan_span_fast(p, len);
}


/* the kept value's bytes from js->cap_from up to end, appended */
static void
tg_jscan_keep(tg_jscan_t *js, const char *end)
{
    char             *buf;
    size_t            n, size;
    tg_jscan_slot_t  *s;

    s = js->cap;
    n = end - js->cap_from;
    js->cap_from = end;

    if (js->cap_over || n == 0) {
        return;
    }

    if (n > s->max - s->len) {
        js->cap_over = 1;
        return;
    }

    if (n > s->size - s->len) {
        /*
         * Grown from a size malloc() serves from its per-thread cache: a
         * usage object is a few hundred bytes, and a buffer of the bound
         * (8 KB) is carved from the heap and given back on every request
         */
        size = s->size ? s->size : TG_JSCAN_FIRST;

        while (size < s->len + n) {
            size *= 2;
        }

        size = size < s->max ? size : s->max;

        buf = realloc(s->buf, size);
        if (buf == NULL) {
            js->cap_over = 1;
            return;
        }

        s->buf = buf;
        s->size = size;
    }

    memcpy(s->buf + s->len, js->cap_from - n, n);
    s->len += n;
}


/*
 * A value starts at p, at js->depth: is it at a path we keep?  Each depth
 * knows which paths hold up to it, so a key is compared only with the
 * keys at its place of the paths still in the running.
 */
static void
tg_jscan_start(tg_jscan_t *js, const char *p)
{
    size_t            d, i, len;
    uint8_t           m, mm, bit;
    const char       *k;
    tg_jscan_slot_t  *s;

    d = js->depth;

    if (d == 0 || d > TG_JSCAN_DEPTH || js->cap != NULL) {
        return;
    }

    if (tg_js_array(js, d)) {
        m = js->match[d];

    } else {
        m = 0;
        len = js->key_len[d - 1];

        /* over TG_JSCAN_KEY: escaped or long, no key of a path */
        mm = (len <= TG_JSCAN_KEY) ? js->match[d - 1] : 0;

        for ( /* void */ ; mm; mm &= mm - 1) {
            i = __builtin_ctz(mm);
            bit = (uint8_t) (1 << i);
            s = &js->slot[i];

            k = s->path + s->key_off[d - 1];

            if (s->key_len[d - 1] == len
                && (len == 0
                    || (k[0] == js->key[d - 1][0]
                        && memcmp(k, js->key[d - 1], len) == 0)))
            {
                m |= bit;
            }
        }

        js->match[d] = m;
    }

    m &= js->ends[d - 1];

    if (m == 0) {
        return;
    }

    s = &js->slot[__builtin_ctz(m)];

    s->seen = 1;
    s->whole = 0;
    s->len = 0;

    if (s->max) {
        js->cap = s;
        js->cap_from = p;
        js->cap_depth = d;
        js->cap_over = 0;
    }
}


/* a value ended at js->depth, its last byte before end */
static inline void
tg_jscan_end(tg_jscan_t *js, const char *end)
{
    if (js->cap && js->depth == js->cap_depth) {
        tg_jscan_keep(js, end);
        js->cap->whole = !js->cap_over;
        js->cap = NULL;
    }

    js->state = TG_JS_AFTER;

    if (js->depth == 0) {
        js->done = 1;
    }
}


static inline void
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

        /* an array's elements are all at its "*" */
        js->match[d] = array ? js->match[d - 1] & js->star[d - 1] : 0;
    }

    js->state = array ? TG_JS_VALUE : TG_JS_KEY;
}


/* a '}' or ']' at p */
static inline void
tg_jscan_close(tg_jscan_t *js, const char *p)
{
    if (js->depth == 0 || !tg_js_array(js, js->depth) != (*p == '}')) {
        js->state = TG_JS_BAD;
        return;
    }

    js->depth--;
    tg_jscan_end(js, p + 1);
}


/* a value is next: p is its first byte */
static inline void
tg_jscan_on_value(tg_jscan_t *js, const char *p)
{
    char  c;

    c = *p;

    if (tg_js_ws(c)) {
        return;
    }

    if (c == ']' && js->depth && tg_js_array(js, js->depth)) {
        /* an empty array */
        tg_jscan_close(js, p);
        return;
    }

    if (js->done || c == ',' || c == ':' || c == '}' || c == ']') {
        js->state = TG_JS_BAD;
        return;
    }

    tg_jscan_start(js, p);

    if (c == '{' || c == '[') {
        tg_jscan_push(js, c == '[');

    } else if (c == '"') {
        js->state = TG_JS_STRING;

    } else {
        js->state = TG_JS_SCALAR;
    }
}


/* in an object: a key's opening quote, or the end of the object */
static inline void
tg_jscan_on_key(tg_jscan_t *js, const char *p)
{
    if (tg_js_ws(*p)) {
        return;
    }

    if (*p == '}') {
        tg_jscan_close(js, p);
        return;
    }

    if (*p != '"') {
        js->state = TG_JS_BAD;
        return;
    }

    if (js->depth <= TG_JSCAN_DEPTH) {
        js->key_len[js->depth - 1] = 0;
    }

    js->state = TG_JS_KEYSTR;
}


/*
 * A run of a key's bytes up to its quote or a backslash: kept while the
 * key can still be one of a path; an escaped or long key is none.
 * Returns where the run ends.
 */
static inline const char *
tg_jscan_keystr(tg_jscan_t *js, const char *p, const char *end)
{
    size_t   d, n, *len;

    n = tg_jscan_span_fast(p, end - p);
    d = js->depth;

    /* kept only where some path goes on (in a body none does in "choices") */
    if (d <= TG_JSCAN_DEPTH && js->match[d - 1]) {
        len = &js->key_len[d - 1];

        if (*len > TG_JSCAN_KEY) {
            /* no key of a path already */

        } else if (n > TG_JSCAN_KEY - *len
                   || (p + n < end && p[n] == '\\'))
        {
            *len = TG_JSCAN_KEY + 1;

        } else {
            memcpy(js->key[d - 1] + *len, p, n);
            *len += n;
        }
    }

    p += n;

    if (p == end) {
        return p;
    }

    if (*p++ == '\\') {
        js->state = TG_JS_KEYSTR_ESC;
        return p;
    }

    /* most keys end in '":' */
    if (p < end && *p == ':') {
        js->state = TG_JS_VALUE;
        return p + 1;
    }

    js->state = TG_JS_COLON;

    return p;
}


static inline void
tg_jscan_on_colon(tg_jscan_t *js, const char *p)
{
    if (!tg_js_ws(*p)) {
        js->state = (*p == ':') ? TG_JS_VALUE : TG_JS_BAD;
    }
}


/* after a value: ',' or a closer */
static inline void
tg_jscan_on_after(tg_jscan_t *js, const char *p)
{
    char  c;

    c = *p;

    if (tg_js_ws(c)) {
        return;
    }

    if (js->depth == 0) {
        /* something after the document */
        js->state = TG_JS_BAD;

    } else if (c == ',') {
        js->state = tg_js_array(js, js->depth) ? TG_JS_VALUE : TG_JS_KEY;

    } else if (c == '}' || c == ']') {
        tg_jscan_close(js, p);

    } else {
        js->state = TG_JS_BAD;
    }
}


/*
 * Strings and scalars go a run at a time, the structure a byte at a
 * time; a value being kept is copied when it ends or the feed does.
 */
void
tg_jscan_feed(tg_jscan_t *js, const char *p, size_t len)
{
    const char  *end;

    end = p + len;
    js->cap_from = p;

    while (p < end) {

        switch (js->state) {

        case TG_JS_STRING:
            p += tg_jscan_span_fast(p, end - p);

            if (p == end) {
                break;
            }

            if (*p == '\\') {
                js->state = TG_JS_STRING_ESC;

            } else {
                tg_jscan_end(js, p + 1);
            }

            p++;
            break;

        case TG_JS_STRING_ESC:
            js->state = TG_JS_STRING;
            p++;
            break;

        case TG_JS_KEYSTR:
            p = tg_jscan_keystr(js, p, end);
            break;

        case TG_JS_KEYSTR_ESC:
            js->state = TG_JS_KEYSTR;
            p++;
            break;

        case TG_JS_SCALAR:
            while (p < end && !tg_js_delim(*p)) {
                p++;
            }

            if (p == end) {
                break;
            }

            /* the byte after it ends it, and is the next one read */
            tg_jscan_end(js, p);
            tg_jscan_on_after(js, p++);
            break;

        case TG_JS_VALUE:
            tg_jscan_on_value(js, p++);
            break;

        case TG_JS_KEY:
            tg_jscan_on_key(js, p++);

            if (js->state == TG_JS_KEYSTR) {
                /* the key's bytes at once */
                p = tg_jscan_keystr(js, p, end);
            }

            break;

        case TG_JS_COLON:
            tg_jscan_on_colon(js, p++);
            break;

        case TG_JS_AFTER:
            tg_jscan_on_after(js, p++);
            break;

        default:
            /* TG_JS_BAD: nothing more to learn */
            p = end;
            break;
        }

        if (js->state == TG_JS_BAD) {
            js->bad = 1;
            js->cap = NULL;
            return;
        }
    }

    if (js->cap) {
        tg_jscan_keep(js, end);
    }
}
