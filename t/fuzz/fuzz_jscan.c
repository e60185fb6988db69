/*
 * fuzz_jscan: the streaming JSON scan of response bodies and events.
 * Fed whole, split at random and byte by byte, it must end in the same
 * state with the same values kept, each within its bound; ASan checks
 * that the kept bytes stay inside their buffers.
 */

#include "fuzz.h"
#include "tg_jscan.h"


static const char *const  fuzz_paths[2][5] = {
    { "usage", "choices.*", "choices.*.finish_reason", "type", NULL },
    { "usageMetadata", "*.usageMetadata", "response.usage", "*", NULL }
};

static const size_t  fuzz_max[2][4] = {
    { 64, 0, 8, 16 },
    { 8192, 3, 1, 32 }
};


static void
fuzz_scan(tg_jscan_t *js, unsigned set, const char *p, size_t len,
    uint32_t seed, int bytewise)
{
    size_t  n;

    tg_jscan_init(js, fuzz_paths[set], fuzz_max[set]);

    while (len) {
        if (bytewise) {
            n = 1;

        } else if (seed) {
            n = 1 + fuzz_rand(&seed) % 64;
            n = n < len ? n : len;

        } else {
            n = len;
        }

        tg_jscan_feed(js, p, n);
        p += n;
        len -= n;
    }
}


static void
fuzz_same(tg_jscan_t *a, tg_jscan_t *b)
{
    size_t       i, la, lb;
    const char  *va, *vb;

    fuzz_assert(a->done == b->done && a->bad == b->bad
                && a->depth == b->depth);

    for (i = 0; i < a->nslots; i++) {
        fuzz_assert(a->slot[i].seen == b->slot[i].seen
                    && a->slot[i].whole == b->slot[i].whole);

        va = tg_jscan_value(a, i, &la);
        vb = tg_jscan_value(b, i, &lb);

        fuzz_assert((va == NULL) == (vb == NULL));

        if (va) {
            fuzz_assert(la == lb && la <= a->slot[i].max
                        && memcmp(va, vb, la) == 0);
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char          *doc;
    unsigned       set;
    uint32_t       seed;
    tg_jscan_t     whole, split, bytes;
    fuzz_input_t   in;

    in.p = data;
    in.len = size;

    set = fuzz_byte(&in) & 1;
    seed = fuzz_byte(&in) << 8;
    seed |= fuzz_byte(&in);
    seed |= 1;

    doc = fuzz_dup(in.p, in.len);

    fuzz_scan(&whole, set, doc, in.len, 0, 0);
    fuzz_scan(&split, set, doc, in.len, seed, 0);
    fuzz_scan(&bytes, set, doc, in.len, 0, 1);

    fuzz_same(&whole, &split);
    fuzz_same(&whole, &bytes);

    /* the next document after a reset starts clean */
    tg_jscan_reset(&whole);
    fuzz_assert(!whole.done && !whole.bad && whole.depth == 0);

    tg_jscan_free(&whole);
    tg_jscan_free(&split);
    tg_jscan_free(&bytes);
    free(doc);

    return 0;
}
