#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_command.h"


#define TG_COMMAND_FIRST  512


void
tg_command_init(tg_command_t *c, size_t max)
{
    c->buf = NULL;
    c->len = TG_COMMAND_HEAD;
    c->size = 0;
    c->max = max ? max : TG_COMMAND_MAX;
    c->argc = 0;
    c->error = TG_COMMAND_OK;
}


/* room for n more bytes, or the builder fails for good */
static int
tg_command_room(tg_command_t *c, size_t n)
{
    char    *p;
    size_t   size;

    if (c->error != TG_COMMAND_OK) {
        return -1;
    }

    /* written this way, a huge n cannot wrap the sum */
    if (n > c->max || c->len > c->max - n) {
        c->error = TG_COMMAND_TOO_LONG;
        return -1;
    }

    if (c->len + n <= c->size) {
        return 0;
    }

    size = c->size ? c->size : TG_COMMAND_FIRST;

    while (size < c->len + n) {
        size *= 2;
    }

    if (size > c->max) {
        size = c->max;
    }

    p = realloc(c->buf, size);
    if (p == NULL) {
        c->error = TG_COMMAND_NOMEM;
        return -1;
    }

    c->buf = p;
    c->size = size;

    return 0;
}


/* the decimal digits of v at out, their count: what "%llu" writes */
static size_t
tg_command_digits(char *out, unsigned long long v)
{
    char    tmp[20];
    size_t  n, i;

    n = 0;

    do {
        tmp[n++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    for (i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }

    return n;
}


/*
 * "$LEN\r\n" (or "*ARGC\r\n"): at most 23 bytes.  No snprintf: a lease
 * call has hundreds of arguments, and libc's printf machinery cost more
 * than the rest of building them.
 */
static size_t
tg_command_head(char out[32], char type, size_t len)
{
    size_t  n;

    out[0] = type;
    n = 1 + tg_command_digits(out + 1, len);
    out[n++] = '\r';
    out[n++] = '\n';

    return n;
}


/* one argument of the pieces' total length, the pieces in order */
static void
tg_command_pieces(tg_command_t *c, const void **data, const size_t *len,
    int n)
{
    int     i;
    char    head[32];
    size_t  total, hlen;

    total = 0;

    for (i = 0; i < n; i++) {
        if (len[i] > c->max) {
            c->error = TG_COMMAND_TOO_LONG;
            return;
        }

        total += len[i];
    }

    hlen = tg_command_head(head, '$', total);

    if (total > c->max || tg_command_room(c, hlen + total + 2) != 0) {
        if (c->error == TG_COMMAND_OK) {
            c->error = TG_COMMAND_TOO_LONG;
        }

        return;
    }

    memcpy(c->buf + c->len, head, hlen);
    c->len += hlen;

    for (i = 0; i < n; i++) {
        if (len[i]) {
            memcpy(c->buf + c->len, data[i], len[i]);
            c->len += len[i];
        }
    }

    c->buf[c->len++] = '\r';
    c->buf[c->len++] = '\n';
    c->argc++;
}


void
tg_command_arg(tg_command_t *c, const void *data, size_t len)
{
    tg_command_pieces(c, &data, &len, 1);
}


void
tg_command_str(tg_command_t *c, const char *s)
{
    tg_command_arg(c, s, strlen(s));
}


void
tg_command_int(tg_command_t *c, int64_t v)
{
    char    num[24];
    size_t  n;

    /* the magnitude as unsigned: INT64_MIN has no positive int64_t */
    n = 0;

    if (v < 0) {
        num[n++] = '-';
        n += tg_command_digits(num + 1, 0ULL - (unsigned long long) v);

    } else {
        n = tg_command_digits(num, (unsigned long long) v);
    }

    tg_command_arg(c, num, n);
}


void
tg_command_key(tg_command_t *c, const char *prefix, size_t prefix_len,
    const char *suffix)
{
    const void  *data[3];
    size_t       len[3];

    data[0] = prefix;
    len[0] = prefix_len;
    data[1] = ":";
    len[1] = 1;
    data[2] = suffix;
    len[2] = strlen(suffix);

    tg_command_pieces(c, data, len, 3);
}


long
tg_command_finish(tg_command_t *c, char **out)
{
    char    head[32];
    size_t  hlen;

    if (c->error == TG_COMMAND_OK && c->argc == 0) {
        c->error = TG_COMMAND_EMPTY;
    }

    if (c->error != TG_COMMAND_OK || tg_command_room(c, 0) != 0) {
        tg_command_free(c);
        return -1;
    }

    hlen = tg_command_head(head, '*', (size_t) c->argc);

    /* the arguments start at TG_COMMAND_HEAD; the header goes before */
    memcpy(c->buf, head, hlen);
    memmove(c->buf + hlen, c->buf + TG_COMMAND_HEAD,
            c->len - TG_COMMAND_HEAD);

    *out = c->buf;
    hlen = c->len - TG_COMMAND_HEAD + hlen;

    c->buf = NULL;
    tg_command_init(c, c->max);

    return (long) hlen;
}


void
tg_command_free(tg_command_t *c)
{
    tg_command_error_e  error;

    error = c->error;

    free(c->buf);
    c->buf = NULL;
    tg_command_init(c, c->max);

    /* the reason stays readable after a failed finish */
    c->error = error;
}


const char *
tg_command_strerror(tg_command_error_e error)
{
    switch (error) {

    case TG_COMMAND_OK:
        return "no error";

    case TG_COMMAND_TOO_LONG:
        return "the command would pass its size bound";

    case TG_COMMAND_EMPTY:
        return "the command has no argument";

    default:
        return "out of memory";
    }
}
