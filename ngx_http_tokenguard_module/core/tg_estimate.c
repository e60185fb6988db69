/*
 * BPE tokenizers of the major providers average about four bytes of
 * English per token; scripts outside ASCII (CJK, Cyrillic, emoji) come
 * closer to one token per character.  The estimate leans high on purpose:
 * it is used to reserve a worst case, never to bill.
 *
 * Every prompt byte passes here, so the counting goes 16 bytes at a time
 * with SSE2 where the compiler has it (always on x86-64); the portable
 * loop does the rest and is what other machines run.
 */

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <string.h>

#include "tg_estimate.h"


/* how many of the 8 bytes of a word have their high bit in mask set */
#define tg_estimate_count(mask)                                               \
    ((int64_t) ((((mask) >> 7) * 0x0101010101010101ULL) >> 56))


/*
 * Eight bytes at a time: the high bit marks non-ASCII bytes, the high bit
 * without the next one marks continuation bytes (0x80-0xbf), and a
 * multiplication adds up the marks of a word.
 */
void
tg_estimate_add_portable(tg_estimate_t *e, const char *text, size_t len)
{
    size_t          i;
    int64_t         high, cont;
    uint64_t        w, h;
    unsigned char   c;

    const uint64_t  highs = 0x8080808080808080ULL;

    high = 0;
    cont = 0;

    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&w, text + i, 8);

        h = w & highs;
        high += tg_estimate_count(h);
        cont += tg_estimate_count(h & ~(w << 1));
    }

    e->ascii += (int64_t) i - high;
    e->other += high - cont;

    for ( /* void */ ; i < len; i++) {
        c = (unsigned char) text[i];

        if (c < 0x80) {
            e->ascii++;

        } else if ((c & 0xc0) != 0x80) {
            /* a lead byte starts one non-ASCII character */
            e->other++;
        }
    }
}


#ifdef __SSE2__

/*
 * Counts bytes >= 0x80 and continuation bytes (0x80-0xbf) in byte lanes,
 * folded into 64-bit sums before a lane can pass 255.  Returns the bytes
 * done, a multiple of 16.
 */
static size_t
tg_estimate_sse2(tg_estimate_t *e, const char *text, size_t len)
{
    size_t    i, k, blocks;
    int64_t   high, cont;
    __m128i   v, zero, lead, acc_high, acc_cont, sum;

    zero = _mm_setzero_si128();
    lead = _mm_set1_epi8((char) 0xc0);
    blocks = len / 16;
    high = 0;
    cont = 0;
    i = 0;

    while (i < blocks) {
        acc_high = zero;
        acc_cont = zero;

        for (k = 0; k < 255 && i < blocks; k++, i++) {
            v = _mm_loadu_si128((const __m128i *) (text + 16 * i));

            /* the compares give -1 per matching lane: subtract to count */
            acc_high = _mm_sub_epi8(acc_high, _mm_cmplt_epi8(v, zero));
            acc_cont = _mm_sub_epi8(acc_cont, _mm_cmplt_epi8(v, lead));
        }

        sum = _mm_sad_epu8(acc_high, zero);
        high += _mm_cvtsi128_si32(sum)
                + _mm_cvtsi128_si32(_mm_srli_si128(sum, 8));

        sum = _mm_sad_epu8(acc_cont, zero);
        cont += _mm_cvtsi128_si32(sum)
                + _mm_cvtsi128_si32(_mm_srli_si128(sum, 8));
    }

    e->ascii += (int64_t) (16 * blocks) - high;
    e->other += high - cont;

    return 16 * blocks;
}

#endif


void
tg_estimate_add(tg_estimate_t *e, const char *text, size_t len)
{
    size_t  done;

    done = 0;

#ifdef __SSE2__
    done = tg_estimate_sse2(e, text, len);
#endif

    tg_estimate_add_portable(e, text + done, len - done);
}


int64_t
tg_estimate_text_tokens(const char *text, size_t len)
{
    tg_estimate_t  e;

    e.ascii = 0;
    e.other = 0;

    tg_estimate_add(&e, text, len);

    return tg_estimate_tokens(&e);
}
