/*
 * The parser: recursive descent bounded by TG_JSON_MAX_DEPTH.  Nodes link
 * to their next sibling by offsets (the first child is the next node), so
 * the array that holds them may move while it grows: from the document's
 * own small array to one allocation.  A string without escapes is its
 * bytes in the input; decoded strings never take more room than their
 * quoted form, so one allocation the size of the input, made at the
 * first escape, holds them all.
 */

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_json.h"


typedef struct {
    tg_json_doc_t   *doc;
    const char      *s;
    size_t           len;
    size_t           i;
    int              flags;
} tg_parser_t;


static int tg_value(tg_parser_t *p, size_t depth, size_t *node);


/* bytes copied as they are in a string: not '"', '\\', controls, UTF-8 */
static const unsigned char  tg_plain[256] = {
    /* 0x00 - 0x1f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x20 - 0x3f: '"' is 0x22 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x40 - 0x5f: '\\' is 0x5c */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    /* 0x60 - 0x7f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x80 - 0xff: checked as UTF-8 */
};


/*
 * Eight bytes at a time: a word with no byte that is '"', '\\', below
 * 0x20 or above 0x7f is plain as a whole; a word with one is read byte by
 * byte, so that borrows between bytes (false alarms above a hit) and the
 * byte order do not matter.
 */
size_t
tg_json_plain_span_portable(const char *s, size_t len)
{
    size_t    i;
    uint64_t  w, x, y, hit;

    const uint64_t  ones = 0x0101010101010101ULL;
    const uint64_t  highs = 0x8080808080808080ULL;

    i = 0;

    while (i + 8 <= len) {
        memcpy(&w, s + i, 8);

        x = w ^ (ones * '"');
        y = w ^ (ones * '\\');
        hit = (w | ((w - ones * 0x20) & ~w)
               | ((x - ones) & ~x) | ((y - ones) & ~y)) & highs;

        if (hit) {
            break;
        }

        i += 8;
    }

    while (i < len && tg_plain[(unsigned char) s[i]]) {
        i++;
    }

    return i;
}


/* inlined in tg_string(): most runs end within a block or two */
static inline size_t
tg_plain_span(const char *s, size_t len)
{
#ifdef __SSE2__
    int      mask;
    size_t   i;
    __m128i  v, m, quote, backslash, control;

    quote = _mm_set1_epi8('"');
    backslash = _mm_set1_epi8('\\');
    control = _mm_set1_epi8(0x1f);
    i = 0;

    while (i + 16 <= len) {
        v = _mm_loadu_si128((const __m128i *) (s + i));

        /* min(v, 0x1f) == v for bytes up to 0x1f; the sign bit: >= 0x80 */
        m = _mm_or_si128(_mm_cmpeq_epi8(v, quote),
                         _mm_cmpeq_epi8(v, backslash));
        m = _mm_or_si128(m, _mm_cmpeq_epi8(_mm_min_epu8(v, control), v));
        mask = _mm_movemask_epi8(_mm_or_si128(m, v));

        if (mask) {
            return i + __builtin_ctz(mask);
        }

        i += 16;
    }

    return i + tg_json_plain_span_portable(s + i, len - i);
#else
    return tg_json_plain_span_portable(s, len);
#endif
}


/* what a one-letter escape stands for, 0: none ("\\u" is read apart) */
static const unsigned char  tg_unescaped[256] = {
    ['"'] = '"', ['\\'] = '\\', ['/'] = '/', ['b'] = '\b', ['f'] = '\f',
    ['n'] = '\n', ['r'] = '\r', ['t'] = '\t'
};


/*
 * A run of a string decoded to d: plain bytes and the one-letter escapes
 * ("\n", "\""), the ones long texts are full of, without leaving the
 * loop.  Returns the input bytes read, up to a byte it leaves to the
 * caller (a quote, "\u", a control, non-ASCII) or the end; *dlen is the
 * bytes written.  16 bytes are stored before they are looked at, so d
 * must have room for len bytes.  A decoded string and its NUL are never
 * longer than its quoted form, so d is never ahead of the input, and the
 * string space (the input's size plus one) always has that room.
 */
static inline size_t
tg_decode_run(char *d, const char *s, size_t len, size_t *dlen)
{
    size_t  i, o, k;

    i = 0;
    o = 0;

#ifdef __SSE2__
    {
    int            mask;
    __m128i        v, m, quote, backslash, control;
    unsigned char  e;

    quote = _mm_set1_epi8('"');
    backslash = _mm_set1_epi8('\\');
    control = _mm_set1_epi8(0x1f);

    while (i + 16 <= len) {
        v = _mm_loadu_si128((const __m128i *) (s + i));
        _mm_storeu_si128((__m128i *) (d + o), v);

        m = _mm_or_si128(_mm_cmpeq_epi8(v, quote),
                         _mm_cmpeq_epi8(v, backslash));
        m = _mm_or_si128(m, _mm_cmpeq_epi8(_mm_min_epu8(v, control), v));
        mask = _mm_movemask_epi8(_mm_or_si128(m, v));

        if (mask == 0) {
            i += 16;
            o += 16;
            continue;
        }

        k = __builtin_ctz(mask);

        if (s[i + k] != '\\' || i + k + 1 >= len
            || (e = tg_unescaped[(unsigned char) s[i + k + 1]]) == 0)
        {
            *dlen = o + k;
            return i + k;
        }

        d[o + k] = (char) e;
        i += k + 2;
        o += k + 1;
    }
    }
#endif

    k = tg_json_plain_span_portable(s + i, len - i);
    memcpy(d + o, s + i, k);

    *dlen = o + k;

    return i + k;
}


size_t
tg_json_plain_span(const char *s, size_t len)
{
    return tg_plain_span(s, len);
}


static int
tg_fail(tg_parser_t *p, const char *what)
{
    if (p->doc->error[0] == '\0' && !p->doc->nomem) {
        snprintf(p->doc->error, sizeof(p->doc->error), "%s", what);
        p->doc->position = p->i;
    }

    return -1;
}


static inline void
tg_ws(tg_parser_t *p)
{
    /* most tokens follow one another with none */
    if (p->i < p->len && (unsigned char) p->s[p->i] > ' ') {
        return;
    }

    while (p->i < p->len
           && (p->s[p->i] == ' ' || p->s[p->i] == '\n' || p->s[p->i] == '\r'
               || p->s[p->i] == '\t'))
    {
        p->i++;
    }
}


/* room for one node more: the bound, or the move out of small */
static int
tg_grow(tg_parser_t *p)
{
    size_t          n;
    tg_json_t      *nodes;
    tg_json_doc_t  *doc = p->doc;

    if (doc->n >= doc->max) {
        return tg_fail(p, "too many values for the size of the input");
    }

    n = 2 * doc->nalloc;

    if (doc->nodes == doc->small) {
        /* out of the document: at once the room the input may need */
        n = n > doc->hint ? n : doc->hint;

        nodes = malloc(n * sizeof(tg_json_t));
        if (nodes != NULL) {
            memcpy(nodes, doc->small, doc->n * sizeof(tg_json_t));
        }

    } else {
        nodes = realloc(doc->nodes, n * sizeof(tg_json_t));
    }

    if (nodes == NULL) {
        doc->nomem = 1;
        return -1;
    }

    doc->nodes = nodes;
    doc->nalloc = n;

    return 0;
}


/* inlined where values are read: one per value */
static inline int
tg_node(tg_parser_t *p, tg_json_type_e type, size_t *node)
{
    tg_json_doc_t  *doc = p->doc;

    if ((doc->n == doc->nalloc || doc->n >= doc->max) && tg_grow(p) != 0) {
        return -1;
    }

    *node = doc->n++;
    memset(&doc->nodes[*node], 0, sizeof(tg_json_t));
    doc->nodes[*node].type = type;
    doc->nodes[*node].str = p->s + p->i;

    return 0;
}


size_t
tg_json_utf8_len(const char *s, size_t n)
{
    size_t         k, i;
    uint32_t       c, min;
    unsigned char  b;

    b = (unsigned char) s[0];

    if (b < 0x80) {
        return 1;

    } else if ((b & 0xe0) == 0xc0) {
        k = 2; c = b & 0x1f; min = 0x80;

    } else if ((b & 0xf0) == 0xe0) {
        k = 3; c = b & 0x0f; min = 0x800;

    } else if ((b & 0xf8) == 0xf0) {
        k = 4; c = b & 0x07; min = 0x10000;

    } else {
        return 0;
    }

    if (n < k) {
        return 0;
    }

    for (i = 1; i < k; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = (c << 6) | ((unsigned char) s[i] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    return k;
}


size_t
tg_json_utf8_put(char *d, uint32_t c)
{
    if (c < 0x80) {
        d[0] = (char) c;
        return 1;
    }

    if (c < 0x800) {
        d[0] = (char) (0xc0 | (c >> 6));
        d[1] = (char) (0x80 | (c & 0x3f));
        return 2;
    }

    if (c < 0x10000) {
        d[0] = (char) (0xe0 | (c >> 12));
        d[1] = (char) (0x80 | ((c >> 6) & 0x3f));
        d[2] = (char) (0x80 | (c & 0x3f));
        return 3;
    }

    d[0] = (char) (0xf0 | (c >> 18));
    d[1] = (char) (0x80 | ((c >> 12) & 0x3f));
    d[2] = (char) (0x80 | ((c >> 6) & 0x3f));
    d[3] = (char) (0x80 | (c & 0x3f));
    return 4;
}


int
tg_json_escape(char c)
{
    unsigned char  e;

    e = tg_unescaped[(unsigned char) c];

    return e ? e : -1;
}


int
tg_json_hex4(const char *s, uint32_t *out)
{
    int       i;
    uint32_t  v;
    char      c;

    v = 0;

    for (i = 0; i < 4; i++) {
        c = s[i];
        v <<= 4;

        if (c >= '0' && c <= '9') {
            v |= c - '0';

        } else if (c >= 'a' && c <= 'f') {
            v |= c - 'a' + 10;

        } else if (c >= 'A' && c <= 'F') {
            v |= c - 'A' + 10;

        } else {
            return -1;
        }
    }

    *out = v;

    return 0;
}


/* p->i at the "u" of "\u": the code point (a surrogate pair joined), -1 */
static int64_t
tg_code_point(tg_parser_t *p)
{
    uint32_t     c, lo;
    const char  *s = p->s;

    if (p->i + 4 >= p->len || tg_json_hex4(s + p->i + 1, &c) != 0) {
        return tg_fail(p, "invalid \\u escape");
    }

    p->i += 4;

    if (c >= 0xdc00 && c <= 0xdfff) {
        return tg_fail(p, "invalid Unicode escape");
    }

    if (c >= 0xd800 && c <= 0xdbff) {
        /* a high surrogate: its low half must follow */
        if (p->i + 6 >= p->len || s[p->i + 1] != '\\'
            || s[p->i + 2] != 'u'
            || tg_json_hex4(s + p->i + 3, &lo) != 0
            || lo < 0xdc00 || lo > 0xdfff)
        {
            return tg_fail(p, "invalid Unicode escape");
        }

        p->i += 6;
        c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
    }

    if (c == 0 && !(p->flags & TG_JSON_ALLOW_NUL)) {
        return tg_fail(p, "\\u0000 is not allowed");
    }

    return c;
}


/* p->i at the letter after a backslash, left at the escape's last byte */
static int
tg_escape(tg_parser_t *p, char **d)
{
    int64_t        c;
    unsigned char  e;

    e = tg_unescaped[(unsigned char) p->s[p->i]];

    if (e) {
        *(*d)++ = (char) e;
        return 0;
    }

    if (p->s[p->i] != 'u') {
        return tg_fail(p, "invalid escape in a string");
    }

    c = tg_code_point(p);
    if (c < 0) {
        return -1;
    }

    /* at most 4 bytes out for at least 6 in */
    *d += tg_json_utf8_put(*d, (uint32_t) c);

    return 0;
}


static int tg_string_decode(tg_parser_t *p, size_t start, const char **out,
    size_t *out_len);


static int tg_string_rest(tg_parser_t *p, size_t start, const char **out,
    size_t *out_len);


/*
 * p->i at the opening quote: a string without escapes is left where it
 * is, checked only; the first escape sends it to the string space.  The
 * common case, one run of plain bytes, is inlined where strings are read.
 */
static inline int
tg_string(tg_parser_t *p, const char **out, size_t *out_len)
{
    size_t  start;

    start = ++p->i;
    p->i += tg_plain_span(p->s + start, p->len - start);

    if (p->i < p->len && p->s[p->i] == '"') {
        *out = p->s + start;
        *out_len = p->i++ - start;
        return 0;
    }

    return tg_string_rest(p, start, out, out_len);
}


/* p->i at a byte that is not plain (or the end), start at the first */
static int
tg_string_rest(tg_parser_t *p, size_t start, const char **out,
    size_t *out_len)
{
    size_t          k;
    const char     *s = p->s;
    unsigned char   b;

    for ( ;; ) {
        if (p->i >= p->len) {
            return tg_fail(p, "unterminated string");
        }

        b = (unsigned char) s[p->i];

        if (b == '"') {
            *out = s + start;
            *out_len = p->i - start;
            p->i++;
            return 0;
        }

        if (b < 0x20) {
            return tg_fail(p, "control character in a string");
        }

        if (b >= 0x80) {
            k = tg_json_utf8_len(s + p->i, p->len - p->i);
            if (k == 0) {
                return tg_fail(p, "invalid UTF-8 in a string");
            }

            p->i += k;
            p->i += tg_plain_span(s + p->i, p->len - p->i);
            continue;
        }

        return tg_string_decode(p, start, out, out_len);
    }
}


/* p->i at the string's first backslash, start at its first byte */
static int
tg_string_decode(tg_parser_t *p, size_t start, const char **out,
    size_t *out_len)
{
    char           *d, *first;
    size_t          k;
    const char     *s = p->s;
    unsigned char   b;

    if (p->doc->strings == NULL) {
        /* decoded strings and their NULs fit in the input's size plus one */
        p->doc->ssize = p->len + 1;

        p->doc->strings = malloc(p->doc->ssize);
        if (p->doc->strings == NULL) {
            p->doc->nomem = 1;
            return -1;
        }
    }

    first = p->doc->strings + p->doc->slen;
    memcpy(first, s + start, p->i - start);
    d = first + (p->i - start);

    for ( ;; ) {
        b = (unsigned char) s[p->i];

        if (b == '"') {
            p->i++;
            break;
        }

        if (b < 0x20) {
            return tg_fail(p, "control character in a string");
        }

        if (b >= 0x80) {
            k = tg_json_utf8_len(s + p->i, p->len - p->i);
            if (k == 0) {
                return tg_fail(p, "invalid UTF-8 in a string");
            }

            memcpy(d, s + p->i, k);
            d += k;
            p->i += k;

        } else if (b == '\\') {
            if (p->i + 1 >= p->len) {
                return tg_fail(p, "unterminated string");
            }

            p->i++;

            if (tg_escape(p, &d) != 0) {
                return -1;
            }

            p->i++;
        }

        /* a run of plain bytes at once */
        p->i += tg_decode_run(d, s + p->i, p->len - p->i, &k);
        d += k;

        if (p->i >= p->len) {
            return tg_fail(p, "unterminated string");
        }
    }

    *d++ = '\0';
    *out = first;
    *out_len = d - first - 1;
    p->doc->slen += d - first;

    return 0;
}


/*
 * A valid number of at most 15 digits and no fraction or exponent is
 * exact in a double: summed here, the value strtod() gives, for a fraction
 * of its cost (token counts are such numbers, read at every response)
 */
static int
tg_json_integer(const char *s, size_t n, double *out)
{
    size_t  i;
    double  v;

    i = (n > 0 && s[0] == '-');

    if (n - i > 15) {
        return 0;
    }

    for (v = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }

        v = v * 10 + (s[i] - '0');
    }

    *out = (n > 0 && s[0] == '-') ? -v : v;

    return 1;
}


static int tg_number_rest(tg_parser_t *p, size_t start);


/*
 * A number is checked here and read when it is asked for
 * (tg_json_number()).  Most are token counts and ids, digits only: they
 * are read inline; a fraction or an exponent goes on in tg_number_rest().
 */
static inline int
tg_number(tg_parser_t *p)
{
    char    c;
    size_t  start;

    start = p->i;

    if (p->i < p->len && p->s[p->i] == '-') {
        p->i++;
    }

    if (p->i >= p->len || p->s[p->i] < '0' || p->s[p->i] > '9') {
        return tg_fail(p, "invalid number");
    }

    if (p->s[p->i] == '0') {
        p->i++;

        if (p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
            return tg_fail(p, "invalid number");
        }

    } else {
        while (p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
            p->i++;
        }
    }

    c = p->i < p->len ? p->s[p->i] : '\0';

    /* an integer of 300 digits is in a double's range (to 1.8e308) */
    if (c != '.' && c != 'e' && c != 'E' && p->i - start <= 300) {
        return 0;
    }

    return tg_number_rest(p, start);
}


/*
 * p->i after a number's integer part: its fraction and exponent, then
 * strtod() only to see that the number is in a double's range
 */
static int
tg_number_rest(tg_parser_t *p, size_t start)
{
    char    buf[64], *copy, *end;
    size_t  n;
    double  v;

    if (p->i < p->len && p->s[p->i] == '.') {
        p->i++;

        if (p->i >= p->len || p->s[p->i] < '0' || p->s[p->i] > '9') {
            return tg_fail(p, "invalid number");
        }

        while (p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
            p->i++;
        }
    }

    if (p->i < p->len && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;

        if (p->i < p->len && (p->s[p->i] == '+' || p->s[p->i] == '-')) {
            p->i++;
        }

        if (p->i >= p->len || p->s[p->i] < '0' || p->s[p->i] > '9') {
            return tg_fail(p, "invalid number");
        }

        while (p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
            p->i++;
        }
    }

    n = p->i - start;

    /* strtod() wants a terminated copy: the input is not */
    copy = n < sizeof(buf) ? buf : malloc(n + 1);
    if (copy == NULL) {
        p->doc->nomem = 1;
        return -1;
    }

    memcpy(copy, p->s + start, n);
    copy[n] = '\0';
    v = strtod(copy, &end);

    if (copy != buf) {
        free(copy);
    }

    if (isinf(v)) {
        return tg_fail(p, "number out of range");
    }

    return 0;
}


static int
tg_literal(tg_parser_t *p, const char *word, size_t len)
{
    if (p->len - p->i < len || memcmp(p->s + p->i, word, len) != 0) {
        return tg_fail(p, "invalid token");
    }

    p->i += len;

    /* a longer word ("truex") is not the literal */
    if (p->i < p->len
        && ((p->s[p->i] | 0x20) >= 'a' && (p->s[p->i] | 0x20) <= 'z'))
    {
        return tg_fail(p, "invalid token");
    }

    return 0;
}


static int
tg_key_cmp(const void *a, const void *b)
{
    const tg_json_t  *x = *(tg_json_t * const *) a;
    const tg_json_t  *y = *(tg_json_t * const *) b;
    size_t            n;
    int               rc;

    n = x->key_len < y->key_len ? x->key_len : y->key_len;
    rc = memcmp(x->key, y->key, n);

    if (rc != 0) {
        return rc;
    }

    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}


/* objects up to this many members are checked pair by pair, no sort */
#define TG_JSON_PAIRWISE  16


/*
 * Any two members with the same key?  Small objects (nearly all of them)
 * pair by pair, comparing lengths first; larger ones sorted, so n log n
 * for any n.
 */
static int
tg_duplicates(tg_parser_t *p, size_t obj)
{
    size_t       i, n;
    tg_json_t   *v, *w, **m;

    n = p->doc->nodes[obj].count;

    if (n < 2) {
        return 0;
    }

    if (n <= TG_JSON_PAIRWISE) {
        tg_json_foreach(&p->doc->nodes[obj], v) {
            for (w = tg_json_next(v); w != NULL; w = tg_json_next(w)) {
                if (v->key_len == w->key_len
                    && memcmp(v->key, w->key, v->key_len) == 0)
                {
                    return tg_fail(p, "duplicate object key");
                }
            }
        }

        return 0;
    }

    m = malloc(n * sizeof(tg_json_t *));
    if (m == NULL) {
        p->doc->nomem = 1;
        return -1;
    }

    i = 0;

    tg_json_foreach(&p->doc->nodes[obj], v) {
        m[i++] = v;
    }

    qsort(m, n, sizeof(tg_json_t *), tg_key_cmp);

    for (i = 1; i < n; i++) {
        if (tg_key_cmp(&m[i - 1], &m[i]) == 0) {
            free(m);
            return tg_fail(p, "duplicate object key");
        }
    }

    free(m);

    return 0;
}


/* an array or an object, p->i at its bracket */
static int
tg_container(tg_parser_t *p, size_t depth, size_t node)
{
    int          object;
    char         close;
    size_t       child, last, n;
    size_t       key_len;
    const char  *key;

    object = p->s[p->i] == '{';
    close = object ? '}' : ']';
    p->i++;
    last = 0;
    n = 0;

    tg_ws(p);

    if (p->i < p->len && p->s[p->i] == close) {
        p->i++;
        return 0;
    }

    for ( ;; ) {
        key = NULL;
        key_len = 0;

        if (object) {
            if (p->i >= p->len || p->s[p->i] != '"') {
                return tg_fail(p, "a string key expected");
            }

            if (tg_string(p, &key, &key_len) != 0) {
                return -1;
            }

            tg_ws(p);

            if (p->i >= p->len || p->s[p->i] != ':') {
                return tg_fail(p, "':' expected");
            }

            p->i++;
            tg_ws(p);
        }

        if (!object && (p->flags & TG_JSON_BOUNDED)
            && p->i < p->len
            && (p->s[p->i] == '-' || (p->s[p->i] >= '0' && p->s[p->i] <= '9')))
        {
            /* checked and counted, no node: a 2-byte "0," costs nothing */
            if (tg_number(p) != 0) {
                return -1;
            }

        } else {
            if (tg_value(p, depth + 1, &child) != 0) {
                return -1;
            }

            p->doc->nodes[child].key = key;
            p->doc->nodes[child].key_len = (uint32_t) key_len;

            if (last == 0) {
                p->doc->nodes[node].child = 1;

            } else {
                p->doc->nodes[last].next = (int32_t) (child - last);
            }

            last = child;
        }

        n++;

        tg_ws(p);

        if (p->i < p->len && p->s[p->i] == ',') {
            p->i++;
            tg_ws(p);
            continue;
        }

        if (p->i < p->len && p->s[p->i] == close) {
            p->i++;
            break;
        }

        return tg_fail(p, object ? "',' or '}' expected"
                                 : "',' or ']' expected");
    }

    p->doc->nodes[node].count = (uint32_t) n;

    if (object && (p->flags & TG_JSON_REJECT_DUPLICATES)) {
        return tg_duplicates(p, node);
    }

    return 0;
}


static int
tg_value(tg_parser_t *p, size_t depth, size_t *node)
{
    int          rc;
    size_t       len;
    const char  *str;

    if (depth > TG_JSON_MAX_DEPTH) {
        return tg_fail(p, "nested too deep");
    }

    if (p->i >= p->len) {
        return tg_fail(p, "unexpected end of input");
    }

    switch (p->s[p->i]) {

    case '{':
    case '[':
        if (tg_node(p, p->s[p->i] == '{' ? TG_JSON_OBJECT : TG_JSON_ARRAY,
                    node) != 0)
        {
            return -1;
        }

        rc = tg_container(p, depth, *node);
        break;

    case '"':
        if (tg_node(p, TG_JSON_STRING, node) != 0) {
            return -1;
        }

        rc = tg_string(p, &str, &len);
        p->doc->nodes[*node].str = str;
        p->doc->nodes[*node].len = (uint32_t) len;

        return rc;

    case 't':
        rc = tg_node(p, TG_JSON_TRUE, node) ? -1 : tg_literal(p, "true", 4);
        break;

    case 'f':
        rc = tg_node(p, TG_JSON_FALSE, node) ? -1 : tg_literal(p, "false", 5);
        break;

    case 'n':
        rc = tg_node(p, TG_JSON_NULL, node) ? -1 : tg_literal(p, "null", 4);
        break;

    default:
        if (tg_node(p, TG_JSON_NUMBER, node) != 0) {
            return -1;
        }

        /* the range is checked here, the value parsed again when read */
        rc = tg_number(p);
        break;
    }

    if (rc == 0) {
        p->doc->nodes[*node].len = (uint32_t) (p->s + p->i
                                               - p->doc->nodes[*node].str);
    }

    return rc;
}


tg_json_t *
tg_json_parse(tg_json_doc_t *doc, const char *s, size_t len, int flags)
{
    size_t       root;
    tg_parser_t  p;

    /* not small[]: each node is cleared when it is made */
    doc->nodes = doc->small;
    doc->n = 0;
    doc->nalloc = TG_JSON_SMALL;
    doc->strings = NULL;
    doc->slen = 0;
    doc->ssize = 0;
    doc->nomem = 0;
    doc->position = 0;
    doc->error[0] = '\0';

    /* lengths and counts are 32 and 28 bits */
    if (len >= 0x0fffffff) {
        snprintf(doc->error, sizeof(doc->error), "the input is too large");
        return NULL;
    }

    doc->max = (flags & TG_JSON_BOUNDED) ? TG_JSON_NODES_MAX(len)
                                         : (size_t) INT32_MAX / 2;

    /*
     * Once small is full, room for a node per 8 bytes at once, half the
     * bound: JSON that is not dense moves its nodes once, and the
     * allocator keeps a block of that size for the next body instead of
     * mapping new pages each time.
     */
    doc->hint = len / 8 + 32;

    p.doc = doc;
    p.s = s;
    p.len = len;
    p.i = 0;
    p.flags = flags;

    tg_ws(&p);

    if (tg_value(&p, 1, &root) != 0) {
        return NULL;
    }

    if (!(flags & TG_JSON_ONE_VALUE)) {
        tg_ws(&p);

        if (p.i != len) {
            tg_fail(&p, "end of input expected");
            return NULL;
        }
    }

    return &doc->nodes[root];
}


void
tg_json_free(tg_json_doc_t *doc)
{
    if (doc->nodes != doc->small) {
        free(doc->nodes);
    }

    free(doc->strings);

    doc->nodes = NULL;
    doc->strings = NULL;
    doc->n = 0;
    doc->nalloc = 0;
}


double
tg_json_number(const tg_json_t *v)
{
    char    buf[64], *copy;
    double  d;

    if (!tg_json_is_number(v)) {
        return 0;
    }

    if (tg_json_integer(v->str, v->len, &d)) {
        return d;
    }

    copy = v->len < sizeof(buf) ? buf : malloc(v->len + 1);
    if (copy == NULL) {
        return NAN;
    }

    memcpy(copy, v->str, v->len);
    copy[v->len] = '\0';
    d = strtod(copy, NULL);

    if (copy != buf) {
        free(copy);
    }

    return d;
}


tg_json_t *
tg_json_getn(const tg_json_t *v, const char *key, size_t len)
{
    tg_json_t  *m, *found;

    if (!tg_json_is_object(v)) {
        return NULL;
    }

    found = NULL;

    /* as jansson: keys are unique, or asked so, or the last one wins */

    tg_json_foreach(v, m) {
        if (m->key_len == len
            && (len == 0 || (m->key[0] == key[0]
                             && memcmp(m->key, key, len) == 0)))
        {
            found = m;
        }
    }

    return found;
}


char *
tg_json_compact(const tg_json_t *v, size_t *len)
{
    char    *out, *d, c;
    size_t   i;
    int      in_string;

    out = malloc(v->len + 1);
    if (out == NULL) {
        return NULL;
    }

    d = out;
    in_string = 0;

    for (i = 0; i < v->len; i++) {
        c = v->str[i];

        if (in_string) {
            *d++ = c;

            if (c == '\\' && i + 1 < v->len) {
                *d++ = v->str[++i];

            } else if (c == '"') {
                in_string = 0;
            }

            continue;
        }

        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            continue;
        }

        in_string = c == '"';
        *d++ = c;
    }

    *d = '\0';
    *len = d - out;

    return out;
}
