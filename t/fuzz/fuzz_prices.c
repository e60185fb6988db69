/*
 * tg_prices_parse(), tg_prices_lookup() and tg_price_cost().  Input: a
 * price table (conf/prices.json's format).  Every model of a table that
 * loads is found by its name, with a version suffix and with "models/";
 * costs are never negative and grow with the tokens.
 */

#include <strings.h>
#include <jansson.h>

#include "fuzz.h"
#include "tg_prices.h"


static const int64_t  fuzz_tokens[] = {
    0, 1, 999, 1000000, 1000000000000LL, 4611686018427387903LL,
    INT64_MAX
};

#define FUZZ_NTOKENS  (sizeof(fuzz_tokens) / sizeof(fuzz_tokens[0]))


static void
fuzz_costs(const tg_price_t *p)
{
    size_t      i, j, k;
    int64_t     c, prev;
    tg_usage_t  u;

    memset(&u, 0, sizeof(tg_usage_t));

    for (i = 0; i < FUZZ_NTOKENS; i++) {
        for (j = 0; j < FUZZ_NTOKENS; j++) {
            prev = 0;

            for (k = 0; k < FUZZ_NTOKENS; k++) {
                u.input = fuzz_tokens[i];
                u.cached = fuzz_tokens[j];
                u.cache_write = fuzz_tokens[j] / 2;
                u.cache_write_1h = fuzz_tokens[j] / 4;
                u.input_audio = fuzz_tokens[j] / 3;
                u.output = fuzz_tokens[k];
                u.reasoning = fuzz_tokens[k] / 2;
                u.web_searches = fuzz_tokens[j];

                c = tg_price_cost(p, &u, 1796083200);
                fuzz_assert(c >= prev && c <= TG_COST_MAX);
                prev = c;

                c = tg_price_reserve(p, fuzz_tokens[i], fuzz_tokens[k],
                                     1796083200);
                fuzz_assert(c >= 0 && c <= TG_COST_MAX);
            }
        }
    }
}


static void
fuzz_lookup(const tg_prices_t *prices, const char *name, size_t len,
    const char *suffix, const char *prefix)
{
    char              buf[600];
    size_t            n;
    const tg_price_t  *p;

    n = snprintf(buf, sizeof(buf), "%s%.*s%s", prefix, (int) len, name,
                 suffix);
    if (n >= sizeof(buf)) {
        return;
    }

    p = tg_prices_lookup(prices, buf, n);

    /*
     * the name itself is in the table: a variant of it is found (but
     * "models/" is stripped before the version, not after, and a suffix
     * alone is no versioned name; names are case-insensitive, so is
     * "Models/")
     */
    if (n < 260 && len > 0
        && (len < 7 || strncasecmp(name, "models/", 7) != 0))
    {
        fuzz_assert(p != NULL);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char               *json, err[256];
    size_t              len, off, i;
    json_t             *root, *models, *v;
    const char         *name;
    tg_prices_t        *prices;
    json_error_t        jerr;
    const tg_price_t   *p;

    json = fuzz_dup(data, size);

    err[0] = '\0';
    prices = tg_prices_parse(json, size, err, sizeof(err));

    if (prices == NULL) {
        fuzz_assert(err[0] != '\0' && strlen(err) < sizeof(err));
        free(json);
        return 0;
    }

    root = json_loadb(json, size, JSON_REJECT_DUPLICATES, &jerr);
    fuzz_assert(root != NULL);

    /* names are case-insensitive: "A" and "a" are one */
    models = json_object_get(root, "models");
    fuzz_assert(tg_prices_count(prices) >= (json_object_size(models) ? 1 : 0));

    i = 0;

    json_object_foreach(models, name, v) {
        len = strlen(name);
        p = tg_prices_lookup(prices, name, len);

        if (len > 0 && len < 260) {
            fuzz_assert(p != NULL);
        }

        /* a few models are enough for the arithmetic */
        if (p != NULL && i++ < 4) {
            fuzz_costs(p);
        }

        fuzz_lookup(prices, name, len, "-2024-08-06", "");
        fuzz_lookup(prices, name, len, "-20241022", "");
        fuzz_lookup(prices, name, len, "@20241022", "");
        fuzz_lookup(prices, name, len, "-001", "");
        fuzz_lookup(prices, name, len, "", "models/");
    }

    /* arbitrary names: windows of the input itself */
    for (off = 0; off < size; off += 7) {
        len = size - off < 300 ? size - off : 300;
        (void) tg_prices_lookup(prices, json + off, len);
    }

    p = tg_prices_lookup(prices, "", 0);
    if (p != NULL) {
        fuzz_costs(p);
    }

    json_decref(root);
    tg_prices_free(prices);
    free(json);

    return 0;
}
