#include <string.h>
#include <strings.h>

#include "tg_slot.h"


unsigned
tg_slot_crc16(const void *buf, size_t len)
{
    int             i;
    unsigned        crc;
    const uint8_t  *p = buf;

    crc = 0;

    while (len--) {
        crc ^= (unsigned) *p++ << 8;

        for (i = 0; i < 8; i++) {
            crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) : (crc << 1);
        }

        crc &= 0xffff;
    }

    return crc;
}


unsigned
tg_slot_of_key(const void *key, size_t len)
{
    const char  *k = key, *open, *close;

    open = memchr(k, '{', len);

    if (open != NULL) {
        close = memchr(open + 1, '}', len - (open + 1 - k));

        /* "{}" hashes the whole key, as Redis does */
        if (close != NULL && close > open + 1) {
            return tg_slot_crc16(open + 1, close - open - 1) & (TG_SLOTS - 1);
        }
    }

    return tg_slot_crc16(k, len) & (TG_SLOTS - 1);
}


/* one "$L\r\ndata\r\n" at *p; -1 if malformed */
static int
tg_slot_bulk(const char **p, const char *end, const char **data, size_t *len)
{
    size_t       n;
    const char  *q = *p;

    if (q >= end || *q++ != '$') {
        return -1;
    }

    n = 0;

    while (q < end && *q >= '0' && *q <= '9') {
        n = n * 10 + (*q++ - '0');

        if (n > (size_t) (end - *p)) {
            return -1;
        }
    }

    if (end - q < 2 || q[0] != '\r' || q[1] != '\n') {
        return -1;
    }

    q += 2;

    if ((size_t) (end - q) < n + 2 || q[n] != '\r' || q[n + 1] != '\n') {
        return -1;
    }

    *data = q;
    *len = n;
    *p = q + n + 2;

    return 0;
}


static int
tg_slot_is(const char *s, size_t len, const char *name)
{
    return strlen(name) == len && strncasecmp(s, name, len) == 0;
}


int
tg_slot_of_command(const char *cmd, size_t len)
{
    int          slot, s;
    long         argc, i, nkeys;
    size_t       alen, nlen;
    const char  *p, *end, *arg, *name;

    static const char  *keyless[] = {
        "AUTH", "SELECT", "SCRIPT", "PING", "CLUSTER", "ASKING", "INFO",
        "HELLO", NULL
    };

    p = cmd;
    end = cmd + len;

    if (p >= end || *p++ != '*') {
        return TG_SLOT_INVALID;
    }

    argc = 0;

    while (p < end && *p >= '0' && *p <= '9' && argc < 1000000) {
        argc = argc * 10 + (*p++ - '0');
    }

    if (argc < 1 || end - p < 2 || p[0] != '\r' || p[1] != '\n') {
        return TG_SLOT_INVALID;
    }

    p += 2;

    if (tg_slot_bulk(&p, end, &name, &nlen) != 0) {
        return TG_SLOT_INVALID;
    }

    for (i = 0; keyless[i]; i++) {
        if (tg_slot_is(name, nlen, keyless[i])) {
            return TG_SLOT_NONE;
        }
    }

    if (!tg_slot_is(name, nlen, "EVALSHA") && !tg_slot_is(name, nlen, "EVAL"))
    {
        if (argc < 2 || tg_slot_bulk(&p, end, &arg, &alen) != 0) {
            return TG_SLOT_INVALID;
        }

        return tg_slot_of_key(arg, alen);
    }

    /* EVALSHA sha nkeys key... arg... */

    if (argc < 3 || tg_slot_bulk(&p, end, &arg, &alen) != 0
        || tg_slot_bulk(&p, end, &arg, &alen) != 0)
    {
        return TG_SLOT_INVALID;
    }

    nkeys = 0;

    for (i = 0; i < (long) alen; i++) {
        if (arg[i] < '0' || arg[i] > '9' || nkeys > argc) {
            return TG_SLOT_INVALID;
        }

        nkeys = nkeys * 10 + (arg[i] - '0');
    }

    if (alen == 0 || nkeys > argc - 3) {
        return TG_SLOT_INVALID;
    }

    slot = TG_SLOT_NONE;

    for (i = 0; i < nkeys; i++) {
        if (tg_slot_bulk(&p, end, &arg, &alen) != 0) {
            return TG_SLOT_INVALID;
        }

        s = tg_slot_of_key(arg, alen);

        if (slot != TG_SLOT_NONE && s != slot) {
            return TG_SLOT_CROSS;
        }

        slot = s;
    }

    return slot;
}


void
tg_slot_map_init(tg_slot_map_t *map)
{
    memset(map->owner, TG_SLOT_UNKNOWN, sizeof(map->owner));
}


int
tg_slot_map_set(tg_slot_map_t *map, long start, long end, long node)
{
    if (start < 0 || end >= TG_SLOTS || start > end
        || node < 0 || node >= TG_SLOT_NODES_MAX)
    {
        return -1;
    }

    memset(&map->owner[start], (int) node, end - start + 1);

    return 0;
}


unsigned
tg_slot_map_covered(const tg_slot_map_t *map)
{
    unsigned  i, n;

    n = 0;

    for (i = 0; i < TG_SLOTS; i++) {
        n += (map->owner[i] != TG_SLOT_UNKNOWN);
    }

    return n;
}


int
tg_slot_redirect(const char *err, size_t len, int *ask, unsigned *slot,
    const char **addr, size_t *addr_len)
{
    size_t       skip;
    unsigned     n;
    const char  *p, *end;

    if (len > 6 && memcmp(err, "MOVED ", 6) == 0) {
        *ask = 0;
        skip = 6;

    } else if (len > 4 && memcmp(err, "ASK ", 4) == 0) {
        *ask = 1;
        skip = 4;

    } else {
        return -1;
    }

    p = err + skip;
    end = err + len;
    n = 0;

    if (p == end || *p < '0' || *p > '9') {
        return -1;
    }

    while (p < end && *p >= '0' && *p <= '9') {
        n = n * 10 + (*p++ - '0');

        if (n >= TG_SLOTS) {
            return -1;
        }
    }

    if (p == end || *p++ != ' ' || p == end) {
        return -1;
    }

    *slot = n;
    *addr = p;
    *addr_len = end - p;

    return memchr(p, ' ', end - p) ? -1 : 0;
}
