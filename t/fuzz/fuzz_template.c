/*
 * tg_template_parse() and tg_template_expand().  Input: a byte for the
 * number of captures, a byte for the output buffer size, the target line,
 * then the subject (the requested model); capture offsets come from a
 * generator seeded by the subject, always inside it, as PCRE2 gives them.
 */

#include "fuzz.h"
#include "tg_template.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int            i, ncaps, caps[20], a, b, t;
    char          *tpl, *subject, *buf;
    long           n;
    size_t         len, tlen, slen, bufsize, want;
    uint32_t       seed;
    const char    *line;
    fuzz_input_t   in;
    tg_template_t  tt;

    in.p = data;
    in.len = size;

    ncaps = fuzz_byte(&in) % 11;
    bufsize = fuzz_byte(&in);
    bufsize = bufsize ? bufsize : 256;

    line = fuzz_line(&in, &tlen);
    tpl = fuzz_dup(line, tlen);

    slen = in.len;
    subject = fuzz_dup(in.p, slen);

    seed = (uint32_t) slen * 2654435761u;
    for (len = 0; len < slen; len++) {
        seed = seed * 31 + (uint8_t) subject[len];
    }

    for (i = 0; i < ncaps; i++) {
        if (i > 0 && fuzz_rand(&seed) % 4 == 0) {
            caps[2 * i] = -1;
            caps[2 * i + 1] = -1;
            continue;
        }

        a = (int) (fuzz_rand(&seed) % (slen + 1));
        b = (int) (fuzz_rand(&seed) % (slen + 1));

        if (a > b) {
            t = a;
            a = b;
            b = t;
        }

        caps[2 * i] = a;
        caps[2 * i + 1] = b;
    }

    if (tg_template_parse(tpl, tlen, &tt) != 0) {
        goto done;
    }

    fuzz_assert(tt.nparts >= 1 && tt.nparts <= TG_TEMPLATE_MAX_PARTS);
    fuzz_assert(tt.max_capture >= -1 && tt.max_capture <= 9);

    want = 0;

    for (i = 0; i < tt.nparts; i++) {
        if (tt.parts[i].text != NULL) {
            fuzz_assert(tt.parts[i].text >= tpl
                        && tt.parts[i].text + tt.parts[i].len <= tpl + tlen);
            want += tt.parts[i].len;

        } else {
            fuzz_assert(tt.parts[i].capture >= 0
                        && tt.parts[i].capture <= tt.max_capture);

            if (tt.parts[i].capture < ncaps
                && caps[2 * tt.parts[i].capture] >= 0)
            {
                want += caps[2 * tt.parts[i].capture + 1]
                        - caps[2 * tt.parts[i].capture];
            }
        }
    }

    /* exactly bufsize bytes: ASan sees a write past them */
    buf = malloc(bufsize);
    fuzz_assert(buf != NULL);

    n = tg_template_expand(&tt, subject, caps, ncaps, buf, bufsize);

    if (want <= bufsize) {
        fuzz_assert(n == (long) want);

    } else {
        fuzz_assert(n == -1);
    }

    free(buf);

done:

    free(tpl);
    free(subject);

    return 0;
}
