/*
 * What the provider reads is what the policy reads: every string of a
 * request body, as the JSON parser decoded it, collected in one pass over
 * the parsed tree for tokenguard_deny_prompt, tokenguard_classify and
 * prompt~, with the estimate of the tokens the provider will count.
 * Pure C, no nginx headers.
 */

#ifndef TG_SCAN_H
#define TG_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "tg_estimate.h"
#include "tg_json.h"


typedef struct {
    char           *text;       /* malloc()ed, NUL-terminated, a part a
                                   line; NULL when the body has none */
    size_t          len;
    size_t          size;
    tg_estimate_t   est;        /* what the provider reads as text */
    int64_t         media;      /* binary parts left out of the text */
    int             nomem;
} tg_scan_t;


/*
 * Adds the text of the body whose root is root to sc (zeroed first; its
 * text is the caller's to free).  Returns 0, or -1 when out of memory.
 * The text is never longer than the body: a text of the body's size plus
 * 2 bytes, allocated before, is never moved.
 */
int tg_scan_body(tg_scan_t *sc, const tg_json_t *root);

/*
 * Decodes the JSON escapes (\" \\ \/ \b \f \n \r \t \uXXXX) anywhere in
 * s, in place, again while some are left (an escaped JSON document inside
 * another), at most 4 times.  Returns the new length.
 */
size_t tg_scan_unescape(char *s, size_t len);

/* "text/...", JSON, XML, YAML, scripts: media a model reads as text */
int tg_scan_text_media(const char *type, size_t len);

#endif /* TG_SCAN_H */
