/*
 * Refusals: code, HTTP status, $tokenguard_decision, and the error body in
 * the shape the caller's SDK expects from its provider.
 * Pure C (jansson), no nginx headers.
 */

#ifndef TG_REFUSAL_H
#define TG_REFUSAL_H

#include <stddef.h>

#include "tg_endpoint.h"


typedef enum {
    TG_REFUSE_IDENTITY = 0,
    TG_REFUSE_INVALID,
    TG_REFUSE_TOO_LARGE,
    TG_REFUSE_MODEL,
    TG_REFUSE_PROMPT,
    TG_REFUSE_BUDGET,
    TG_REFUSE_SANDBOX,
    TG_REFUSE_STORE,
    TG_REFUSE_ENDPOINT
} tg_refusal_e;


typedef struct {
    const char  *code;              /* X-TokenGuard-Code */
    int          status;
    const char  *decision;          /* $tokenguard_decision */
    const char  *anthropic_type;
    const char  *gemini_status;
} tg_refusal_info_t;


const tg_refusal_info_t *tg_refusal_info(tg_refusal_e r);

/* a malloc()ed JSON body, NULL when out of memory */
char *tg_refusal_body(tg_provider_e provider, tg_refusal_e r,
    const char *message, size_t *len);

#endif /* TG_REFUSAL_H */
