/* the price table and the price engine (core/tg_prices.c) */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tg_prices.h"


/* 2026-12-01 00:00 UTC */
#define NOW  1796083200


static tg_prices_t *
prices(const char *json, char *err)
{
    return tg_prices_parse(json, strlen(json), err, 128);
}


static const tg_price_t *
find(const tg_prices_t *p, const char *model)
{
    return tg_prices_lookup(p, model, strlen(model));
}


static int64_t
cost(const tg_prices_t *p, const char *model, tg_usage_t *u)
{
    const tg_price_t  *pr;

    pr = find(p, model);

    return pr ? tg_price_cost(pr, u, NOW) : -1;
}


static void
test_flat(void)
{
    char           err[128];
    tg_usage_t     u;
    tg_prices_t   *p;

    p = prices("{\"models\":{\"gpt-4o\":{\"input\":2.5,"
               "\"cached_input\":1.25,\"output\":10},"
               "\"claude-3-5-haiku\":{\"input\":0.8,\"output\":4},"
               "\"gemini-2.0-flash\":{\"input\":0.1,\"output\":0.4}}}",
               err);
    ok(p != NULL, "prices: the flat format parses (%s)", p ? "ok" : err);

    if (p == NULL) {
        return;
    }

    is_int(tg_prices_count(p), 3, "prices: three models");
    ok(find(p, "gpt-4o-2024-08-06") == find(p, "gpt-4o"),
       "prices: dated OpenAI variant");
    ok(find(p, "claude-3-5-haiku-20241022") != NULL
       && find(p, "claude-3-5-haiku@20241022")
          == find(p, "claude-3-5-haiku"), "prices: dated Anthropic and"
       " Vertex variants");
    ok(find(p, "gemini-2.0-flash-001") != NULL, "prices: -001 variant");
    ok(find(p, "models/gemini-2.0-flash") != NULL, "prices: models/ prefix");
    ok(find(p, "GPT-4o") == find(p, "gpt-4o"), "prices: any case");
    ok(find(p, "gpt-4o-mini") == NULL, "prices: unknown and no default");

    memset(&u, 0, sizeof(u));
    u.input = 1000;
    u.cached = 400;
    u.output = 100;
    is_int(cost(p, "gpt-4o", &u), 600 * 2.5 + 400 * 1.25 + 100 * 10,
           "prices: cost in micro-USD");

    memset(&u, 0, sizeof(u));
    u.input = 1000;
    u.cached = 400;
    is_int(cost(p, "claude-3-5-haiku", &u), 800,
           "prices: cache reads without a price of their own: input");

    memset(&u, 0, sizeof(u));
    u.input = 1;
    is_int(cost(p, "gemini-2.0-flash", &u), 1, "prices: fractions round up");

    memset(&u, 0, sizeof(u));
    u.output = 1000000000000000000LL;
    is_int(cost(p, "gpt-4o", &u), TG_COST_MAX,
           "prices: a huge cost saturates, never wraps");
    u.input = INT64_MAX;
    u.output = INT64_MAX;
    u.cached = INT64_MAX;
    is_int(cost(p, "gpt-4o", &u), TG_COST_MAX,
           "prices: int64 token counts saturate");

    tg_prices_free(p);
}


/* the database's shapes, with its figures for these models */
static void
test_engine(void)
{
    char           err[128];
    tg_usage_t     u;
    tg_prices_t   *p;

    p = prices("{\"providers\":[{\"id\":\"anthropic\","
               "\"match\":{\"contains\":\"claude\"},\"models\":["
               "{\"id\":\"claude-sonnet-4-5\",\"match\":{\"or\":["
               "{\"starts_with\":\"claude-sonnet-4-5\"}]},\"prices\":{"
               "\"input_mtok\":{\"base\":3,\"tiers\":[{\"start\":200000,"
               "\"price\":6}]},"
               "\"cache_write_mtok\":{\"base\":3.75,\"tiers\":[{\"start\":"
               "200000,\"price\":7.5}]},"
               "\"cache_read_mtok\":{\"base\":0.3,\"tiers\":[{\"start\":"
               "200000,\"price\":0.6}]},"
               "\"output_mtok\":{\"base\":15,\"tiers\":[{\"start\":200000,"
               "\"price\":22.5}]},"
               "\"cache_write_1h_mtok\":{\"base\":6,\"tiers\":[{\"start\":"
               "200000,\"price\":12}]},\"web_searches_kcount\":10}}]},"
               "{\"id\":\"openai\",\"match\":{\"starts_with\":\"gpt-\"},"
               "\"models\":["
               "{\"id\":\"gpt-4o-2024-05-13\",\"match\":{\"equals\":"
               "\"gpt-4o-2024-05-13\"},\"prices\":{\"input_mtok\":5,"
               "\"output_mtok\":15}},"
               "{\"id\":\"gpt-4o\",\"match\":{\"or\":[{\"equals\":\"gpt-4o\"},"
               "{\"equals\":\"gpt-4o-2024-08-06\"}]},\"prices\":{"
               "\"input_mtok\":2.5,\"cache_read_mtok\":1.25,"
               "\"output_mtok\":10,\"requests_kcount\":1}},"
               "{\"id\":\"o3\",\"match\":{\"regex\":\"^o3(-[0-9]{4}-[0-9]{2}-"
               "[0-9]{2})?$\"},\"prices\":[{\"input_mtok\":10,"
               "\"output_mtok\":40},{\"from\":\"2025-06-10\","
               "\"input_mtok\":2,\"output_mtok\":8},{\"from\":\"2027-01-01\","
               "\"input_mtok\":1,\"output_mtok\":4}]}]},"
               "{\"id\":\"google\",\"match\":{\"contains\":\"gemini\"},"
               "\"models\":["
               "{\"id\":\"gemini-2.5-pro\",\"match\":{\"and\":["
               "{\"starts_with\":\"gemini-2.5-pro\"},"
               "{\"not\":{\"regex\":\"-tts($|-)\"}}]},"
               "\"prices\":{\"input_mtok\":{\"base\":1.25,\"tiers\":["
               "{\"start\":200000,\"price\":2.5}]},"
               "\"cache_read_mtok\":{\"base\":0.125,"
               "\"tiers\":[{\"start\":200000,\"price\":0.25}]},"
               "\"output_mtok\":{\"base\":10,\"tiers\":[{\"start\":200000,"
               "\"price\":15}]}}},"
               "{\"id\":\"gemini-2.5-flash\",\"match\":{\"equals\":"
               "\"gemini-2.5-flash\"},\"prices\":{\"input_mtok\":0.3,"
               "\"input_audio_mtok\":1,\"cache_read_mtok\":0.03,"
               "\"cache_audio_read_mtok\":0.1,\"output_mtok\":2.5}}]}]}",
               err);
    ok(p != NULL, "prices: providers parse (%s)", p ? "ok" : err);

    if (p == NULL) {
        return;
    }

    is_int(tg_prices_count(p), 6, "prices: six models");

    /* the figures: the whole request at the long-context rate */
    memset(&u, 0, sizeof(u));
    u.input = 250000;
    u.output = 2000;
    is_int(cost(p, "claude-sonnet-4-5-20250929", &u), 1545000,
           "prices: sonnet 4.5 past 200k: every token at the tier");
    u.input = 200000;
    is_int(cost(p, "claude-sonnet-4-5", &u), 630000,
           "prices: at 200k, still the base rate");
    u.input = 200001;
    is_int(cost(p, "claude-sonnet-4-5", &u), 1245006,
           "prices: one token past the threshold, all at the tier");

    memset(&u, 0, sizeof(u));
    u.input = 5000;
    u.cache_write = 4000;
    u.cache_write_1h = 4000;
    u.output = 1000;
    is_int(cost(p, "claude-sonnet-4-5", &u), 1000 * 3 + 4000 * 6 + 15000,
           "prices: 1-hour cache writes at 2x input");
    u.cache_write_1h = 1000;
    u.cache_write_5m = 3000;
    is_int(cost(p, "claude-sonnet-4-5", &u),
           3000 + 3000 * 3.75 + 1000 * 6 + 15000,
           "prices: 5-minute writes at 1.25x, 1-hour at 2x");

    memset(&u, 0, sizeof(u));
    u.input = 1000;
    u.output = 1000;
    u.reasoning = 800;
    u.web_searches = 3;
    is_int(cost(p, "claude-sonnet-4-5", &u), 3000 + 15000 + 30000,
           "prices: reasoning once, inside output; $10 per 1000 searches");

    memset(&u, 0, sizeof(u));
    u.input = 1000;
    u.output = 1000;
    is_int(cost(p, "gpt-4o-2024-05-13", &u), 20000,
           "prices: gpt-4o-2024-05-13 at its own $5/$15");
    is_int(cost(p, "gpt-4o-2024-08-06", &u), 12500 + 1000,
           "prices: gpt-4o-2024-08-06 at gpt-4o's, with a per-request fee");
    is_int(cost(p, "o3-2025-04-16", &u), 10000,
           "prices: the price in force now, not the first nor a future one");
    ok(find(p, "o3-mini") == NULL, "prices: a regex is anchored as written");
    is_int(tg_price_cost(find(p, "o3"), &u, 1735689600), 50000,
           "prices: the price in force at the request's time");

    memset(&u, 0, sizeof(u));
    u.input = 300000;
    u.cached = 100000;
    u.output = 1000;
    is_int(cost(p, "gemini-2.5-pro", &u), 200000 * 2.5 + 100000 * 0.25 + 15000,
           "prices: gemini 2.5 pro past 200k, cache reads at their tier");
    u.input = 1000;
    u.cached = 1000;
    u.output = 0;
    is_int(cost(p, "gemini-2.5-pro", &u), 125,
           "prices: gemini 2.5 pro cache reads at $0.125");
    ok(find(p, "gemini-2.5-pro-preview-tts") == NULL
       && find(p, "gemini-2.5-pro-preview-06-05") != NULL,
       "prices: a \"not\" match");

    memset(&u, 0, sizeof(u));
    u.input = 10000;
    u.input_audio = 4000;
    u.cached = 3000;
    u.cache_audio_read = 1000;
    u.output = 100;
    u.reasoning = 50;
    is_int(cost(p, "gemini-2.5-flash", &u),
           (10000 - 4000 - 2000) * 0.3 + 3000 * 1 + 2000 * 0.03 + 1000 * 0.1
           + 250, "prices: audio and cached audio, each token once");

    memset(&u, 0, sizeof(u));
    u.input = 250000;
    u.cached = 250000;
    is_int(cost(p, "gemini-2.5-pro", &u), 62500,
           "prices: parts that are the whole");
    u.cached = 300000;
    is_int(cost(p, "gemini-2.5-pro", &u), 75000,
           "prices: parts that are more than the whole: the parts");

    /* a reservation: the worst case, at the tier, a 1h write included */
    is_int(tg_price_reserve(find(p, "claude-sonnet-4-5"), 250000, 1000, NOW),
           250000 * 12 + 22500, "prices: a reservation crossing the tier");
    is_int(tg_price_reserve(find(p, "gpt-4o"), 1000, 1000, NOW), 13500,
           "prices: a reservation without cache writes");

    tg_prices_free(p);
}


static void
test_layers(void)
{
    char           err[128];
    const char    *over;
    tg_usage_t     u;
    tg_prices_t   *p;

    p = prices("{\"providers\":[{\"id\":\"openai\",\"models\":["
               "{\"id\":\"gpt-4o\",\"match\":{\"starts_with\":\"gpt-4o\"},"
               "\"prices\":{\"input_mtok\":2.5,\"output_mtok\":10}}]}],"
               "\"models\":{\"a\":{\"input\":1,\"output\":1}}}", err);
    ok(p != NULL, "prices: layer one (%s)", p ? "ok" : err);

    if (p == NULL) {
        return;
    }

    over = "{\"models\":{\"gpt-4o\":{\"input_mtok\":2,\"output_mtok\":8},"
           "\"a\":{\"input\":3,\"output\":3}},"
           "\"default\":{\"input\":1,\"output\":2}}";
    ok(tg_prices_add(p, over, strlen(over), err, sizeof(err)) == 0,
       "prices: an operator's file layers on top");

    memset(&u, 0, sizeof(u));
    u.input = 1000;
    is_int(cost(p, "gpt-4o", &u), 2000, "prices: a negotiated price wins");
    is_int(cost(p, "gpt-4o-mini", &u), 2500,
           "prices: the database for what the layer does not name");
    is_int(cost(p, "a", &u), 3000, "prices: a later name replaces");
    is_int(cost(p, "private-model", &u), 1000, "prices: the default");
    is_int(tg_prices_count(p), 3, "prices: no name twice");

    tg_prices_free(p);

    ok(prices("{\"models\":{\"m\":{\"input\":\"1\",\"output\":2}}}", err)
       == NULL
       && strstr(err, "\"m\"") != NULL, "prices: bad price names the model");
    ok(prices("{\"models\":{\"m\":{\"input\":-1,\"output\":2}}}", err)
       == NULL, "prices: negative");
    ok(prices("{\"models\":{\"m\":{\"input_mtok\":1,\"inptu\":2}}}", err)
       == NULL && strstr(err, "inptu") != NULL, "prices: unknown unit");
    ok(prices("{\"models\":{\"m\":{\"input\":1,\"input_mtok\":2}}}", err)
       == NULL, "prices: a unit twice");
    ok(prices("{\"models\":{\"m\":{\"input_mtok\":{\"base\":1,\"tiers\":"
              "[{\"start\":-1,\"price\":2}]}}}}", err) == NULL,
       "prices: a tier below zero");
    ok(prices("{\"models\":{\"m\":[{\"from\":\"2026-13-01\","
              "\"input_mtok\":1}]}}", err) == NULL, "prices: a bad date");
    ok(prices("{\"providers\":[{\"models\":[{\"id\":\"x\",\"match\":"
              "{\"regex\":\"(\"},\"prices\":{\"input_mtok\":1}}]}]}", err)
       == NULL && strstr(err, "regex") != NULL, "prices: a bad regex");
    ok(prices("{\"providers\":[{\"models\":[{\"id\":\"x\",\"match\":"
              "{\"like\":\"x\"},\"prices\":{\"input_mtok\":1}}]}]}", err)
       == NULL, "prices: an unknown match");
    ok(prices("[]", err) == NULL, "prices: no models");
    ok(tg_prices_load("/nonexistent/prices.json", err, sizeof(err)) == NULL
       && strstr(err, "cannot open") != NULL, "prices: missing file");
}


static void
test_shipped(void)
{
    char           err[128];
    tg_usage_t     u;
    tg_prices_t   *p;

    p = tg_prices_load("conf/prices.json", err, sizeof(err));
    ok(p != NULL && tg_prices_count(p) > 100,
       "prices: the shipped conf/prices.json loads (%s)", p ? "ok" : err);

    if (p == NULL) {
        return;
    }

    ok(find(p, "gpt-4o-2024-08-06") != NULL
       && find(p, "claude-sonnet-4-5-20250929") != NULL
       && find(p, "models/gemini-2.5-pro") != NULL
       && find(p, "text-embedding-3-small") != NULL,
       "prices: shipped table prices dated variants and embeddings");

    memset(&u, 0, sizeof(u));
    u.input = 1000000;
    u.output = 1000000;
    is_int(cost(p, "gpt-4o-2024-05-13", &u), 20000000,
           "prices: shipped gpt-4o-2024-05-13 is $5/$15");
    is_int(cost(p, "gpt-4o-2024-08-06", &u), 12500000,
           "prices: shipped gpt-4o-2024-08-06 is $2.50/$10");

    tg_prices_free(p);
}


/*
 * Red team: a reservation is the worst case of what the provider may
 * bill for so many tokens in and out, whatever their modality: an image
 * or audio answer is billed at 4-12 times the text rate, and a request
 * reserved at the text rate is admitted past a cap.
 */
static void
test_reserve_worst(void)
{
    char                 err[128];
    size_t               i, k;
    int64_t              r, c;
    tg_usage_t           u;
    tg_prices_t         *p;
    const tg_price_t    *pr;

    static const char   *models[] = {
        "gemini-2.5-flash-image", "gemini-3-pro-image-preview",
        "gpt-audio", "gpt-audio-mini", "gpt-4o-audio-preview",
        "gpt-realtime", "gpt-image-1.5", "gpt-4o", "claude-sonnet-4-5",
        "gemini-2.5-pro", NULL
    };

    p = tg_prices_load("conf/prices.json", err, sizeof(err));
    if (p == NULL) {
        ok(0, "prices: reserve: conf/prices.json loads (%s)", err);
        return;
    }

    for (i = 0; models[i]; i++) {
        pr = find(p, models[i]);
        if (pr == NULL) {
            ok(0, "prices: reserve: %s is in the table", models[i]);
            continue;
        }

        r = tg_price_reserve(pr, 250000, 10000, NOW);

        /* every input and output modality, one at a time */
        for (k = 0; k < 16; k++) {
            memset(&u, 0, sizeof(u));
            u.input = 250000;
            u.output = 10000;

            switch (k & 3) {
            case 1: u.input_audio = 250000; break;
            case 2: u.input_image = 250000; break;
            case 3: u.input_video = 250000; break;
            }

            switch (k >> 2) {
            case 1: u.output_audio = 10000; break;
            case 2: u.output_image = 10000; break;
            case 3: u.output_video = 10000; break;
            }

            c = tg_price_cost(pr, &u, NOW);

            ok(c <= r, "prices: reserve: %s, shape %zu costs %lld, at most"
               " the %lld reserved", models[i], k, (long long) c,
               (long long) r);
        }
    }

    tg_prices_free(p);
}


/*
 * The lookup cache answers as the lookup does: every shipped model, in
 * other cases, with prefixes, dates and junk, more names than the cache
 * has entries, asked twice; and a layer added after lookups is seen.
 */
static void
test_cache(void)
{
    int                 same;
    char                err[128], name[300];
    size_t              i, k, n, len;
    const char         *over;
    tg_usage_t          u;
    tg_prices_t        *p;
    const tg_price_t   *a, *b;

    static const char  *shapes[] = {
        "%s", "%s-2024-08-06", "%s-20241022", "models/%s", "%s@20241022",
        "%s-001", "openai/%s", "%s:free", "x%s", "%s-nonesuch", NULL
    };
    static const char  *names[] = {
        "gpt-4o", "GPT-4o", "gpt-4o-mini", "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929", "gemini-2.5-pro", "o3", "o4-mini",
        "text-embedding-3-small", "gpt-image-1.5", "mistral-large",
        "llama-3.1-70b", "deepseek-chat", "grok-4", "command-r", NULL
    };

    p = tg_prices_load("conf/prices.json", err, sizeof(err));
    if (p == NULL) {
        ok(0, "prices: cache: conf/prices.json loads (%s)", err);
        return;
    }

    same = 1;
    n = 0;

    for (k = 0; k < 2; k++) {
        for (i = 0; names[i]; i++) {
            for (len = 0; shapes[len]; len++) {
                snprintf(name, sizeof(name), shapes[len], names[i]);

                if (k) {
                    name[0] = (char) (name[0] ^ 0x20);  /* another case */
                }

                a = tg_prices_lookup(p, name, strlen(name));
                b = tg_prices_lookup(p, name, strlen(name));
                same &= a == b
                        && a == tg_prices_lookup_uncached(p, name,
                                                          strlen(name));
                n++;
            }
        }
    }

    /* evictions: far more names than entries, each asked again later */
    for (k = 0; k < 2; k++) {
        for (i = 0; i < 3000; i++) {
            len = (size_t) snprintf(name, sizeof(name), "%s-%zu",
                                    names[i % 15], i);
            a = tg_prices_lookup(p, name, len);
            same &= a == tg_prices_lookup_uncached(p, name, len);
            n++;
        }
    }

    /* the edges the cache does not keep: empty, long, a NUL inside */
    memset(name, 'g', sizeof(name));
    for (len = 0; len < sizeof(name); len += 7) {
        same &= tg_prices_lookup(p, name, len)
                == tg_prices_lookup_uncached(p, name, len);
        n++;
    }

    same &= tg_prices_lookup(p, "gpt-4o\0x", 8)
            == tg_prices_lookup_uncached(p, "gpt-4o\0x", 8);
    same &= tg_prices_lookup(p, "gpt-4o\0x", 8)
            == tg_prices_lookup(p, "gpt-4o\0x", 8);

    ok(same, "prices: cache: %zu lookups answer as without the cache", n);

    memset(&u, 0, sizeof(u));
    u.input = 1000;
    is_int(cost(p, "gpt-4o", &u), 2500, "prices: cache: gpt-4o before");
    ok(find(p, "private-model") == NULL, "prices: cache: no default yet");

    over = "{\"models\":{\"gpt-4o\":{\"input_mtok\":2,\"output_mtok\":8}},"
           "\"default\":{\"input\":1,\"output\":2}}";
    ok(tg_prices_add(p, over, strlen(over), err, sizeof(err)) == 0,
       "prices: cache: a layer after lookups");
    is_int(cost(p, "gpt-4o", &u), 2000, "prices: cache: the layer is seen");
    ok(find(p, "private-model") != NULL
       && find(p, "private-model") == tg_prices_lookup_uncached(p,
                                              "private-model", 13),
       "prices: cache: the new default is seen");

    tg_prices_free(p);
}


void
test_prices(void)
{
    test_flat();
    test_engine();
    test_layers();
    test_shipped();
    test_reserve_worst();
    test_cache();
}
