/*
 * tokenguardctl report [--period P] [--html FILE] [-n N] [--json]
 *
 * The audit of a period: total spend, by team, user, model and category,
 * routine work against agentic work, sandbox use against allowances,
 * reroutes and what they saved, and who is at or near a USD cap.  The
 * numbers are gathered here; report_html.c writes the page, --json
 * prints the same numbers.
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tgc.h"


#define TGC_REPORT_DEFAULT  20


static int tgc_report_dry(tgc_report_t *r);


static int
tgc_near_cmp(const void *a, const void *b)
{
    const tgc_item_t  *x = a, *y = b;

    if (x->used_pct != y->used_pct) {
        return x->used_pct > y->used_pct ? -1 : 1;
    }

    if (x->scope != y->scope) {
        return x->scope == TG_SCOPE_USER ? -1 : 1;
    }

    return strcmp(x->name, y->name);
}


static int
tgc_near_push(tgc_report_t *r, const tgc_item_t *it, int field, int64_t cap,
    const char *source, int64_t used)
{
    int64_t      pct;
    tgc_item_t  *n;

    pct = tgc_used_pct(used, cap);

    if (pct < TGC_NEAR_PCT) {
        return TGC_OK;
    }

    n = tgc_list_push(&r->near, it->name, it->len);
    if (n == NULL) {
        tgc_error("out of memory");
        return TGC_ERROR;
    }

    n->scope = it->scope;
    n->field = tgc_limit_names[field];
    n->cap_usd = cap;
    n->cap_source = source;
    n->usd = used;
    n->used_pct = pct;

    return TGC_OK;
}


/*
 * Caps of the other period kind: a month's report also checks usd_day
 * against today (when the month is this month); a day's report checks
 * usd_month against the day's month.
 */
static int
tgc_report_other(tgc_t *c, tgc_report_t *r, tgc_list_t *l, char scope)
{
    int           rc, field;
    char          period[11], suffix[16], key[TG_KEY_PREFIX_MAX + 32];
    size_t        i, lens[4], sent;
    int64_t       used;
    const char   *argv[4];
    redisReply   *rep;
    tgc_item_t   *it;

    if (r->opts->period_day) {
        field = TGC_LIM_USD_MONTH;
        memcpy(period, r->opts->period, 7);
        period[7] = '\0';

    } else {
        field = TGC_LIM_USD_DAY;
        tgc_period_current(1, period);

        if (strncmp(period, r->opts->period, 7) != 0) {
            return TGC_OK;
        }
    }

    snprintf(suffix, sizeof(suffix), ":%s", period);

    argv[0] = "HMGET";
    lens[0] = 5;
    argv[1] = key;
    argv[2] = "usd";
    lens[2] = 3;
    argv[3] = "reserved_usd";
    lens[3] = 12;

    sent = 0;

    for (i = 0; i < l->n; i++) {
        it = &l->items[i];

        if (!it->lim.set[field] || it->lim.value[field] < 0
            || tgc_key(scope, it->name, it->len, suffix, key, sizeof(key),
                       &lens[1]) != 0)
        {
            continue;
        }

        rc = tgc_append(c, 4, argv, lens);
        if (rc != TGC_OK) {
            return rc;
        }

        sent++;
    }

    for (i = 0; i < l->n && sent; i++) {
        it = &l->items[i];

        if (!it->lim.set[field] || it->lim.value[field] < 0
            || tgc_key(scope, it->name, it->len, suffix, key, sizeof(key),
                       &lens[1]) != 0)
        {
            continue;
        }

        sent--;

        rc = tgc_reply(c, &rep);
        if (rc != TGC_OK) {
            return rc;
        }

        used = 0;

        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
            if (rep->element[0]->type == REDIS_REPLY_STRING) {
                used += strtoll(rep->element[0]->str, NULL, 10);
            }
            if (rep->element[1]->type == REDIS_REPLY_STRING) {
                used += strtoll(rep->element[1]->str, NULL, 10);
            }
        }

        freeReplyObject(rep);

        rc = tgc_near_push(r, it, field, it->lim.value[field], "override",
                           used);
        if (rc != TGC_OK) {
            return rc;
        }
    }

    return TGC_OK;
}


static int
tgc_report_gather(tgc_t *c, tgc_report_t *r)
{
    int           rc, s, field, sb;
    size_t        i;
    time_t        now;
    struct tm     tm;
    tgc_list_t   *l;
    tgc_item_t   *it, *n;

    now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(r->generated, sizeof(r->generated), "%Y-%m-%d %H:%M UTC", &tm);

    rc = tgc_aggregate(c, TGC_AGG_USERS | TGC_AGG_TEAMS, &r->agg);
    if (rc != TGC_OK) {
        return rc;
    }

    r->spent_usd = r->agg.total.usd;
    r->sandbox_usd = r->agg.total.sandbox_usd;
    r->total_usd = r->spent_usd + r->sandbox_usd;
    r->no_team_usd = r->spent_usd - r->agg.team_total.usd;

    if (r->no_team_usd < 0) {
        r->no_team_usd = 0;
    }

    /*
     * The teams' hashes are read after the users': spend that lands in
     * between is in a team's usd and not in spent_usd.  A share divides
     * numbers of the same pass, so it never passes 100%.
     */
    r->team_base_usd = r->agg.team_total.usd + r->no_team_usd;

    for (i = 0; i < r->agg.total.cats.n; i++) {
        it = &r->agg.total.cats.items[i];

        if (tgc_category_agentic(it->name, it->len)) {
            r->agentic_usd += it->usd;

        } else {
            r->routine_usd += it->usd;
        }
    }

    /* sandbox use against allowances */
    sb = r->opts->period_day ? TGC_LIM_SANDBOX_USD_DAY
                             : TGC_LIM_SANDBOX_USD_MONTH;

    for (i = 0; i < r->agg.users.n; i++) {
        it = &r->agg.users.items[i];

        if (it->sandbox_usd == 0 && !it->lim.set[sb]) {
            continue;
        }

        n = tgc_list_push(&r->sandbox, it->name, it->len);
        if (n == NULL) {
            tgc_error("out of memory");
            return TGC_ERROR;
        }

        n->usd = it->sandbox_usd;
        n->field = it->lim.set[sb] ? tgc_limit_names[sb] : NULL;
        n->cap_usd = it->lim.set[sb] && it->lim.value[sb] >= 0
                     ? it->lim.value[sb] : -1;
        n->used_pct = n->cap_usd >= 0 ? tgc_used_pct(n->usd, n->cap_usd)
                                      : -1;
    }

    /* biggest use first */
    tgc_list_sort_usd(&r->sandbox);

    /* at or near a USD cap */
    field = r->opts->period_day ? TGC_LIM_USD_DAY : TGC_LIM_USD_MONTH;

    for (s = 0; s < 2; s++) {
        l = s == 0 ? &r->agg.users : &r->agg.teams;

        for (i = 0; i < l->n; i++) {
            it = &l->items[i];

            if (it->cap_usd >= 0) {
                rc = tgc_near_push(r, it, field, it->cap_usd, it->cap_source,
                                   it->usd + it->reserved_usd);
                if (rc != TGC_OK) {
                    return rc;
                }
            }
        }

        rc = tgc_report_other(c, r, l, s == 0 ? TG_SCOPE_USER
                                              : TG_SCOPE_TEAM);
        if (rc != TGC_OK) {
            return rc;
        }
    }

    if (r->near.n > 1) {
        qsort(r->near.items, r->near.n, sizeof(tgc_item_t), tgc_near_cmp);
    }

    return tgc_report_dry(r);
}


/* most would-be refusals first, then by name */
static int
tgc_dry_cmp(const void *a, const void *b)
{
    const tgc_item_t  *x = a, *y = b;

    if (x->dry[0] != y->dry[0]) {
        return x->dry[0] > y->dry[0] ? -1 : 1;
    }

    return strcmp(x->name, y->name);
}


/* tokenguard_dry_run: who would have been refused, and how often */
static int
tgc_report_dry(tgc_report_t *r)
{
    int           s;
    size_t        i;
    tgc_list_t   *l;
    tgc_item_t   *it, *n;

    for (s = 0; s < 2; s++) {
        l = s == 0 ? &r->agg.users : &r->agg.teams;

        for (i = 0; i < l->n; i++) {
            it = &l->items[i];

            if (it->dry[0] == 0) {
                continue;
            }

            n = tgc_list_push(&r->dry, it->name, it->len);
            if (n == NULL) {
                tgc_error("out of memory");
                return TGC_ERROR;
            }

            n->scope = it->scope;
            memcpy(n->dry, it->dry, sizeof(n->dry));
        }
    }

    if (r->dry.n > 1) {
        qsort(r->dry.items, r->dry.n, sizeof(tgc_item_t), tgc_dry_cmp);
    }

    return TGC_OK;
}


/* the dry-run's section and the routes' savings, as JSON */
static void
tgc_report_dry_json(tgc_report_t *r, json_t *j)
{
    int                 k;
    size_t              i;
    json_t             *a, *e, *d;
    const tgc_item_t   *it;
    const tgc_period_t *t;

    t = &r->agg.total;
    d = json_object();
    a = json_array();

    for (i = 0; i < r->dry.n; i++) {
        it = &r->dry.items[i];
        e = json_object();
        json_object_set_new(e, "scope", json_string(
            it->scope == TG_SCOPE_USER ? "user" : "team"));
        json_object_set_new(e, "name", tgc_json_name(it->name, it->len));
        json_object_set_new(e, "refusals", json_integer(it->dry[0]));

        for (k = 1; k < TGC_DRY_KINDS; k++) {
            json_object_set_new(e, tgc_dry_kinds[k],
                                json_integer(it->dry[k]));
        }

        json_array_append_new(a, e);
    }

    json_object_set_new(d, "refused", a);
    a = json_array();

    for (i = 0; i < t->routes.n; i++) {
        it = &t->routes.items[i];

        if (it->dry_requests == 0) {
            continue;
        }

        e = json_object();
        json_object_set_new(e, "tag", tgc_json_name(it->name, it->len));
        json_object_set_new(e, "requests", json_integer(it->dry_requests));
        json_object_set_new(e, "saved_usd", tgc_json_usd(it->dry_saved_usd));
        json_array_append_new(a, e);
    }

    json_object_set_new(d, "routes", a);
    json_object_set_new(d, "saved_usd", tgc_json_usd(t->dry_saved_usd));
    json_object_set_new(j, "dry_run", d);

    a = json_array();

    for (i = 0; i < t->routes.n; i++) {
        it = &t->routes.items[i];

        if (it->requests == 0) {
            continue;
        }

        e = json_object();
        json_object_set_new(e, "tag", tgc_json_name(it->name, it->len));
        json_object_set_new(e, "requests", json_integer(it->requests));
        json_object_set_new(e, "saved_usd", tgc_json_usd(it->saved_usd));
        json_array_append_new(a, e);
    }

    json_object_set_new(j, "route_savings", a);
}


/* percent with one decimal, as a JSON number */
static json_t *
tgc_pct_json(int64_t part, int64_t whole)
{
    if (whole <= 0) {
        return json_real(0);
    }

    return json_real((double) (int64_t) ((double) part * 1000.0
                                         / (double) whole + 0.5) / 10.0);
}


static json_t *
tgc_scope_rows(const tgc_list_t *l, size_t max, int64_t total, int users)
{
    size_t             i;
    json_t            *a, *e;
    const tgc_item_t  *it;

    a = json_array();

    for (i = 0; i < l->n && i < max; i++) {
        it = &l->items[i];
        e = json_object();
        json_object_set_new(e, "name", tgc_json_name(it->name, it->len));
        json_object_set_new(e, "spent_usd", tgc_json_usd(it->usd));
        json_object_set_new(e, "share_pct", tgc_pct_json(it->usd, total));
        json_object_set_new(e, "requests", json_integer(it->requests));
        json_object_set_new(e, "tokens_in", json_integer(it->tokens_in));
        json_object_set_new(e, "tokens_out", json_integer(it->tokens_out));
        json_object_set_new(e, "limit_usd", it->cap_usd >= 0
                            ? tgc_json_usd(it->cap_usd) : json_null());
        json_object_set_new(e, "limit_source", it->cap_usd >= 0
                            ? json_string(it->cap_source) : json_null());
        json_object_set_new(e, "used_pct", it->used_pct >= 0
                            ? json_integer(it->used_pct) : json_null());

        if (users) {
            json_object_set_new(e, "sandbox_spent_usd",
                                tgc_json_usd(it->sandbox_usd));
        }

        json_array_append_new(a, e);
    }

    return a;
}


static json_t *
tgc_report_json(tgc_report_t *r)
{
    size_t               i;
    json_t              *j, *a, *e, *o;
    int64_t              total;
    const char          *arrow;
    const tgc_item_t    *it;
    const tgc_period_t  *t;

    t = &r->agg.total;

    j = json_object();
    json_object_set_new(j, "period", json_string(r->opts->period));
    json_object_set_new(j, "generated_at", json_string(r->generated));
    json_object_set_new(j, "total_usd", tgc_json_usd(r->total_usd));
    json_object_set_new(j, "spent_usd", tgc_json_usd(r->spent_usd));
    json_object_set_new(j, "sandbox_usd", tgc_json_usd(r->sandbox_usd));
    json_object_set_new(j, "reserved_usd", tgc_json_usd(t->reserved_usd));
    json_object_set_new(j, "requests", json_integer(t->requests));
    json_object_set_new(j, "tokens_in", json_integer(t->tokens_in));
    json_object_set_new(j, "tokens_out", json_integer(t->tokens_out));
    json_object_set_new(j, "denied", json_integer(t->denied));
    json_object_set_new(j, "estimated", json_integer(t->estimated));
    json_object_set_new(j, "users_count",
                        json_integer((json_int_t) r->agg.users.n));
    json_object_set_new(j, "teams_count",
                        json_integer((json_int_t) r->agg.teams.n));

    json_object_set_new(j, "routine_usd", tgc_json_usd(r->routine_usd));
    json_object_set_new(j, "agentic_usd", tgc_json_usd(r->agentic_usd));
    json_object_set_new(j, "routine_share_pct",
                        tgc_pct_json(r->routine_usd,
                                     r->routine_usd + r->agentic_usd));
    json_object_set_new(j, "agentic_share_pct",
                        tgc_pct_json(r->agentic_usd,
                                     r->routine_usd + r->agentic_usd));

    json_object_set_new(j, "teams", tgc_scope_rows(&r->agg.teams, r->top_n,
                                                   r->team_base_usd, 0));
    json_object_set_new(j, "no_team_usd", tgc_json_usd(r->no_team_usd));
    json_object_set_new(j, "users", tgc_scope_rows(&r->agg.users, r->top_n,
                                                   r->spent_usd, 1));

    total = 0;
    for (i = 0; i < t->models.n; i++) {
        total += t->models.items[i].usd;
    }

    a = json_array();
    for (i = 0; i < t->models.n; i++) {
        it = &t->models.items[i];
        e = json_object();
        json_object_set_new(e, "name", tgc_json_name(it->name, it->len));
        json_object_set_new(e, "spent_usd", tgc_json_usd(it->usd));
        json_object_set_new(e, "share_pct", tgc_pct_json(it->usd, total));
        json_object_set_new(e, "tokens_in", json_integer(it->tokens_in));
        json_object_set_new(e, "tokens_out", json_integer(it->tokens_out));
        json_array_append_new(a, e);
    }
    json_object_set_new(j, "models", a);

    total = r->routine_usd + r->agentic_usd;

    a = json_array();
    for (i = 0; i < t->cats.n; i++) {
        it = &t->cats.items[i];
        e = json_object();
        json_object_set_new(e, "name", tgc_json_name(it->name, it->len));
        json_object_set_new(e, "work", json_string(
            tgc_category_agentic(it->name, it->len) ? "agentic" : "routine"));
        json_object_set_new(e, "spent_usd", tgc_json_usd(it->usd));
        json_object_set_new(e, "share_pct", tgc_pct_json(it->usd, total));
        json_object_set_new(e, "requests", json_integer(it->requests));
        json_array_append_new(a, e);
    }
    json_object_set_new(j, "categories", a);

    a = json_array();
    for (i = 0; i < r->sandbox.n; i++) {
        it = &r->sandbox.items[i];
        e = json_object();
        json_object_set_new(e, "user", tgc_json_name(it->name, it->len));
        json_object_set_new(e, "spent_usd", tgc_json_usd(it->usd));
        json_object_set_new(e, "allowance_usd", it->cap_usd >= 0
                            ? tgc_json_usd(it->cap_usd) : json_null());
        json_object_set_new(e, "allowance_source", json_string(
            it->field == NULL ? "config_or_none"
            : it->cap_usd >= 0 ? "override" : "override_no_allowance"));
        json_object_set_new(e, "used_pct", it->used_pct >= 0
                            ? json_integer(it->used_pct) : json_null());
        json_array_append_new(a, e);
    }
    json_object_set_new(j, "sandbox", a);

    o = json_object();
    json_object_set_new(o, "requests", json_integer(t->rerouted));
    json_object_set_new(o, "saved_usd", tgc_json_usd(t->saved_usd));
    a = json_array();
    for (i = 0; i < t->reroutes.n; i++) {
        it = &t->reroutes.items[i];
        e = json_object();
        json_object_set_new(e, "pair", tgc_json_name(it->name, it->len));

        arrow = strstr(it->name, "->");
        if (arrow) {
            json_object_set_new(e, "requested",
                                tgc_json_name(it->name,
                                              (size_t) (arrow - it->name)));
            json_object_set_new(e, "routed",
                                tgc_json_name(arrow + 2,
                                              it->len - (size_t) (arrow + 2
                                                             - it->name)));
        }

        json_object_set_new(e, "requests", json_integer(it->requests));
        json_object_set_new(e, "saved_usd", tgc_json_usd(it->saved_usd));
        json_array_append_new(a, e);
    }
    json_object_set_new(o, "pairs", a);
    json_object_set_new(j, "reroutes", o);

    a = json_array();
    for (i = 0; i < r->near.n; i++) {
        it = &r->near.items[i];
        e = json_object();
        json_object_set_new(e, "scope", json_string(
            it->scope == TG_SCOPE_USER ? "user" : "team"));
        json_object_set_new(e, "name", tgc_json_name(it->name, it->len));
        json_object_set_new(e, "field", json_string(it->field));
        json_object_set_new(e, "limit_usd", tgc_json_usd(it->cap_usd));
        json_object_set_new(e, "limit_source", json_string(
            it->cap_source ? it->cap_source : "override"));
        json_object_set_new(e, "used_usd", tgc_json_usd(it->usd));
        json_object_set_new(e, "used_pct", json_integer(it->used_pct));
        json_array_append_new(a, e);
    }
    json_object_set_new(j, "near_cap", a);

    tgc_report_dry_json(r, j);

    return j;
}


int
tgc_cmd_report(tgc_t *c)
{
    int            rc;
    char           money[TGC_MONEY_LEN];
    tgc_opts_t    *o;
    tgc_report_t   r;

    o = c->opts;

    if (o->nargs != 0) {
        return tgc_usage_error("usage: tokenguardctl report [--period P] "
                               "[--html FILE] [-n N] [--json]");
    }

    if (o->html == NULL && !o->json) {
        return tgc_usage_error("report: give --html FILE (the page) or "
                               "--json (the numbers), or both");
    }

    rc = tgc_connect(c);
    if (rc != TGC_OK) {
        return rc;
    }

    memset(&r, 0, sizeof(tgc_report_t));
    r.opts = o;
    r.top_n = o->n ? (size_t) o->n : TGC_REPORT_DEFAULT;

    rc = tgc_report_gather(c, &r);

    if (rc == TGC_OK && o->html) {
        rc = tgc_report_html(&r, o->html);

        if (rc == TGC_OK && !o->json) {
            printf("wrote %s: %s, total %s in %zu user%s and %zu team%s\n",
                   o->html, o->period, tgc_money(r.total_usd, money),
                   r.agg.users.n, r.agg.users.n == 1 ? "" : "s",
                   r.agg.teams.n, r.agg.teams.n == 1 ? "" : "s");
        }
    }

    if (rc == TGC_OK && o->json) {
        rc = tgc_json_print(tgc_report_json(&r));
    }

    tgc_aggregate_free(&r.agg);
    tgc_list_free(&r.sandbox);
    tgc_list_free(&r.near);
    tgc_list_free(&r.dry);

    return rc;
}
