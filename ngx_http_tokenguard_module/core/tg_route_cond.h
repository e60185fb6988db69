/*
 * Route conditions ("prompt~REGEX", "prompt_tokens<N", "budget>=P%",
 * "tools", "!stream" ...): parsing and evaluation of everything but the
 * regex match, which the caller does with its own regex engine.
 * Pure C, no nginx headers.
 */

#ifndef TG_ROUTE_COND_H
#define TG_ROUTE_COND_H

#include <stddef.h>
#include <stdint.h>


typedef enum {
    TG_COND_PROMPT = 0,     /* prompt~REGEX: the caller matches */
    TG_COND_TOKENS_LT,
    TG_COND_TOKENS_GT,
    TG_COND_BUDGET_GE,      /* number is a percentage, 0..100 */
    TG_COND_TOOLS,
    TG_COND_STREAM,
    TG_COND_SANDBOX
} tg_cond_type_e;


typedef struct {
    tg_cond_type_e  type;
    int             negate;         /* "!tools" */
    int64_t         number;
    const char     *regex;          /* prompt~: points into the input */
    size_t          regex_len;
} tg_cond_t;


/* what a request is, as far as conditions are concerned */
typedef struct {
    int64_t         prompt_tokens;
    int             budget_pct;     /* -1: not known (no ledger read) */
    int             tools;
    int             stream;
    int             sandbox;
} tg_cond_facts_t;


/* returns 0, or -1 with a message in err */
int tg_cond_parse(const char *s, size_t len, tg_cond_t *c, char *err,
    size_t errlen);

/* 1 if a non-regex condition holds; TG_COND_PROMPT is the caller's */
int tg_cond_holds(const tg_cond_t *c, const tg_cond_facts_t *f);

#endif /* TG_ROUTE_COND_H */
