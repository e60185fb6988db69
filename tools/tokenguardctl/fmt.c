/*
 * Output and input formats: money ($1,234.56 for people, dollars as JSON
 * numbers, micro-USD in Redis), counts, shares, names made safe for a
 * terminal, for JSON and for HTML, and plain-text tables.
 */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tgc.h"


/* the largest amount accepted on the command line: $1,000,000,000,000 */
#define TGC_MONEY_MAX  1000000000000LL


/* digits of v with "," every three, into p; returns the end */
static char *
tgc_group(uint64_t v, char *p)
{
    int   n, i;
    char  tmp[TGC_NUM_LEN];

    n = 0;
    do {
        tmp[n++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    for (i = n - 1; i >= 0; i--) {
        *p++ = tmp[i];
        if (i && i % 3 == 0) {
            *p++ = ',';
        }
    }

    return p;
}


/* "$1,234.56" (rounded to the cent, half up), "-$0.50" */
char *
tgc_money(int64_t micro, char *buf)
{
    char      *p;
    uint64_t   m, cents;

    p = buf;

    if (micro < 0) {
        *p++ = '-';
        m = (uint64_t) 0 - (uint64_t) micro;

    } else {
        m = (uint64_t) micro;
    }

    cents = (m + 5000) / 10000;

    if (cents == 0 && m > 0) {
        /* under half a cent: enough digits not to read as nothing */
        p += sprintf(p, "$0.%06llu", (unsigned long long) m);

        while (p[-1] == '0' && p[-3] != '.') {
            p--;
        }

        *p = '\0';
        return buf;
    }

    if (cents == 0 && p != buf) {
        p = buf;
    }

    *p++ = '$';
    p = tgc_group(cents / 100, p);
    *p++ = '.';
    *p++ = (char) ('0' + cents % 100 / 10);
    *p++ = (char) ('0' + cents % 10);
    *p = '\0';

    return buf;
}


/* "1,234,567" */
char *
tgc_num(int64_t v, char *buf)
{
    char  *p;

    p = buf;

    if (v < 0) {
        *p++ = '-';
        p = tgc_group((uint64_t) 0 - (uint64_t) v, p);

    } else {
        p = tgc_group((uint64_t) v, p);
    }

    *p = '\0';

    return buf;
}


/* "87%", "<1%", "-" when whole is 0 */
char *
tgc_pct(int64_t part, int64_t whole, char *buf)
{
    int64_t  pct;

    if (whole <= 0) {
        strcpy(buf, "-");
        return buf;
    }

    pct = (int64_t) ((double) part * 100.0 / (double) whole + 0.5);

    if (pct == 0 && part > 0) {
        strcpy(buf, "<1%");

    } else {
        snprintf(buf, TGC_NUM_LEN, "%lld%%", (long long) pct);
    }

    return buf;
}


/* the share of a cap used, rounded down as the module does; 100 for cap 0 */
int64_t
tgc_used_pct(int64_t used, int64_t cap)
{
    if (cap <= 0) {
        return 100;
    }

    return (int64_t) ((double) used * 100.0 / (double) cap);
}


/*
 * Dollars: "2000", "$2,000", "0.25", "12.345678" (to the micro-dollar).
 * Returns 0, -1 (not an amount), -2 (negative), -3 (finer than a
 * micro-dollar) or -4 (too large).
 */
int
tgc_money_parse(const char *s, int64_t *micro)
{
    int          digits, decimals;
    int64_t      whole, frac;
    const char  *p;

    p = s;

    if (*p == '-') {
        return -2;
    }

    if (*p == '+') {
        p++;
    }

    if (*p == '$') {
        p++;
    }

    whole = 0;
    digits = 0;

    for ( /* void */ ; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            whole = whole * 10 + (*p - '0');
            digits++;

            if (whole > TGC_MONEY_MAX) {
                return -4;
            }

        } else if (*p == ',' && digits && p[1] >= '0' && p[1] <= '9') {
            continue;

        } else {
            break;
        }
    }

    frac = 0;
    decimals = 0;

    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
            if (++decimals > 6) {
                if (*p != '0') {
                    return -3;
                }
                continue;
            }

            frac = frac * 10 + (*p - '0');
        }

        if (decimals == 0 && digits == 0) {
            return -1;
        }
    }

    if (*p != '\0' || (digits == 0 && decimals == 0)) {
        return -1;
    }

    for ( /* void */ ; decimals < 6; decimals++) {
        frac *= 10;
    }

    *micro = whole * 1000000 + frac;

    return 0;
}


/* a count: "2000000", "2,000,000"; 0, -1 (not one), -2 (negative) */
int
tgc_int_parse(const char *s, int64_t *v)
{
    int64_t      n;
    const char  *p;

    if (*s == '-') {
        return -2;
    }

    n = 0;

    for (p = s; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (n > (INT64_MAX - 9) / 10) {
                return -1;
            }
            n = n * 10 + (*p - '0');

        } else if (*p == ',' && p != s && p[1] >= '0' && p[1] <= '9') {
            continue;

        } else {
            return -1;
        }
    }

    if (p == s) {
        return -1;
    }

    *v = n;

    return 0;
}


/* one UTF-8 character at s: its code point and length, or -1 if invalid */
static long
tgc_utf8(const unsigned char *s, size_t len, size_t *n)
{
    long    cp, min;
    size_t  i, k;

    if (s[0] < 0x80) {
        *n = 1;
        return s[0];
    }

    if ((s[0] & 0xe0) == 0xc0) {
        k = 2; cp = s[0] & 0x1f; min = 0x80;

    } else if ((s[0] & 0xf0) == 0xe0) {
        k = 3; cp = s[0] & 0x0f; min = 0x800;

    } else if ((s[0] & 0xf8) == 0xf0) {
        k = 4; cp = s[0] & 0x07; min = 0x10000;

    } else {
        return -1;
    }

    if (k > len) {
        return -1;
    }

    for (i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return -1;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }

    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return -1;
    }

    *n = k;

    return cp;
}


static int
tgc_control(long cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp < 0xa0);
}


/*
 * A name for a terminal: control characters and bytes that are not
 * UTF-8 as "\xNN", so a name cannot move the cursor or hide itself.
 */
char *
tgc_name_tty(const char *name, size_t len)
{
    char                 *out, *p;
    long                  cp;
    size_t                i, n;
    const unsigned char  *s;

    static const char  hex[] = "0123456789abcdef";

    out = malloc(4 * len + 1);
    if (out == NULL) {
        return NULL;
    }

    s = (const unsigned char *) name;
    p = out;

    for (i = 0; i < len; i += n) {
        cp = tgc_utf8(s + i, len - i, &n);

        if (cp < 0 || tgc_control(cp) || cp == '\\') {
            if (cp == '\\') {
                *p++ = '\\';
                *p++ = '\\';

            } else {
                *p++ = '\\';
                *p++ = 'x';
                *p++ = hex[s[i] >> 4];
                *p++ = hex[s[i] & 0xf];
            }

            n = 1;
            continue;
        }

        memcpy(p, s + i, n);
        p += n;
    }

    *p = '\0';

    return out;
}


/* a name as valid UTF-8: bytes that are not UTF-8 become U+FFFD */
char *
tgc_name_utf8(const char *name, size_t len)
{
    char                 *out, *p;
    long                  cp;
    size_t                i, n;
    const unsigned char  *s;

    out = malloc(3 * len + 1);
    if (out == NULL) {
        return NULL;
    }

    s = (const unsigned char *) name;
    p = out;

    for (i = 0; i < len; i += n) {
        cp = tgc_utf8(s + i, len - i, &n);

        if (cp < 0) {
            memcpy(p, "\xef\xbf\xbd", 3);
            p += 3;
            n = 1;
            continue;
        }

        memcpy(p, s + i, n);
        p += n;
    }

    *p = '\0';

    return out;
}


/* dollars as a JSON number */
json_t *
tgc_json_usd(int64_t micro)
{
    return json_real((double) micro / 1e6);
}


json_t *
tgc_json_name(const char *name, size_t len)
{
    char    *s;
    json_t  *v;

    s = tgc_name_utf8(name, len);
    if (s == NULL) {
        return NULL;
    }

    v = json_string(s);
    free(s);

    return v;
}


void
tgc_json_set_name(json_t *obj, const char *name, size_t len, json_t *value)
{
    char  *s;

    s = tgc_name_utf8(name, len);
    if (s == NULL) {
        json_decref(value);
        return;
    }

    json_object_set_new(obj, s, value);
    free(s);
}


int
tgc_json_print(json_t *v)
{
    int  rc;

    if (v == NULL) {
        tgc_error("out of memory");
        return TGC_ERROR;
    }

    rc = json_dumpf(v, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    json_decref(v);

    if (rc != 0) {
        tgc_error("cannot write the JSON output");
        return TGC_ERROR;
    }

    fputc('\n', stdout);

    return TGC_OK;
}


/* text for HTML: & < > " ' escaped; control bytes and non-UTF-8: U+FFFD */
void
tgc_html_escape(FILE *f, const char *s, size_t len)
{
    long                  cp;
    size_t                i, n;
    const unsigned char  *u;

    u = (const unsigned char *) s;

    for (i = 0; i < len; i += n) {
        cp = tgc_utf8(u + i, len - i, &n);

        if (cp < 0) {
            n = 1;
            fputs("&#xFFFD;", f);
            continue;
        }

        switch (cp) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            if (tgc_control(cp)) {
                fputs("&#xFFFD;", f);

            } else {
                fwrite(u + i, 1, n, f);
            }
        }
    }
}


/* tables */

void
tgc_table_init(tgc_table_t *t, size_t ncols, const char **head,
    const char *align)
{
    memset(t, 0, sizeof(tgc_table_t));
    t->ncols = ncols;
    t->head = head;
    t->align = align;
}


/* ncols strings, copied */
void
tgc_table_row(tgc_table_t *t, ...)
{
    size_t       i, cap;
    char       **cells;
    va_list      ap;
    const char  *s;

    if (t->nrows == t->cap) {
        cap = t->cap ? t->cap * 2 : 16;
        cells = realloc(t->cells, cap * t->ncols * sizeof(char *));
        if (cells == NULL) {
            return;
        }

        t->cells = cells;
        t->cap = cap;
    }

    va_start(ap, t);

    for (i = 0; i < t->ncols; i++) {
        s = va_arg(ap, const char *);
        t->cells[t->nrows * t->ncols + i] = strdup(s ? s : "");
    }

    va_end(ap);

    t->nrows++;
}


/* characters on the screen: UTF-8 continuation bytes do not count */
static size_t
tgc_width(const char *s)
{
    size_t  n;

    for (n = 0; *s; s++) {
        if (((unsigned char) *s & 0xc0) != 0x80) {
            n++;
        }
    }

    return n;
}


static void
tgc_table_line(tgc_table_t *t, FILE *f, const char *indent,
    const char **cells, const size_t *w)
{
    size_t       i, pad, last;
    const char  *s;

    /* no trailing blanks: the line ends at its last non-empty cell */
    for (last = t->ncols; last > 1; last--) {
        if (cells[last - 1] && cells[last - 1][0]) {
            break;
        }
    }

    fputs(indent, f);

    for (i = 0; i < last; i++) {
        s = cells[i] ? cells[i] : "";
        pad = w[i] - tgc_width(s);

        if (t->align[i] == 'r') {
            fprintf(f, "%*s%s", (int) pad, "", s);

        } else if (i + 1 < last) {
            fprintf(f, "%s%*s", s, (int) pad, "");

        } else {
            fputs(s, f);
        }

        if (i + 1 < last) {
            fputs("  ", f);
        }
    }

    fputc('\n', f);
}


void
tgc_table_print(tgc_table_t *t, FILE *f, const char *indent)
{
    size_t   i, j, n, *w;

    w = calloc(t->ncols, sizeof(size_t));
    if (w == NULL) {
        return;
    }

    for (j = 0; j < t->ncols; j++) {
        w[j] = tgc_width(t->head[j]);
    }

    for (i = 0; i < t->nrows; i++) {
        for (j = 0; j < t->ncols; j++) {
            n = tgc_width(t->cells[i * t->ncols + j]
                          ? t->cells[i * t->ncols + j] : "");
            if (n > w[j]) {
                w[j] = n;
            }
        }
    }

    tgc_table_line(t, f, indent, t->head, w);

    for (i = 0; i < t->nrows; i++) {
        tgc_table_line(t, f, indent,
                       (const char **) &t->cells[i * t->ncols], w);
    }

    free(w);
}


void
tgc_table_free(tgc_table_t *t)
{
    size_t  i;

    for (i = 0; i < t->nrows * t->ncols; i++) {
        free(t->cells[i]);
    }

    free(t->cells);
    t->cells = NULL;
    t->nrows = 0;
    t->cap = 0;
}
