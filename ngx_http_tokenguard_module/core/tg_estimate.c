/*
 * BPE tokenizers of the major providers average about four bytes of
 * English per token; scripts outside ASCII (CJK, Cyrillic, emoji) come
 * closer to one token per character.  The estimate leans high on purpose:
 * it is used to reserve a worst case, never to bill.
 */

#include "tg_estimate.h"


void
tg_estimate_add(tg_estimate_t *e, const char *text, size_t len)
{
    size_t          i;
    unsigned char   c;

    for (i = 0; i < len; i++) {
        c = (unsigned char) text[i];

        if (c < 0x80) {
            e->ascii++;

        } else if ((c & 0xc0) != 0x80) {
            /* a lead byte starts one non-ASCII character */
            e->other++;
        }
    }
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
