/*
 * The price table and the engine that turns usage into micro-USD.
 *
 * Units follow @pydantic/genai-prices: each has dimensions (direction,
 * cache read or write, TTL, modality, reasoning, tool); a unit whose
 * dimensions hold another's is a part of it.  The engine bills each
 * priced unit's own share: its count less the shares of the priced units
 * that are parts of it, most specific first, so every token is billed
 * once, at the most specific price there is.
 *
 * Money is exact: a price is kept as integer pico-USD per unit (the
 * table's prices have at most 6 decimals per 1M tokens, 9 per 1000
 * calls), the sum as a 128-bit integer, rounded up to micro-USD once.
 */

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tg_prices.h"


/* dimensions */
#define TG_D_TOKENS     0x0001
#define TG_D_TOOLS      0x0002
#define TG_D_REQUESTS   0x0004
#define TG_D_IN         0x0008
#define TG_D_OUT        0x0010
#define TG_D_READ       0x0020
#define TG_D_WRITE      0x0040
#define TG_D_5M         0x0080
#define TG_D_1H         0x0100
#define TG_D_AUDIO      0x0200
#define TG_D_IMAGE      0x0400
#define TG_D_VIDEO      0x0800
#define TG_D_REASONING  0x1000
#define TG_D_WEB        0x2000

#define TG_TIN   (TG_D_TOKENS|TG_D_IN)
#define TG_TOUT  (TG_D_TOKENS|TG_D_OUT)

#define TG_NO_FIELD     ((size_t) -1)

#define tg_field(f)     offsetof(tg_usage_t, f)


typedef struct {
    const char  *key;
    const char  *legacy;        /* the flat table's name, if any */
    unsigned     dims;
    size_t       field;         /* in tg_usage_t; none: one per request */
    double       per;           /* how many units one price is for */
} tg_unit_t;


static const tg_unit_t  tg_units[] = {
    { "input_mtok", "input", TG_TIN, tg_field(input), 1e6 },
    { "cache_read_mtok", "cached_input", TG_TIN|TG_D_READ,
      tg_field(cached), 1e6 },
    { "cache_write_mtok", "cache_write", TG_TIN|TG_D_WRITE,
      tg_field(cache_write), 1e6 },
    { "cache_write_5m_mtok", NULL, TG_TIN|TG_D_WRITE|TG_D_5M,
      tg_field(cache_write_5m), 1e6 },
    { "cache_write_1h_mtok", NULL, TG_TIN|TG_D_WRITE|TG_D_1H,
      tg_field(cache_write_1h), 1e6 },
    { "input_audio_mtok", NULL, TG_TIN|TG_D_AUDIO,
      tg_field(input_audio), 1e6 },
    { "cache_audio_read_mtok", NULL, TG_TIN|TG_D_AUDIO|TG_D_READ,
      tg_field(cache_audio_read), 1e6 },
    { "input_image_mtok", NULL, TG_TIN|TG_D_IMAGE,
      tg_field(input_image), 1e6 },
    { "cache_image_read_mtok", NULL, TG_TIN|TG_D_IMAGE|TG_D_READ,
      tg_field(cache_image_read), 1e6 },
    { "input_video_mtok", NULL, TG_TIN|TG_D_VIDEO,
      tg_field(input_video), 1e6 },
    { "cache_video_read_mtok", NULL, TG_TIN|TG_D_VIDEO|TG_D_READ,
      tg_field(cache_video_read), 1e6 },
    { "output_mtok", "output", TG_TOUT, tg_field(output), 1e6 },
    { "output_reasoning_mtok", NULL, TG_TOUT|TG_D_REASONING,
      tg_field(reasoning), 1e6 },
    { "output_audio_mtok", NULL, TG_TOUT|TG_D_AUDIO,
      tg_field(output_audio), 1e6 },
    { "output_image_mtok", NULL, TG_TOUT|TG_D_IMAGE,
      tg_field(output_image), 1e6 },
    { "output_video_mtok", NULL, TG_TOUT|TG_D_VIDEO,
      tg_field(output_video), 1e6 },
    { "web_searches_kcount", NULL, TG_D_TOOLS|TG_D_WEB,
      tg_field(web_searches), 1e3 },
    { "requests_kcount", NULL, TG_D_REQUESTS, TG_NO_FIELD, 1e3 }
};

#define TG_UNITS      (sizeof(tg_units) / sizeof(tg_units[0]))
#define TG_TIERS_MAX  8

/* a price: USD per unit, at most; more is a typo */
#define TG_PRICE_MAX  1e6


typedef struct {
    int64_t      base;                  /* pico-USD per unit */
    unsigned     ntiers;
    int64_t      start[TG_TIERS_MAX];   /* input tokens above which */
    int64_t      price[TG_TIERS_MAX];
} tg_rate_t;


typedef struct {
    time_t       from;                  /* 0: always */
    uint32_t     priced;                /* a bit per unit */
    tg_rate_t    rate[TG_UNITS];
} tg_price_set_t;


struct tg_price_s {
    size_t           nsets;
    tg_price_set_t  *sets;
};


enum {
    TG_M_EQUALS = 0,
    TG_M_STARTS,
    TG_M_ENDS,
    TG_M_CONTAINS,
    TG_M_REGEX,
    TG_M_NOT,
    TG_M_OR,
    TG_M_AND
};


typedef struct tg_match_s  tg_match_t;

struct tg_match_s {
    int          type;
    char        *s;                     /* lower case */
    size_t       len;
    regex_t      re;
    size_t       n;
    tg_match_t  *sub;
};


typedef struct {
    tg_match_t   match;
    tg_price_t   price;
} tg_model_t;


typedef struct {
    int          has_match;
    tg_match_t   match;
    size_t       n;
    tg_model_t  *models;
} tg_provider_t;


typedef struct {
    char        *name;                  /* lower case */
    tg_price_t   price;
} tg_price_entry_t;


/*
 * Lookups remembered by the model name as it came (a lookup is a pure
 * function of the table and the name, ~2.7k instructions with the match
 * rules): direct-mapped, so a client sending new names only evicts
 */
#define TG_PRICE_CACHE       256            /* a power of two */
#define TG_PRICE_CACHE_NAME  64

typedef struct {
    const tg_price_t  *price;
    unsigned char      len;                 /* 0: empty */
    char               name[TG_PRICE_CACHE_NAME];
} tg_price_cached_t;


struct tg_prices_s {
    tg_price_entry_t   *entries;        /* sorted by name */
    size_t              n;
    tg_provider_t      *providers;      /* the last layer's first */
    size_t              nproviders;
    int                 has_default;
    tg_price_t          dflt;
    tg_price_cached_t  *cache;          /* NULL: none; freed with the table */
};


static void
tg_price_clear(tg_price_t *price)
{
    free(price->sets);
    price->sets = NULL;
    price->nsets = 0;
}


/* a price in USD per unit.per, as integer pico-USD per unit */
static int
tg_rate_value(json_t *v, const tg_unit_t *unit, int64_t *pico)
{
    double  d;

    if (!json_is_number(v)) {
        return -1;
    }

    d = json_number_value(v);

    if (!(d >= 0 && d <= TG_PRICE_MAX)) {
        return -1;
    }

    /* no libm: the value is not negative */
    *pico = (int64_t) (d * 1e12 / unit->per + 0.5);

    return 0;
}


static int
tg_rate_read(json_t *v, const tg_unit_t *unit, tg_rate_t *r)
{
    size_t    i, j;
    json_t   *tiers, *t, *start;
    int64_t   s, p;

    memset(r, 0, sizeof(tg_rate_t));

    if (!json_is_object(v)) {
        return tg_rate_value(v, unit, &r->base);
    }

    tiers = json_object_get(v, "tiers");

    if (tg_rate_value(json_object_get(v, "base"), unit, &r->base) != 0
        || !json_is_array(tiers) || json_array_size(tiers) > TG_TIERS_MAX)
    {
        return -1;
    }

    json_array_foreach(tiers, i, t) {
        start = json_object_get(t, "start");

        if (!json_is_integer(start) || json_integer_value(start) < 0
            || tg_rate_value(json_object_get(t, "price"), unit, &p) != 0)
        {
            return -1;
        }

        /* in order of start, as the database sorts them */
        s = json_integer_value(start);

        for (j = r->ntiers; j > 0 && r->start[j - 1] > s; j--) {
            r->start[j] = r->start[j - 1];
            r->price[j] = r->price[j - 1];
        }

        r->start[j] = s;
        r->price[j] = p;
        r->ntiers++;
    }

    return 0;
}


/* "YYYY-MM-DD" as the UTC midnight that starts it */
static int
tg_date(const char *s, time_t *t)
{
    int       y, m, d, n;
    int64_t   days;

    n = 0;

    if (sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10
        || s[10] != '\0' || m < 1 || m > 12 || d < 1 || d > 31 || y < 1970)
    {
        return -1;
    }

    /* days from the civil date (Howard Hinnant's algorithm) */
    y -= m <= 2;
    days = (int64_t) (y / 400) * 146097
           + (int64_t) (y % 400) * 365 + (y % 400) / 4 - (y % 400) / 100
           + (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1 - 719468;

    *t = (time_t) (days * 86400);

    return 0;
}


static int
tg_set_read(json_t *obj, tg_price_set_t *set, const char *model, char *err,
    size_t errlen)
{
    size_t        i;
    json_t       *v;
    const char   *key;

    memset(set, 0, sizeof(tg_price_set_t));

    if (!json_is_object(obj)) {
        snprintf(err, errlen, "price of \"%s\" is not an object", model);
        return -1;
    }

    json_object_foreach(obj, key, v) {
        if (key[0] == '_') {
            continue;
        }

        if (strcmp(key, "from") == 0) {
            if (!json_is_string(v)
                || tg_date(json_string_value(v), &set->from) != 0)
            {
                snprintf(err, errlen, "price of \"%s\": \"from\" must be a"
                         " date, YYYY-MM-DD", model);
                return -1;
            }

            continue;
        }

        for (i = 0; i < TG_UNITS; i++) {
            if (strcmp(key, tg_units[i].key) == 0
                || (tg_units[i].legacy
                    && strcmp(key, tg_units[i].legacy) == 0))
            {
                break;
            }
        }

        if (i == TG_UNITS) {
            snprintf(err, errlen, "price of \"%s\": unknown unit \"%s\"",
                     model, key);
            return -1;
        }

        if (set->priced & (1u << i)) {
            snprintf(err, errlen, "price of \"%s\": \"%s\" given twice",
                     model, tg_units[i].key);
            return -1;
        }

        if (tg_rate_read(v, &tg_units[i], &set->rate[i]) != 0) {
            snprintf(err, errlen, "price of \"%s\": \"%s\" must be a number"
                     " from 0 to 1000000 (USD), or {\"base\": N, \"tiers\":"
                     " [{\"start\": TOKENS, \"price\": N}, ...]}", model,
                     key);
            return -1;
        }

        set->priced |= 1u << i;
    }

    if (set->priced == 0) {
        snprintf(err, errlen, "price of \"%s\" names no unit (e.g."
                 " \"input_mtok\", \"output_mtok\")", model);
        return -1;
    }

    return 0;
}


/* PRICES or [PRICES, ...] */
static int
tg_price_read(json_t *v, tg_price_t *price, const char *model, char *err,
    size_t errlen)
{
    size_t   i, n;
    json_t  *e;

    n = json_is_array(v) ? json_array_size(v) : 1;

    if (n == 0) {
        snprintf(err, errlen, "price of \"%s\" is empty", model);
        return -1;
    }

    price->sets = calloc(n, sizeof(tg_price_set_t));
    if (price->sets == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    price->nsets = n;

    for (i = 0; i < n; i++) {
        e = json_is_array(v) ? json_array_get(v, i) : v;

        if (tg_set_read(e, &price->sets[i], model, err, errlen) != 0) {
            tg_price_clear(price);
            return -1;
        }
    }

    return 0;
}


static void
tg_lower(char *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        s[i] = (char) tolower((unsigned char) s[i]);
    }
}


static void
tg_match_free(tg_match_t *m)
{
    size_t  i;

    if (m->type == TG_M_REGEX && m->s != NULL) {
        regfree(&m->re);
    }

    free(m->s);

    for (i = 0; i < m->n; i++) {
        tg_match_free(&m->sub[i]);
    }

    free(m->sub);
    memset(m, 0, sizeof(tg_match_t));
}


/* {"equals" | ... | "regex": STRING}: 0, -1 not one, -2 err says why */
static int
tg_match_leaf(json_t *arg, tg_match_t *m, char *err, size_t errlen)
{
    if (!json_is_string(arg)) {
        return -1;
    }

    if (m->type == TG_M_REGEX) {
        /* the database's regexes see the lower-cased name */
        if (regcomp(&m->re, json_string_value(arg), REG_EXTENDED | REG_NOSUB)
            != 0)
        {
            snprintf(err, errlen, "match regex \"%s\" is not a POSIX"
                     " extended regex", json_string_value(arg));
            return -2;
        }
    }

    m->len = json_string_length(arg);
    m->s = strdup(json_string_value(arg));
    if (m->s == NULL) {
        if (m->type == TG_M_REGEX) {
            regfree(&m->re);
        }

        return -1;
    }

    if (m->type != TG_M_REGEX) {
        tg_lower(m->s, m->len);
    }

    return 0;
}


static int
tg_match_read(json_t *v, tg_match_t *m, int depth, char *err, size_t errlen)
{
    size_t       i;
    json_t      *arg, *e;
    const char  *key;

    static const char  *names[] = {
        "equals", "starts_with", "ends_with", "contains", "regex", "not",
        "or", "and"
    };

    memset(m, 0, sizeof(tg_match_t));

    if (!json_is_object(v) || json_object_size(v) != 1 || depth > 16) {
        goto bad;
    }

    key = json_object_iter_key(json_object_iter(v));
    arg = json_object_iter_value(json_object_iter(v));

    for (m->type = 0; m->type <= TG_M_AND; m->type++) {
        if (strcmp(key, names[m->type]) == 0) {
            break;
        }
    }

    switch (m->type) {

    case TG_M_NOT:
        m->sub = calloc(1, sizeof(tg_match_t));
        if (m->sub == NULL) {
            goto bad;
        }

        m->n = 1;

        return tg_match_read(arg, m->sub, depth + 1, err, errlen);

    case TG_M_OR:
    case TG_M_AND:
        if (!json_is_array(arg) || json_array_size(arg) == 0) {
            goto bad;
        }

        m->sub = calloc(json_array_size(arg), sizeof(tg_match_t));
        if (m->sub == NULL) {
            goto bad;
        }

        json_array_foreach(arg, i, e) {
            m->n++;

            if (tg_match_read(e, &m->sub[i], depth + 1, err, errlen) != 0) {
                return -1;
            }
        }

        return 0;

    case TG_M_AND + 1:
        goto bad;

    default:
        switch (tg_match_leaf(arg, m, err, errlen)) {
        case 0:
            return 0;
        case -2:
            return -1;
        default:
            goto bad;
        }
    }

bad:

    snprintf(err, errlen, "a match must be one of {\"equals\" | "
             "\"starts_with\" | \"ends_with\" | \"contains\" | \"regex\": "
             "STRING}, {\"not\": MATCH}, {\"or\" | \"and\": [MATCH, ...]}");

    return -1;
}


/* name: lower case, NUL-terminated */
static int
tg_match(const tg_match_t *m, const char *name, size_t len)
{
    size_t  i;

    switch (m->type) {

    case TG_M_EQUALS:
        return len == m->len && memcmp(name, m->s, len) == 0;

    case TG_M_STARTS:
        return len >= m->len && memcmp(name, m->s, m->len) == 0;

    case TG_M_ENDS:
        return len >= m->len
               && memcmp(name + len - m->len, m->s, m->len) == 0;

    case TG_M_CONTAINS:
        return strstr(name, m->s) != NULL;

    case TG_M_REGEX:
        return regexec(&m->re, name, 0, NULL, 0) == 0;

    case TG_M_NOT:
        return !tg_match(m->sub, name, len);

    case TG_M_OR:
        for (i = 0; i < m->n; i++) {
            if (tg_match(&m->sub[i], name, len)) {
                return 1;
            }
        }

        return 0;

    default: /* TG_M_AND */
        for (i = 0; i < m->n; i++) {
            if (!tg_match(&m->sub[i], name, len)) {
                return 0;
            }
        }

        return 1;
    }
}


static void
tg_provider_free(tg_provider_t *pv)
{
    size_t  i;

    if (pv->has_match) {
        tg_match_free(&pv->match);
    }

    for (i = 0; i < pv->n; i++) {
        tg_match_free(&pv->models[i].match);
        tg_price_clear(&pv->models[i].price);
    }

    free(pv->models);
    memset(pv, 0, sizeof(tg_provider_t));
}


static int
tg_provider_read(json_t *v, tg_provider_t *pv, char *err, size_t errlen)
{
    size_t       i;
    json_t      *models, *m, *id;
    char         name[128];

    memset(pv, 0, sizeof(tg_provider_t));
    models = json_object_get(v, "models");

    if (!json_is_object(v) || !json_is_array(models)) {
        snprintf(err, errlen, "a provider needs \"models\": [...]");
        return -1;
    }

    if (json_object_get(v, "match") != NULL) {
        pv->has_match = 1;

        if (tg_match_read(json_object_get(v, "match"), &pv->match, 0, err,
                          errlen)
            != 0)
        {
            return -1;
        }
    }

    pv->models = calloc(json_array_size(models) + 1, sizeof(tg_model_t));
    if (pv->models == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    json_array_foreach(models, i, m) {
        id = json_object_get(m, "id");
        snprintf(name, sizeof(name), "%s",
                 json_is_string(id) ? json_string_value(id) : "?");
        pv->n++;

        if (!json_is_string(id)
            || tg_match_read(json_object_get(m, "match"),
                             &pv->models[i].match, 0, err, errlen)
               != 0
            || tg_price_read(json_object_get(m, "prices"),
                             &pv->models[i].price, name, err, errlen)
               != 0)
        {
            if (!json_is_string(id)) {
                snprintf(err, errlen, "a provider's model needs an \"id\"");
            }

            return -1;
        }
    }

    return 0;
}


static int
tg_price_cmp(const void *a, const void *b)
{
    return strcmp(((const tg_price_entry_t *) a)->name,
                  ((const tg_price_entry_t *) b)->name);
}


static tg_price_entry_t *
tg_prices_find(const tg_prices_t *p, const char *name)
{
    tg_price_entry_t  key;

    if (p->n == 0) {
        return NULL;
    }

    key.name = (char *) name;

    return bsearch(&key, p->entries, p->n, sizeof(tg_price_entry_t),
                   tg_price_cmp);
}


tg_prices_t *
tg_prices_new(void)
{
    tg_prices_t  *p;

    p = calloc(1, sizeof(tg_prices_t));
    if (p == NULL) {
        return NULL;
    }

    /* without it lookups are only slower */
    p->cache = calloc(TG_PRICE_CACHE, sizeof(tg_price_cached_t));

    return p;
}


static void
tg_prices_forget(tg_prices_t *p)
{
    if (p->cache) {
        memset(p->cache, 0, TG_PRICE_CACHE * sizeof(tg_price_cached_t));
    }
}


/* a file's "models" object: a later file's price replaces an earlier one */
static int
tg_prices_add_models(tg_prices_t *p, json_t *models, char *err,
    size_t errlen)
{
    size_t             i, n, k;
    json_t            *v;
    char              *name;
    const char        *key;
    tg_price_t         price;
    tg_price_entry_t  *e, *entries;

    n = models ? json_object_size(models) : 0;

    entries = realloc(p->entries, (p->n + n + 1) * sizeof(tg_price_entry_t));
    if (entries == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    p->entries = entries;
    k = p->n;

    json_object_foreach(models, key, v) {
        if (tg_price_read(v, &price, key, err, errlen) != 0) {
            goto failed;
        }

        name = strdup(key);
        if (name == NULL) {
            tg_price_clear(&price);
            snprintf(err, errlen, "out of memory");
            goto failed;
        }

        tg_lower(name, strlen(name));

        /* the earlier files' entries are sorted, this file's not yet */
        e = tg_prices_find(p, name);

        for (i = p->n; e == NULL && i < k; i++) {
            if (strcmp(p->entries[i].name, name) == 0) {
                e = &p->entries[i];
            }
        }

        if (e != NULL) {
            free(name);
            tg_price_clear(&e->price);
            e->price = price;
            continue;
        }

        p->entries[k].name = name;
        p->entries[k].price = price;
        k++;
    }

    p->n = k;
    qsort(p->entries, p->n, sizeof(tg_price_entry_t), tg_price_cmp);

    return 0;

failed:

    /* what was added is freed with p */
    p->n = k;

    return -1;
}


/* a file's "providers" array: the new layer is searched first */
static int
tg_prices_add_providers(tg_prices_t *p, json_t *providers, char *err,
    size_t errlen)
{
    size_t          i, n;
    json_t         *v;
    tg_provider_t  *pv;

    n = json_array_size(providers);

    if (n == 0) {
        return 0;
    }

    pv = calloc(p->nproviders + n, sizeof(tg_provider_t));
    if (pv == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    if (p->nproviders) {
        memcpy(pv + n, p->providers, p->nproviders * sizeof(tg_provider_t));
    }

    free(p->providers);
    p->providers = pv;
    p->nproviders += n;

    json_array_foreach(providers, i, v) {
        if (tg_provider_read(v, &p->providers[i], err, errlen) != 0) {
            return -1;
        }
    }

    return 0;
}


int
tg_prices_add(tg_prices_t *p, const char *json, size_t len, char *err,
    size_t errlen)
{
    json_t        *root, *models, *providers, *v;
    tg_price_t     price;
    json_error_t   jerr;

    /* a layer changes what names resolve to, even one that fails midway */
    tg_prices_forget(p);

    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "invalid JSON: %s at line %d", jerr.text,
                 jerr.line);
        return -1;
    }

    models = json_object_get(root, "models");
    providers = json_object_get(root, "providers");

    if (!json_is_object(root)
        || (models != NULL && !json_is_object(models))
        || (providers != NULL && !json_is_array(providers))
        || (models == NULL && providers == NULL))
    {
        snprintf(err, errlen, "no \"models\" object or \"providers\" array");
        goto failed;
    }

    if (tg_prices_add_models(p, models, err, errlen) != 0
        || tg_prices_add_providers(p, providers, err, errlen) != 0)
    {
        goto failed;
    }

    v = json_object_get(root, "default");

    if (v != NULL && !json_is_null(v)) {
        if (tg_price_read(v, &price, "default", err, errlen) != 0) {
            goto failed;
        }

        tg_price_clear(&p->dflt);
        p->dflt = price;
        p->has_default = 1;
    }

    json_decref(root);

    return 0;

failed:

    json_decref(root);

    return -1;
}


tg_prices_t *
tg_prices_parse(const char *json, size_t len, char *err, size_t errlen)
{
    tg_prices_t  *p;

    p = tg_prices_new();
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    if (tg_prices_add(p, json, len, err, errlen) != 0) {
        tg_prices_free(p);
        return NULL;
    }

    return p;
}


int
tg_prices_add_file(tg_prices_t *p, const char *path, char *err,
    size_t errlen)
{
    int    rc;
    long   size;
    char  *buf;
    FILE  *f;

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return -1;
    }

    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0
        || size > 16 * 1024 * 1024 || fseek(f, 0, SEEK_SET) != 0)
    {
        snprintf(err, errlen, "cannot read, or larger than 16M");
        fclose(f);
        return -1;
    }

    buf = malloc(size + 1);
    if (buf == NULL || fread(buf, 1, size, f) != (size_t) size) {
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
        free(buf);
        fclose(f);
        return -1;
    }

    fclose(f);

    rc = tg_prices_add(p, buf, size, err, errlen);
    free(buf);

    return rc;
}


tg_prices_t *
tg_prices_load(const char *path, char *err, size_t errlen)
{
    tg_prices_t  *p;

    p = tg_prices_new();
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    if (tg_prices_add_file(p, path, err, errlen) != 0) {
        tg_prices_free(p);
        return NULL;
    }

    return p;
}


void
tg_prices_free(tg_prices_t *p)
{
    size_t  i;

    if (p == NULL) {
        return;
    }

    for (i = 0; i < p->n; i++) {
        free(p->entries[i].name);
        tg_price_clear(&p->entries[i].price);
    }

    free(p->entries);

    for (i = 0; i < p->nproviders; i++) {
        tg_provider_free(&p->providers[i]);
    }

    free(p->providers);
    tg_price_clear(&p->dflt);
    free(p->cache);
    free(p);
}


size_t
tg_prices_count(const tg_prices_t *p)
{
    size_t  i, n;

    n = p->n;

    for (i = 0; i < p->nproviders; i++) {
        n += p->providers[i].n;
    }

    return n;
}


static int
tg_all_digits(const char *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }

    return 1;
}


/* the length of model without a dated or numbered version suffix */
static size_t
tg_strip_version(const char *m, size_t len)
{
    /* -2024-08-06 */
    if (len > 11 && m[len - 11] == '-' && m[len - 6] == '-'
        && m[len - 3] == '-' && tg_all_digits(m + len - 10, 4)
        && tg_all_digits(m + len - 5, 2) && tg_all_digits(m + len - 2, 2))
    {
        return len - 11;
    }

    /* -20241022 or @20241022 */
    if (len > 9 && (m[len - 9] == '-' || m[len - 9] == '@')
        && tg_all_digits(m + len - 8, 8))
    {
        return len - 9;
    }

    /* -001 */
    if (len > 4 && m[len - 4] == '-' && tg_all_digits(m + len - 3, 3)) {
        return len - 4;
    }

    return len;
}


/*
 * "-YYYYMMDD" (a real date, followed by "-", ":" or the end) as
 * "-YYYY-MM-DD", as the database retries a name; 0 if there is none
 */
static size_t
tg_dash_date(const char *s, size_t len, char *out, size_t size)
{
    int     changed, y, m, d, mdays;
    size_t  i, o;

    static const int  days[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
                                 30, 31 };

    changed = 0;

    for (i = 0, o = 0; i < len; i++) {
        if (s[i] == '-' && i + 9 <= len && s[i + 1] == '2'
            && s[i + 2] == '0' && tg_all_digits(s + i + 1, 8)
            && (i + 9 == len || s[i + 9] == '-' || s[i + 9] == ':'))
        {
            y = (s[i + 1] - '0') * 1000 + (s[i + 2] - '0') * 100
                + (s[i + 3] - '0') * 10 + (s[i + 4] - '0');
            m = (s[i + 5] - '0') * 10 + (s[i + 6] - '0');
            d = (s[i + 7] - '0') * 10 + (s[i + 8] - '0');
            mdays = (m >= 1 && m <= 12) ? days[m - 1] : 0;

            if (m == 2 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) {
                mdays = 28;
            }

            if (d >= 1 && d <= mdays && o + 11 < size) {
                memcpy(out + o, s + i, 5);
                out[o + 5] = '-';
                memcpy(out + o + 6, s + i + 5, 2);
                out[o + 8] = '-';
                memcpy(out + o + 9, s + i + 7, 2);
                o += 11;
                i += 8;
                changed = 1;
                continue;
            }
        }

        if (o + 1 >= size) {
            return 0;
        }

        out[o++] = s[i];
    }

    out[o] = '\0';

    return changed ? o : 0;
}


static const tg_price_t *
tg_provider_find(const tg_provider_t *pv, const char *name, size_t len)
{
    size_t  i;

    for (i = 0; i < pv->n; i++) {
        if (tg_match(&pv->models[i].match, name, len)) {
            return &pv->models[i].price;
        }
    }

    return NULL;
}


const tg_price_t *
tg_prices_lookup(const tg_prices_t *p, const char *model, size_t len)
{
    size_t              i;
    uint32_t            h;
    tg_price_cached_t  *c;

    if (p->cache == NULL || len == 0 || len >= TG_PRICE_CACHE_NAME) {
        return tg_prices_lookup_uncached(p, model, len);
    }

    /* FNV-1a */
    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char) model[i]) * 16777619u;
    }

    c = &p->cache[h & (TG_PRICE_CACHE - 1)];

    if (c->len == len && memcmp(c->name, model, len) == 0) {
        return c->price;
    }

    c->price = tg_prices_lookup_uncached(p, model, len);
    memcpy(c->name, model, len);
    c->len = (unsigned char) len;

    return c->price;
}


const tg_price_t *
tg_prices_lookup_uncached(const tg_prices_t *p, const char *model,
    size_t len)
{
    char                     name[260], dated[280];
    size_t                   i, n, dlen;
    unsigned                 pass;
    tg_price_entry_t        *e;
    const tg_price_t        *price;
    const tg_provider_t     *pv;

    if (len == 0 || len >= sizeof(name) || memchr(model, '\0', len)) {
        return p->has_default ? &p->dflt : NULL;
    }

    memcpy(name, model, len);
    name[len] = '\0';
    tg_lower(name, len);

    e = tg_prices_find(p, name);
    if (e) {
        return &e->price;
    }

    model = name;

    if (len > 7 && memcmp(name, "models/", 7) == 0) {
        model += 7;
        len -= 7;

        e = tg_prices_find(p, model);
        if (e) {
            return &e->price;
        }
    }

    dlen = tg_dash_date(model, len, dated, sizeof(dated));

    /* the providers that claim the name first, then the others */
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < p->nproviders; i++) {
            pv = &p->providers[i];

            if ((pass == 0) != (pv->has_match
                                && tg_match(&pv->match, model, len)))
            {
                continue;
            }

            price = tg_provider_find(pv, model, len);

            if (price == NULL && dlen) {
                price = tg_provider_find(pv, dated, dlen);
            }

            if (price) {
                return price;
            }
        }
    }

    n = tg_strip_version(model, len);

    if (n != len) {
        memcpy(dated, model, n);
        dated[n] = '\0';

        e = tg_prices_find(p, dated);
        if (e) {
            return &e->price;
        }
    }

    return p->has_default ? &p->dflt : NULL;
}


/* the set in force at now: the last whose date has come, as the database */
static const tg_price_set_t *
tg_price_at(const tg_price_t *price, time_t now)
{
    size_t  i;

    for (i = price->nsets; i > 0; i--) {
        if (price->sets[i - 1].from == 0 || now >= price->sets[i - 1].from) {
            return &price->sets[i - 1];
        }
    }

    return &price->sets[0];
}


static int64_t
tg_rate_at(const tg_rate_t *r, __int128 input)
{
    unsigned  i;
    int64_t   rate;

    rate = r->base;

    for (i = 0; i < r->ntiers; i++) {
        if (input > r->start[i]) {
            rate = r->price[i];
        }
    }

    return rate;
}


/*
 * The units most specific first (more dimensions; the table's order among
 * equals), so that a unit's share is known before its parent's: worked
 * out once, as the table is constant
 */
static const unsigned char *
tg_units_by_depth(size_t *n)
{
    int                   d;
    size_t                i;
    static size_t         count;
    static unsigned char  order[TG_UNITS];

    if (count == 0) {
        for (d = 6; d > 0; d--) {
            for (i = 0; i < TG_UNITS; i++) {
                if (__builtin_popcount(tg_units[i].dims) == d) {
                    order[count++] = (unsigned char) i;
                }
            }
        }
    }

    *n = count;
    return order;
}


static int64_t
tg_set_cost(const tg_price_set_t *set, const tg_usage_t *u)
{
    size_t                i, j, k, n;
    unsigned              rest;
    __int128              leaf[TG_UNITS], v, input, pico;
    const tg_unit_t      *unit;
    const unsigned char  *order;

    input = u->input > 0 ? u->input : 0;
    pico = 0;
    memset(leaf, 0, sizeof(leaf));
    order = tg_units_by_depth(&n);

    for (k = 0; k < n; k++) {
        i = order[k];
        unit = &tg_units[i];

        if (!(set->priced & (1u << i))) {
            continue;
        }

        if (unit->field == TG_NO_FIELD) {
            v = 1;

        } else {
            v = *(const int64_t *) ((const char *) u + unit->field);
        }

        /* less the shares of its priced children (a unit not yet seen is 0) */
        for (rest = set->priced & ~(1u << i); rest; rest &= rest - 1) {
            j = __builtin_ctz(rest);

            if ((tg_units[j].dims & unit->dims) == unit->dims) {
                v -= leaf[j];
            }
        }

        /* parts that add up to more than their whole: bill the parts */
        leaf[i] = v > 0 ? v : 0;

        pico += leaf[i] * tg_rate_at(&set->rate[i], input);
    }

    /* pico-USD to micro-USD: a fraction of a micro-dollar is still a cost */
    v = (pico + 999999) / 1000000;

    return v >= TG_COST_MAX ? TG_COST_MAX : (int64_t) v;
}


/* whether the set prices the unit that reads this usage field */
static int
tg_field_priced(const tg_price_set_t *set, size_t field)
{
    size_t  i;

    for (i = 0; i < TG_UNITS; i++) {
        if (tg_units[i].field == field) {
            return (set->priced & (1u << i)) != 0;
        }
    }

    return 0;
}


int64_t
tg_price_cost(const tg_price_t *price, const tg_usage_t *u, time_t now)
{
    return tg_set_cost(tg_price_at(price, now), u);
}


int64_t
tg_price_reserve(const tg_price_t *price, int64_t input, int64_t output,
    time_t now)
{
    int                    out_priced[5];
    size_t                 i, o;
    int64_t                c, max;
    tg_usage_t             u;
    const tg_price_set_t  *set;

    /*
     * Each input token may be billed as a cache write of either TTL or
     * as audio, image or video; each output token as reasoning, audio,
     * image or video (an image answer is billed at 4-12 times text)
     */
    static const size_t    in[] = {
        TG_NO_FIELD, tg_field(cache_write), tg_field(cache_write_5m),
        tg_field(cache_write_1h), tg_field(input_audio),
        tg_field(input_image), tg_field(input_video)
    };
    static const size_t    out[] = {
        TG_NO_FIELD, tg_field(reasoning), tg_field(output_audio),
        tg_field(output_image), tg_field(output_video)
    };

    set = tg_price_at(price, now);
    max = 0;

    /* a field no unit of the set prices costs what the plain case does */
    for (o = 0; o < sizeof(out) / sizeof(out[0]); o++) {
        out_priced[o] = out[o] == TG_NO_FIELD || tg_field_priced(set, out[o]);
    }

    for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        if (in[i] != TG_NO_FIELD && !tg_field_priced(set, in[i])) {
            continue;
        }

        for (o = 0; o < sizeof(out) / sizeof(out[0]); o++) {
            if (!out_priced[o]) {
                continue;
            }

            memset(&u, 0, sizeof(tg_usage_t));
            u.input = input;
            u.output = output;

            if (in[i] != TG_NO_FIELD) {
                *(int64_t *) ((char *) &u + in[i]) = input;
            }

            if (out[o] != TG_NO_FIELD) {
                *(int64_t *) ((char *) &u + out[o]) = output;
            }

            c = tg_set_cost(set, &u);
            max = c > max ? c : max;
        }
    }

    return max;
}
