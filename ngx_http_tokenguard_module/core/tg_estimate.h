/*
 * A tokenizer-free estimate of how many tokens a text is.
 * Pure C, no nginx headers.
 */

#ifndef TG_ESTIMATE_H
#define TG_ESTIMATE_H

#include <stddef.h>
#include <stdint.h>


/* a text read in pieces: ASCII bytes and non-ASCII characters so far */
typedef struct {
    int64_t     ascii;
    int64_t     other;
} tg_estimate_t;


void tg_estimate_add(tg_estimate_t *e, const char *text, size_t len);

/* the same byte by byte, what machines without SSE2 run (and the tests) */
void tg_estimate_add_portable(tg_estimate_t *e, const char *text,
    size_t len);

/* tokens of the pieces added, rounded up once */
#define tg_estimate_tokens(e)   (((e)->ascii + 3) / 4 + (e)->other)

/* tokens of UTF-8 text, rounded up; 0 for an empty text */
int64_t tg_estimate_text_tokens(const char *text, size_t len);

/* overhead that chat formats add per message (role markers etc.) */
#define TG_ESTIMATE_PER_MESSAGE  4

#endif /* TG_ESTIMATE_H */
