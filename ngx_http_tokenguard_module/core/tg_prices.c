#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tg_prices.h"


typedef struct {
    char        *name;
    tg_price_t   price;
} tg_price_entry_t;


struct tg_prices_s {
    tg_price_entry_t  *entries;         /* sorted by name */
    size_t             n;
    int                has_default;
    tg_price_t         dflt;
};


static int
tg_price_read(json_t *obj, tg_price_t *p, const char *model, char *err,
    size_t errlen)
{
    json_t  *in, *cached, *write, *out;

    in = json_object_get(obj, "input");
    out = json_object_get(obj, "output");
    cached = json_object_get(obj, "cached_input");
    write = json_object_get(obj, "cache_write");

    if (!json_is_object(obj) || !json_is_number(in) || !json_is_number(out)
        || (cached != NULL && !json_is_number(cached))
        || (write != NULL && !json_is_number(write)))
    {
        snprintf(err, errlen, "price of \"%s\" needs numbers \"input\" and"
                 " \"output\" (and optionally \"cached_input\","
                 " \"cache_write\")", model);
        return -1;
    }

    p->input = json_number_value(in);
    p->output = json_number_value(out);
    p->cached_input = cached ? json_number_value(cached) : p->input;
    p->cache_write = write ? json_number_value(write) : p->input;

    if (p->input < 0 || p->output < 0 || p->cached_input < 0
        || p->cache_write < 0 || p->input > 1e6 || p->output > 1e6
        || p->cached_input > 1e6 || p->cache_write > 1e6)
    {
        snprintf(err, errlen, "price of \"%s\" must be from 0 to 1000000"
                 " USD per 1M tokens", model);
        return -1;
    }

    return 0;
}


static int
tg_price_cmp(const void *a, const void *b)
{
    return strcmp(((const tg_price_entry_t *) a)->name,
                  ((const tg_price_entry_t *) b)->name);
}


tg_prices_t *
tg_prices_parse(const char *json, size_t len, char *err, size_t errlen)
{
    json_t        *root, *models, *v;
    const char    *name;
    tg_prices_t   *p;
    json_error_t   jerr;

    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "invalid JSON: %s at line %d", jerr.text,
                 jerr.line);
        return NULL;
    }

    p = calloc(1, sizeof(tg_prices_t));
    models = json_object_get(root, "models");

    if (p == NULL || !json_is_object(models)) {
        snprintf(err, errlen, "no \"models\" object");
        goto failed;
    }

    p->entries = calloc(json_object_size(models) + 1,
                        sizeof(tg_price_entry_t));
    if (p->entries == NULL) {
        snprintf(err, errlen, "out of memory");
        goto failed;
    }

    json_object_foreach(models, name, v) {
        if (tg_price_read(v, &p->entries[p->n].price, name, err, errlen)
            != 0)
        {
            goto failed;
        }

        p->entries[p->n].name = strdup(name);
        if (p->entries[p->n].name == NULL) {
            snprintf(err, errlen, "out of memory");
            goto failed;
        }

        p->n++;
    }

    qsort(p->entries, p->n, sizeof(tg_price_entry_t), tg_price_cmp);

    v = json_object_get(root, "default");

    if (v != NULL && !json_is_null(v)) {
        if (tg_price_read(v, &p->dflt, "default", err, errlen) != 0) {
            goto failed;
        }

        p->has_default = 1;
    }

    json_decref(root);

    return p;

failed:

    json_decref(root);
    tg_prices_free(p);

    return NULL;
}


tg_prices_t *
tg_prices_load(const char *path, char *err, size_t errlen)
{
    long          size;
    char         *buf;
    FILE         *f;
    tg_prices_t  *p;

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open: %m");
        return NULL;
    }

    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0
        || size > 16 * 1024 * 1024 || fseek(f, 0, SEEK_SET) != 0)
    {
        snprintf(err, errlen, "cannot read, or larger than 16M");
        fclose(f);
        return NULL;
    }

    buf = malloc(size + 1);
    if (buf == NULL || fread(buf, 1, size, f) != (size_t) size) {
        snprintf(err, errlen, "cannot read: %m");
        free(buf);
        fclose(f);
        return NULL;
    }

    fclose(f);

    p = tg_prices_parse(buf, size, err, errlen);
    free(buf);

    return p;
}


void
tg_prices_free(tg_prices_t *p)
{
    size_t  i;

    if (p == NULL) {
        return;
    }

    if (p->entries) {
        for (i = 0; i < p->n; i++) {
            free(p->entries[i].name);
        }

        free(p->entries);
    }

    free(p);
}


size_t
tg_prices_count(const tg_prices_t *p)
{
    return p->n;
}


static const tg_price_t *
tg_prices_find(const tg_prices_t *p, const char *model, size_t len)
{
    char               name[260];
    tg_price_entry_t   key, *e;

    if (len >= sizeof(name)) {
        return NULL;
    }

    memcpy(name, model, len);
    name[len] = '\0';
    key.name = name;

    e = bsearch(&key, p->entries, p->n, sizeof(tg_price_entry_t),
                tg_price_cmp);

    return e ? &e->price : NULL;
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


const tg_price_t *
tg_prices_lookup(const tg_prices_t *p, const char *model, size_t len)
{
    size_t             n;
    const tg_price_t  *price;

    price = tg_prices_find(p, model, len);
    if (price) {
        return price;
    }

    if (len > 7 && memcmp(model, "models/", 7) == 0) {
        model += 7;
        len -= 7;

        price = tg_prices_find(p, model, len);
        if (price) {
            return price;
        }
    }

    n = tg_strip_version(model, len);

    if (n != len) {
        price = tg_prices_find(p, model, n);
        if (price) {
            return price;
        }
    }

    return p->has_default ? &p->dflt : NULL;
}


int64_t
tg_price_cost(const tg_price_t *price, int64_t input, int64_t cached,
    int64_t cache_write, int64_t output)
{
    double   cost;
    int64_t  micro;

    if (cached > input) {
        cached = input;
    }

    if (cache_write > input - cached) {
        cache_write = input - cached;
    }

    cost = (double) (input - cached - cache_write) * price->input
           + (double) cached * price->cached_input
           + (double) cache_write * price->cache_write
           + (double) output * price->output;

    /* huge token counts must not wrap around to a negative cost */
    if (cost >= (double) TG_COST_MAX) {
        return TG_COST_MAX;
    }

    /* a fraction of a micro-dollar is still a cost */
    micro = (int64_t) cost;

    return ((double) micro < cost - 1e-6) ? micro + 1 : micro;
}
