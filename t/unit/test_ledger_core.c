/* core pieces of the ledger: limits, the key space, periods, prices */

#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tg_keys.h"
#include "tg_limit.h"
#include "tg_prices.h"


static int64_t
limit(const char *s, int *kind)
{
    tg_limit_t  l;

    if (tg_limit_parse(s, strlen(s), &l) != 0) {
        return -1;
    }

    *kind = l.kind;

    return l.value;
}


static tg_prices_t *
prices(const char *json, char *err)
{
    return tg_prices_parse(json, strlen(json), err, 128);
}


static const char *
prefix(char scope, const char *name, size_t len)
{
    size_t       n;
    static char  buf[TG_KEY_PREFIX_MAX + 1];

    n = tg_key_prefix(scope, name, len, buf);
    buf[n] = '\0';

    return n ? buf : "(none)";
}


void
test_ledger_core(void)
{
    int                k;
    char               month[8], day[11], err[128];
    char               name[300];
    tg_prices_t       *p;
    const tg_price_t  *pr;

    is_int(limit("1500usd", &k), 1500000000, "limit: 1500usd in micro-USD");
    is_int(k, TG_LIMIT_USD, "limit: usd kind");
    is_int(limit("0.25usd", &k), 250000, "limit: 0.25usd");
    is_int(limit("0.000001usd", &k), 1, "limit: a micro-dollar");
    is_int(limit("2000000tokens", &k), 2000000, "limit: tokens");
    is_int(k, TG_LIMIT_TOKENS, "limit: tokens kind");
    is_int(limit("500requests", &k), 500, "limit: requests");
    is_int(limit("0.0000001usd", &k), -1, "limit: finer than micro refused");
    is_int(limit("1.5tokens", &k), -1, "limit: fractional tokens refused");
    is_int(limit("usd", &k), -1, "limit: no number");
    is_int(limit("-5usd", &k), -1, "limit: negative");
    is_int(limit("5eur", &k), -1, "limit: unknown unit");
    is_int(limit("1.2.3usd", &k), -1, "limit: two dots");
    is_int(limit("99999999999999999999usd", &k), -1, "limit: overflow");
    is_int(limit("1000000000usd", &k), 1000000000000000LL,
           "limit: a billion dollars");
    is_int(limit("1000000000.000001usd", &k), -1,
           "limit: over a billion dollars");
    is_int(limit("100000000000000usd", &k), -1,
           "limit: no overflow scaling to micro-USD (fuzz)");
    is_int(limit("1000000000000000tokens", &k), 1000000000000000LL,
           "limit: a quadrillion tokens");

    is_str(prefix('u', "alice", 5), "tg:{u:alice}", "keys: plain name");
    is_str(prefix('t', "a.b_c@d-e", 9), "tg:{t:a.b_c@d-e}", "keys: safe bytes");
    is_str(prefix('u', "a}b:c\n*%", 8), "tg:{u:a%7Db%3Ac%0A%2A%25}",
           "keys: hostile bytes escaped");
    is_str(prefix('u', "bob}:x{u:alice", 14),
           "tg:{u:bob%7D%3Ax%7Bu%3Aalice}", "keys: cannot reach alice");
    memset(name, 'a', 257);
    is_str(prefix('u', name, 257), "(none)", "keys: over 256 bytes refused");
    is_str(prefix('u', "", 0), "(none)", "keys: empty refused");

    tg_period_month(1795046400, month);        /* 2026-11-19 00:00 UTC */
    tg_period_day(1795046400, day);
    is_str(month, "2026-11", "period: month");
    is_str(day, "2026-11-19", "period: day");
    is_int(tg_period_day_reset(1795046400 + 3600), 86400 - 3600,
           "period: day reset");
    is_int(tg_period_month_reset(1795046400), 12 * 86400,
           "period: month reset");
    tg_period_month(1798675200, month);        /* 2026-12-31 */
    is_str(month, "2026-12", "period: december");
    is_int(tg_period_month_reset(1798675200 + 86399), 1,
           "period: new year");

    p = prices("{\"models\":{\"gpt-4o\":{\"input\":2.5,"
               "\"cached_input\":1.25,\"output\":10},"
               "\"claude-3-5-haiku\":{\"input\":0.8,\"output\":4},"
               "\"gemini-2.0-flash\":{\"input\":0.1,\"output\":0.4}}}",
               err);
    ok(p != NULL, "prices: parse (%s)", p ? "ok" : err);

    if (p != NULL) {
        is_int(tg_prices_count(p), 3, "prices: three models");
        pr = tg_prices_lookup(p, "gpt-4o", 6);
        ok(pr && pr->input == 2.5 && pr->cached_input == 1.25
           && pr->output == 10, "prices: exact");
        ok(tg_prices_lookup(p, "gpt-4o-2024-08-06", 17) == pr,
           "prices: dated OpenAI variant");
        pr = tg_prices_lookup(p, "claude-3-5-haiku-20241022", 25);
        ok(pr && pr->input == 0.8, "prices: dated Anthropic variant");
        ok(pr && pr->cached_input == 0.8, "prices: cached defaults to input");
        ok(tg_prices_lookup(p, "claude-3-5-haiku@20241022", 25) == pr,
           "prices: Vertex variant");
        ok(tg_prices_lookup(p, "gemini-2.0-flash-001", 20) != NULL,
           "prices: numbered Gemini variant");
        ok(tg_prices_lookup(p, "models/gemini-2.0-flash", 23) != NULL,
           "prices: models/ prefix");
        ok(tg_prices_lookup(p, "gpt-4o-mini", 11) == NULL,
           "prices: unknown and no default");
        is_int(tg_price_cost(tg_prices_lookup(p, "gpt-4o", 6), 1000, 400,
                             0, 100), 600 * 2.5 + 400 * 1.25 + 100 * 10,
               "prices: cost in micro-USD");
        is_int(tg_price_cost(tg_prices_lookup(p, "gemini-2.0-flash", 16),
                             1, 0, 0, 0), 1, "prices: fractions round up");
        /* fuzz: 1e12 max_tokens x 1e6 n at $10/1M was a negative cost */
        is_int(tg_price_cost(tg_prices_lookup(p, "gpt-4o", 6), 0, 0, 0,
                             1000000000000000000LL), TG_COST_MAX,
               "prices: a huge cost saturates, never wraps");
        is_int(tg_price_cost(tg_prices_lookup(p, "gpt-4o", 6), INT64_MAX,
                             0, 0, INT64_MAX), TG_COST_MAX,
               "prices: int64 token counts saturate");
        tg_prices_free(p);
    }

    p = prices("{\"default\":{\"input\":1,\"output\":2},"
               "\"models\":{}}", err);
    ok(p && tg_prices_lookup(p, "anything", 8) != NULL, "prices: default");
    tg_prices_free(p);

    ok(prices("{\"models\":{\"m\":{\"input\":\"1\",\"output\":2}}}", err)
       == NULL
       && strstr(err, "\"m\"") != NULL, "prices: bad price names the model");
    ok(prices("{\"models\":{\"m\":{\"input\":-1,\"output\":2}}}", err)
       == NULL, "prices: negative");
    ok(prices("[]", err) == NULL, "prices: no models");
    ok(tg_prices_load("/nonexistent/prices.json", err, sizeof(err)) == NULL
       && strstr(err, "cannot open") != NULL, "prices: missing file");

    p = tg_prices_load("conf/prices.json", err, sizeof(err));
    ok(p != NULL && tg_prices_count(p) > 30,
       "prices: the shipped conf/prices.json loads");
    ok(p && tg_prices_lookup(p, "gpt-4o-2024-08-06", 17) != NULL
       && tg_prices_lookup(p, "claude-sonnet-4-5-20250929", 26) != NULL,
       "prices: shipped table prices dated variants");
    tg_prices_free(p);
}
