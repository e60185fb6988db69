#include <string.h>

#include "tap.h"
#include "tg_estimate.h"


void
test_estimate(void)
{
    is_int(tg_estimate_text_tokens("", 0), 0, "estimate: empty");
    is_int(tg_estimate_text_tokens("abcd", 4), 1, "estimate: 4 ascii bytes");
    is_int(tg_estimate_text_tokens("abcde", 5), 2, "estimate: rounds up");
    /* three CJK characters, 9 bytes */
    is_int(tg_estimate_text_tokens("\xe4\xbd\xa0\xe5\xa5\xbd\xe5\x90\x97", 9),
           3, "estimate: one token per non-ASCII character");
}


/* byte by byte: what both ways of counting must agree with */
static void
estimate_slow(tg_estimate_t *e, const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] < 0x80) {
            e->ascii++;

        } else if (((unsigned char) s[i] & 0xc0) != 0x80) {
            e->other++;
        }
    }
}


/* the SSE2 and the word-at-a-time counting agree on any bytes and length */
void
test_estimate_paths(void)
{
    int             same;
    size_t          len, off;
    unsigned int    seed, i;
    tg_estimate_t   a, b, r;
    static char     buf[9000];

    seed = 14;

    for (i = 0; i < sizeof(buf); i++) {
        seed = seed * 1103515245 + 12345;
        /* mostly ASCII, some of every kind of UTF-8 byte */
        buf[i] = (char) ((seed >> 16) % 4 ? (seed >> 8) & 0x7f
                                          : 0x80 | ((seed >> 8) & 0x7f));
    }

    same = 1;

    for (len = 0; len < sizeof(buf); len += len < 100 ? 1 : 97) {
        for (off = 0; off < 3; off++) {
            a.ascii = 0; a.other = 0;
            b.ascii = 0; b.other = 0;
            r.ascii = 0; r.other = 0;

            tg_estimate_add(&a, buf + off, len - (len > off ? off : len));
            tg_estimate_add_portable(&b, buf + off,
                                     len - (len > off ? off : len));

            estimate_slow(&r, buf + off, len - (len > off ? off : len));

            if (a.ascii != r.ascii || a.other != r.other
                || b.ascii != r.ascii || b.other != r.other)
            {
                same = 0;
            }
        }
    }

    ok(same, "estimate: the fast and the portable counting agree");

    /* 5000 lead bytes of 2-byte characters: lanes past 255 must fold */
    memset(buf, '\xc3', 5000);
    a.ascii = 0; a.other = 0;
    tg_estimate_add(&a, buf, 5000);
    is_int(a.other, 5000, "estimate: long non-ASCII runs counted");
    is_int(a.ascii, 0, "estimate: no ASCII in them");
}
