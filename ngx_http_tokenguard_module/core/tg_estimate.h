/*
 * A tokenizer-free estimate of how many tokens a text is.
 * Pure C, no nginx headers.
 */

#ifndef TG_ESTIMATE_H
#define TG_ESTIMATE_H

#include <stddef.h>
#include <stdint.h>


/* tokens of UTF-8 text, rounded up; 0 for an empty text */
int64_t tg_estimate_text_tokens(const char *text, size_t len);

/* overhead that chat formats add per message (role markers etc.) */
#define TG_ESTIMATE_PER_MESSAGE  4

#endif /* TG_ESTIMATE_H */
