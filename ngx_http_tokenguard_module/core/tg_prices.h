/*
 * The price table: USD per 1M tokens (input, cached input, output) by
 * model, from a JSON file.  USD per 1M tokens is micro-USD per token.
 * Pure C (jansson), no nginx headers.
 *
 *   {"default": {"input": 1, "output": 4},              (optional)
 *    "models": {"gpt-4o": {"input": 2.5, "cached_input": 1.25,
 *                           "output": 10}, ...}}
 *
 * "cached_input" and "cache_write" (Anthropic's cache creation) default
 * to "input".
 */

#ifndef TG_PRICES_H
#define TG_PRICES_H

#include <stddef.h>
#include <stdint.h>


typedef struct {
    double  input;
    double  cached_input;       /* read from a prompt cache; = input */
    double  cache_write;        /* written to a prompt cache; = input */
    double  output;
} tg_price_t;


typedef struct tg_prices_s  tg_prices_t;


/* NULL with a message in err when the file or its content is bad */
tg_prices_t *tg_prices_load(const char *path, char *err, size_t errlen);
tg_prices_t *tg_prices_parse(const char *json, size_t len, char *err,
    size_t errlen);
void tg_prices_free(tg_prices_t *prices);

/*
 * The exact name; else the name without a date or version suffix
 * ("-2024-08-06", "-20241022", "@20241022", "-001") or a "models/"
 * prefix; else the default; else NULL.
 */
const tg_price_t *tg_prices_lookup(const tg_prices_t *prices,
    const char *model, size_t len);

size_t tg_prices_count(const tg_prices_t *prices);

/* a trillion dollars: no cost is more, so sums of costs cannot wrap */
#define TG_COST_MAX  1000000000000000000LL

/*
 * micro-USD, rounded up, at most TG_COST_MAX; cached and cache_write are
 * parts of input
 */
int64_t tg_price_cost(const tg_price_t *price, int64_t input,
    int64_t cached, int64_t cache_write, int64_t output);

#endif /* TG_PRICES_H */
