/*
 * Budget limits as written in the configuration: "1500usd", "0.25usd",
 * "2000000tokens", "500requests".  Money is integer micro-USD.
 * Pure C, no nginx headers.
 */

#ifndef TG_LIMIT_H
#define TG_LIMIT_H

#include <stddef.h>
#include <stdint.h>


typedef enum {
    TG_LIMIT_USD = 0,
    TG_LIMIT_TOKENS,
    TG_LIMIT_REQUESTS
} tg_limit_kind_e;


typedef enum {
    TG_PERIOD_MONTH = 0,
    TG_PERIOD_DAY
} tg_period_e;


typedef struct {
    tg_limit_kind_e  kind;
    int64_t          value;         /* micro-USD, tokens or requests */
} tg_limit_t;


/* returns 0, or -1 if s is not a limit */
int tg_limit_parse(const char *s, size_t len, tg_limit_t *limit);

/* "month" or "day"; returns 0 or -1 */
int tg_period_parse(const char *s, size_t len, tg_period_e *period);

/* "usd", "tokens", "requests" */
const char *tg_limit_kind_name(tg_limit_kind_e kind);

#endif /* TG_LIMIT_H */
