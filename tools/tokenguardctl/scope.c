/*
 * What a scope's hashes hold: the period hash tg:{u:NAME}:PERIOD parsed
 * into counters and per model, category and reroute lists, and the ops
 * overrides tg:{u:NAME}:limits.  Missing fields are 0 (or "not set").
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tgc.h"


const char  *tgc_limit_names[TGC_LIM_N] = {
    "usd_month",
    "usd_day",
    "tokens_month",
    "tokens_day",
    "requests_month",
    "requests_day",
    "sandbox_usd_month",
    "sandbox_usd_day"
};


/* the would-be refusals of a dry run: all, then by kind */
const char  *tgc_dry_kinds[TGC_DRY_KINDS] = {
    "", "identity", "policy", "budget", "sandbox"
};


/* the caps nginx.conf applied, as the module recorded them */
static const char  *tgc_conf_names[4] = {
    "conf_usd", "conf_tokens", "conf_requests", "conf_sandbox_usd"
};


void
tgc_period_init(tgc_period_t *p)
{
    memset(p, 0, sizeof(tgc_period_t));
}


void
tgc_period_free(tgc_period_t *p)
{
    tgc_list_free(&p->models);
    tgc_list_free(&p->cats);
    tgc_list_free(&p->reroutes);
    tgc_list_free(&p->routes);
}


tgc_item_t *
tgc_list_get(tgc_list_t *l, const char *name, size_t len)
{
    size_t  i;

    for (i = 0; i < l->n; i++) {
        if (l->items[i].len == len && memcmp(l->items[i].name, name, len) == 0)
        {
            return &l->items[i];
        }
    }

    return tgc_list_push(l, name, len);
}


/* a new item, its counters 0 and no cap */
tgc_item_t *
tgc_list_push(tgc_list_t *l, const char *name, size_t len)
{
    size_t       cap;
    tgc_item_t  *items, *it;

    if (l->n == l->cap) {
        cap = l->cap ? l->cap * 2 : 16;
        items = realloc(l->items, cap * sizeof(tgc_item_t));
        if (items == NULL) {
            return NULL;
        }

        l->items = items;
        l->cap = cap;
    }

    it = &l->items[l->n];
    memset(it, 0, sizeof(tgc_item_t));

    it->name = malloc(len + 1);
    if (it->name == NULL) {
        return NULL;
    }

    memcpy(it->name, name, len);
    it->name[len] = '\0';
    it->len = len;
    it->used_pct = -1;
    it->cap_usd = -1;

    l->n++;

    return it;
}


static int
tgc_item_cmp(const void *a, const void *b)
{
    int                n;
    const tgc_item_t  *x = a, *y = b;

    if (x->usd != y->usd) {
        return x->usd > y->usd ? -1 : 1;
    }

    if (x->sandbox_usd != y->sandbox_usd) {
        return x->sandbox_usd > y->sandbox_usd ? -1 : 1;
    }

    if (x->requests != y->requests) {
        return x->requests > y->requests ? -1 : 1;
    }

    n = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);
    if (n) {
        return n;
    }

    return x->len < y->len ? -1 : (x->len > y->len);
}


/* biggest spend first, then by name */
void
tgc_list_sort_usd(tgc_list_t *l)
{
    if (l->n > 1) {
        qsort(l->items, l->n, sizeof(tgc_item_t), tgc_item_cmp);
    }
}


void
tgc_list_free(tgc_list_t *l)
{
    size_t  i;

    for (i = 0; i < l->n; i++) {
        free(l->items[i].name);
    }

    free(l->items);
    memset(l, 0, sizeof(tgc_list_t));
}


/* "agentic" is tool-using work; every other category is routine work */
int
tgc_category_agentic(const char *name, size_t len)
{
    return len == 7 && memcmp(name, "agentic", 7) == 0;
}


static int64_t
tgc_value(const redisReply *v)
{
    char       *end;
    long long   n;

    if (v->type == REDIS_REPLY_INTEGER) {
        return v->integer;
    }

    if (v->type != REDIS_REPLY_STRING || v->len == 0) {
        return 0;
    }

    errno = 0;
    n = strtoll(v->str, &end, 10);

    if (errno || end != v->str + v->len) {
        return 0;
    }

    return n;
}


/*
 * "model:M:usd" -> M and "usd": the suffix follows the last ':', since
 * model names may hold ':' themselves; 0, or -1 if the field has none
 */
static int
tgc_split(const char *f, size_t len, size_t plen, const char **name,
    size_t *nlen, const char **suffix)
{
    size_t  i;

    for (i = len; i > plen; i--) {
        if (f[i - 1] == ':') {
            *name = f + plen;
            *nlen = i - 1 - plen;
            *suffix = f + i;
            return 0;
        }
    }

    return -1;
}


/*
 * The fields of the rollout (route:TAG:*, conf_*): 1 if f was one of
 * them
 */
static int
tgc_period_rollout(tgc_period_t *p, const char *f, size_t len, int64_t v)
{
    size_t       i, nlen;
    const char  *name, *sfx;
    tgc_item_t  *it;

    if (len > 6 && memcmp(f, "route:", 6) == 0) {
        if (tgc_split(f, len, 6, &name, &nlen, &sfx) != 0) {
            return 1;
        }

        it = tgc_list_get(&p->routes, name, nlen);
        if (it == NULL) {
            return 1;
        }

        if (strcmp(sfx, "requests") == 0) {
            it->requests += v;

        } else if (strcmp(sfx, "saved_usd") == 0) {
            it->saved_usd += v;
            it->usd += v;

        } else if (strcmp(sfx, "dry_requests") == 0) {
            it->dry_requests += v;

        } else if (strcmp(sfx, "dry_saved_usd") == 0) {
            it->dry_saved_usd += v;
        }

        return 1;
    }

    for (i = 0; i < 4; i++) {
        if (strlen(tgc_conf_names[i]) == len
            && memcmp(tgc_conf_names[i], f, len) == 0)
        {
            p->conf[i] = v;
            p->conf_set[i] = 1;
            return 1;
        }
    }

    return 0;
}


void
tgc_period_parse(const redisReply *r, tgc_period_t *p)
{
    size_t              i, len, nlen;
    int64_t             v;
    const char         *f, *name, *sfx;
    tgc_item_t         *it;
    const redisReply   *k;

    static const struct {
        const char  *name;
        size_t       off;
    } fields[] = {
#define TGC_F(x)  { #x, offsetof(tgc_period_t, x) }
        TGC_F(usd), TGC_F(tokens_in), TGC_F(tokens_out), TGC_F(requests),
        TGC_F(reserved_usd), TGC_F(reserved_tokens),
        TGC_F(reserved_requests), TGC_F(sandbox_usd),
        TGC_F(sandbox_reserved_usd), TGC_F(sandbox_tokens_in),
        TGC_F(sandbox_tokens_out), TGC_F(denied), TGC_F(rerouted),
        TGC_F(estimated), TGC_F(saved_usd), TGC_F(dry_saved_usd),
        { "dry_denied", offsetof(tgc_period_t, dry) },
        { "dry_denied:identity", offsetof(tgc_period_t, dry) + 8 },
        { "dry_denied:policy", offsetof(tgc_period_t, dry) + 16 },
        { "dry_denied:budget", offsetof(tgc_period_t, dry) + 24 },
        { "dry_denied:sandbox", offsetof(tgc_period_t, dry) + 32 },
#undef TGC_F
        { NULL, 0 }
    };

    if (r->type != REDIS_REPLY_ARRAY) {
        return;
    }

    for (i = 0; i + 1 < r->elements; i += 2) {
        k = r->element[i];

        if (k->type != REDIS_REPLY_STRING) {
            continue;
        }

        f = k->str;
        len = k->len;
        v = tgc_value(r->element[i + 1]);
        it = NULL;

        if (len > 6 && memcmp(f, "model:", 6) == 0) {
            if (tgc_split(f, len, 6, &name, &nlen, &sfx) != 0) {
                continue;
            }

            if (strcmp(sfx, "usd") == 0) {
                it = tgc_list_get(&p->models, name, nlen);
                if (it) {
                    it->usd += v;
                }

            } else if (strcmp(sfx, "tokens_in") == 0) {
                it = tgc_list_get(&p->models, name, nlen);
                if (it) {
                    it->tokens_in += v;
                }

            } else if (strcmp(sfx, "tokens_out") == 0) {
                it = tgc_list_get(&p->models, name, nlen);
                if (it) {
                    it->tokens_out += v;
                }
            }

            continue;
        }

        if (len > 4 && memcmp(f, "cat:", 4) == 0) {
            if (tgc_split(f, len, 4, &name, &nlen, &sfx) != 0) {
                continue;
            }

            if (strcmp(sfx, "usd") == 0) {
                it = tgc_list_get(&p->cats, name, nlen);
                if (it) {
                    it->usd += v;
                }

            } else if (strcmp(sfx, "requests") == 0) {
                it = tgc_list_get(&p->cats, name, nlen);
                if (it) {
                    it->requests += v;
                }
            }

            continue;
        }

        if (len > 8 && memcmp(f, "reroute:", 8) == 0) {
            if (tgc_split(f, len, 8, &name, &nlen, &sfx) != 0) {
                continue;
            }

            if (strcmp(sfx, "requests") == 0) {
                it = tgc_list_get(&p->reroutes, name, nlen);
                if (it) {
                    it->requests += v;
                }

            } else if (strcmp(sfx, "saved_usd") == 0) {
                it = tgc_list_get(&p->reroutes, name, nlen);
                if (it) {
                    it->saved_usd += v;
                    /* a reroute list is sorted by what it saved */
                    it->usd += v;
                }
            }

            continue;
        }

        if (tgc_period_rollout(p, f, len, v)) {
            continue;
        }

        for (nlen = 0; fields[nlen].name; nlen++) {
            if (strlen(fields[nlen].name) == len
                && memcmp(fields[nlen].name, f, len) == 0)
            {
                *(int64_t *) ((char *) p + fields[nlen].off) = v;
                break;
            }
        }
    }
}


static void
tgc_list_merge(tgc_list_t *dst, const tgc_list_t *src)
{
    size_t       i;
    tgc_item_t  *it;

    for (i = 0; i < src->n; i++) {
        it = tgc_list_get(dst, src->items[i].name, src->items[i].len);
        if (it == NULL) {
            continue;
        }

        it->usd += src->items[i].usd;
        it->tokens_in += src->items[i].tokens_in;
        it->tokens_out += src->items[i].tokens_out;
        it->requests += src->items[i].requests;
        it->saved_usd += src->items[i].saved_usd;
        it->sandbox_usd += src->items[i].sandbox_usd;
        it->dry_requests += src->items[i].dry_requests;
        it->dry_saved_usd += src->items[i].dry_saved_usd;
    }
}


/* dst += src, the lists by name */
void
tgc_period_merge(tgc_period_t *dst, const tgc_period_t *src)
{
    size_t  i;

    dst->usd += src->usd;
    dst->tokens_in += src->tokens_in;
    dst->tokens_out += src->tokens_out;
    dst->requests += src->requests;
    dst->reserved_usd += src->reserved_usd;
    dst->reserved_tokens += src->reserved_tokens;
    dst->reserved_requests += src->reserved_requests;
    dst->sandbox_usd += src->sandbox_usd;
    dst->sandbox_reserved_usd += src->sandbox_reserved_usd;
    dst->sandbox_tokens_in += src->sandbox_tokens_in;
    dst->sandbox_tokens_out += src->sandbox_tokens_out;
    dst->denied += src->denied;
    dst->rerouted += src->rerouted;
    dst->estimated += src->estimated;
    dst->saved_usd += src->saved_usd;
    dst->dry_saved_usd += src->dry_saved_usd;

    for (i = 0; i < TGC_DRY_KINDS; i++) {
        dst->dry[i] += src->dry[i];
    }

    tgc_list_merge(&dst->models, &src->models);
    tgc_list_merge(&dst->routes, &src->routes);
    tgc_list_merge(&dst->cats, &src->cats);
    tgc_list_merge(&dst->reroutes, &src->reroutes);
}


void
tgc_limits_parse(const redisReply *r, tgc_limits_t *lim)
{
    int                 j;
    char               *end;
    size_t              i;
    long long           v;
    const redisReply   *k, *val;

    memset(lim, 0, sizeof(tgc_limits_t));

    if (r->type != REDIS_REPLY_ARRAY) {
        return;
    }

    for (i = 0; i + 1 < r->elements; i += 2) {
        k = r->element[i];
        val = r->element[i + 1];

        if (k->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING
            || val->len == 0)
        {
            continue;
        }

        j = tgc_limit_field(k->str);
        if (j < 0) {
            continue;
        }

        /* as the module: a value that is not a number is no override */
        errno = 0;
        v = strtoll(val->str, &end, 10);
        if (errno || end != val->str + val->len) {
            continue;
        }

        lim->value[j] = v;
        lim->set[j] = 1;
    }
}


/* the index of a limits field name, or -1 */
int
tgc_limit_field(const char *s)
{
    int  i;

    for (i = 0; i < TGC_LIM_N; i++) {
        if (strcmp(tgc_limit_names[i], s) == 0) {
            return i;
        }
    }

    return -1;
}


int
tgc_limit_is_usd(int field)
{
    return field == TGC_LIM_USD_MONTH || field == TGC_LIM_USD_DAY
           || field == TGC_LIM_SANDBOX_USD_MONTH
           || field == TGC_LIM_SANDBOX_USD_DAY;
}


/*
 * The cap that applies to a scope's period: the ops override if one is
 * set, else the one nginx.conf applied to its last request (recorded by
 * the module in the period hash), else none.  0 with *value and *source
 * set; -1: no cap (*source says whose choice: NULL if nobody's).
 */
int
tgc_cap_effective(const tgc_limits_t *lim, const tgc_period_t *p, int field,
    int64_t *value, const char **source)
{
    int  conf;

    *value = -1;
    *source = NULL;

    if (lim && lim->set[field]) {
        *source = "override";
        *value = lim->value[field];
        return *value >= 0 ? 0 : -1;
    }

    /* usd, tokens, requests, sandbox_usd: two periods each */
    conf = field / 2;

    if (p == NULL || !p->conf_set[conf]) {
        return -1;
    }

    *source = "nginx.conf";
    *value = p->conf[conf];

    return *value >= 0 ? 0 : -1;
}
