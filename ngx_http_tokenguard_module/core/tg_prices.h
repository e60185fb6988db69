/*
 * The price table and the price engine.  Pure C (jansson, POSIX regex),
 * no nginx headers.
 *
 * The table (conf/prices.json, generated from @pydantic/genai-prices by
 * tools/prices/generate.mjs; README, "Prices"):
 *
 *   {"providers": [{"id": "openai", "match": MATCH,
 *                   "models": [{"id": "gpt-4o", "match": MATCH,
 *                               "prices": PRICES | [PRICES, ...]}]}],
 *    "models": {"my-model": PRICES, ...},                  (optional)
 *    "default": PRICES}                                    (optional)
 *
 *   MATCH:  {"equals"|"starts_with"|"ends_with"|"contains": "s"},
 *           {"regex": "POSIX ERE"}, {"not": MATCH},
 *           {"or": [MATCH, ...]}, {"and": [MATCH, ...]}
 *   PRICES: {"input_mtok": 2.5, "output_mtok": {"base": 10, "tiers":
 *           [{"start": 200000, "price": 15}]}, ..., "from": "2026-07-30"}
 *
 * A unit without a price of its own is billed at its parent's: cache
 * reads at the input price unless "cache_read_mtok" is given, and so on.
 * The old flat keys ("input", "cached_input", "cache_write", "output")
 * are read as input_mtok, cache_read_mtok, cache_write_mtok, output_mtok.
 */

#ifndef TG_PRICES_H
#define TG_PRICES_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tg_usage.h"


typedef struct tg_price_s   tg_price_t;      /* one model's prices */
typedef struct tg_prices_s  tg_prices_t;


/* NULL with a message in err when the file or its content is bad */
tg_prices_t *tg_prices_load(const char *path, char *err, size_t errlen);
tg_prices_t *tg_prices_parse(const char *json, size_t len, char *err,
    size_t errlen);

/*
 * Layers another table over p: its "models" and "default" replace those
 * of the same name, its providers are searched before p's.  -1 with a
 * message in err (p is then unchanged or only partly layered: free it).
 */
int tg_prices_add(tg_prices_t *p, const char *json, size_t len, char *err,
    size_t errlen);
int tg_prices_add_file(tg_prices_t *p, const char *path, char *err,
    size_t errlen);
tg_prices_t *tg_prices_new(void);
void tg_prices_free(tg_prices_t *prices);

/*
 * A model's prices, case-insensitively: an exact name in "models"; else
 * the providers' match rules as the database has them (providers whose
 * own rule matches the name first), with a "-YYYYMMDD" date also tried
 * as "-YYYY-MM-DD"; a "models/" prefix is dropped first; else a "models"
 * name without a date or version suffix ("-2024-08-06", "-20241022",
 * "@20241022", "-001"); else the default; else NULL.
 */
const tg_price_t *tg_prices_lookup(const tg_prices_t *prices,
    const char *model, size_t len);

/* the same, without the table's cache of recent names (for the tests) */
const tg_price_t *tg_prices_lookup_uncached(const tg_prices_t *prices,
    const char *model, size_t len);

/* the names in "models" and the providers' models */
size_t tg_prices_count(const tg_prices_t *prices);

/* a trillion dollars: no cost is more, so sums of costs cannot wrap */
#define TG_COST_MAX  1000000000000000000LL

/*
 * The price engine: micro-USD of the usage at the prices in force at
 * "now", rounded up to a whole micro-USD, at most TG_COST_MAX.  Every
 * unit once: the input's parts (cache reads, writes by TTL, audio, image)
 * at their own prices and the rest at the input price, reasoning inside
 * the output, per-call and per-request fees; a tiered price at the tier
 * the whole request's input reaches.
 */
int64_t tg_price_cost(const tg_price_t *price, const tg_usage_t *u,
    time_t now);

/*
 * A reservation: the worst case of input and output tokens, every input
 * token at the dearest input-side text rate (a prompt may be written to
 * a cache), at the tier that input reaches.
 */
int64_t tg_price_reserve(const tg_price_t *price, int64_t input,
    int64_t output, time_t now);

#endif /* TG_PRICES_H */
