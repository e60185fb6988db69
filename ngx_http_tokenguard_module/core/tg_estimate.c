/*
 * BPE tokenizers of the major providers average about four bytes of
 * English per token; scripts outside ASCII (CJK, Cyrillic, emoji) come
 * closer to one token per character.  The estimate leans high on purpose:
 * it is used to reserve a worst case, never to bill.
 */

#include "tg_estimate.h"


int64_t
tg_estimate_text_tokens(const char *text, size_t len)
{
    size_t          i;
    int64_t         ascii, other;
    unsigned char   c;

    ascii = 0;
    other = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) text[i];

        if (c < 0x80) {
            ascii++;

        } else if ((c & 0xc0) != 0x80) {
            /* a lead byte starts one non-ASCII character */
            other++;
        }
    }

    return (ascii + 3) / 4 + other;
}
