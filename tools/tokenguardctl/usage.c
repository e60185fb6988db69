/*
 * tokenguardctl usage user|team NAME [--period P]
 *
 * One scope's period: spent, reserved, the USD limit (an ops override;
 * caps written in nginx.conf are not in Redis, so not known here),
 * remaining, tokens, requests, sandbox, by model, by category.
 */

#include <stdlib.h>
#include <string.h>

#include "tgc.h"


/* a limit as the tool can know it */
typedef struct {
    int          field;
    int64_t      value;             /* -1: none known */
    const char  *source;            /* for JSON */
    const char  *text;              /* for people */
} tgc_cap_t;


/*
 * The cap that applies: an ops override, else what nginx.conf applied to
 * the scope's last request in the period (the module records it), else
 * unknown (no request recorded one yet)
 */
static void
tgc_cap(const tgc_limits_t *lim, const tgc_period_t *p, int field,
    tgc_cap_t *cap)
{
    const char  *src;

    cap->field = field;
    cap->text = NULL;

    if (tgc_cap_effective(lim, p, field, &cap->value, &src) == 0) {
        cap->source = strcmp(src, "override") == 0 ? "override"
                                                   : "nginx.conf";
        return;
    }

    cap->value = -1;

    if (src == NULL) {
        cap->source = "unknown";
        cap->text = "unknown (no ops override, and no request recorded"
                    " nginx.conf's cap)";

    } else if (strcmp(src, "override") == 0) {
        cap->source = "override_no_cap";
        cap->text = "none (ops override: no cap)";

    } else {
        cap->source = "nginx.conf_no_cap";
        cap->text = "none (nginx.conf sets no cap)";
    }
}


static json_t *
tgc_usage_json(tgc_opts_t *o, char scope, tgc_period_t *p,
    tgc_limits_t *lim, tgc_cap_t *cap, tgc_cap_t *sb)
{
    size_t       i;
    json_t      *j, *m, *e;
    int64_t      rem;
    tgc_item_t  *it;

    j = json_object();
    if (j == NULL) {
        return NULL;
    }

    json_object_set_new(j, scope == TG_SCOPE_USER ? "user" : "team",
                        tgc_json_name(o->args[1], strlen(o->args[1])));
    json_object_set_new(j, "period", json_string(o->period));
    json_object_set_new(j, "spent_usd", tgc_json_usd(p->usd));
    json_object_set_new(j, "reserved_usd", tgc_json_usd(p->reserved_usd));
    json_object_set_new(j, "limit_usd", cap->value >= 0
                        ? tgc_json_usd(cap->value) : json_null());
    json_object_set_new(j, "limit_source", json_string(cap->source));

    if (cap->value >= 0) {
        rem = cap->value - p->usd - p->reserved_usd;
        json_object_set_new(j, "remaining_usd", tgc_json_usd(rem > 0 ? rem
                                                                     : 0));
    } else {
        json_object_set_new(j, "remaining_usd", json_null());
    }

    json_object_set_new(j, "tokens_in", json_integer(p->tokens_in));
    json_object_set_new(j, "tokens_out", json_integer(p->tokens_out));
    json_object_set_new(j, "requests", json_integer(p->requests));
    json_object_set_new(j, "sandbox_spent_usd", tgc_json_usd(p->sandbox_usd));
    json_object_set_new(j, "sandbox_limit_usd", sb->value >= 0
                        ? tgc_json_usd(sb->value) : json_null());
    json_object_set_new(j, "sandbox_limit_source", json_string(sb->source));
    json_object_set_new(j, "sandbox_reserved_usd",
                        tgc_json_usd(p->sandbox_reserved_usd));
    json_object_set_new(j, "sandbox_tokens_in",
                        json_integer(p->sandbox_tokens_in));
    json_object_set_new(j, "sandbox_tokens_out",
                        json_integer(p->sandbox_tokens_out));

    m = json_object();
    for (i = 0; i < p->models.n; i++) {
        it = &p->models.items[i];
        e = json_object();
        json_object_set_new(e, "usd", tgc_json_usd(it->usd));
        json_object_set_new(e, "tokens_in", json_integer(it->tokens_in));
        json_object_set_new(e, "tokens_out", json_integer(it->tokens_out));
        tgc_json_set_name(m, it->name, it->len, e);
    }
    json_object_set_new(j, "models", m);

    m = json_object();
    for (i = 0; i < p->cats.n; i++) {
        it = &p->cats.items[i];
        e = json_object();
        json_object_set_new(e, "usd", tgc_json_usd(it->usd));
        json_object_set_new(e, "requests", json_integer(it->requests));
        tgc_json_set_name(m, it->name, it->len, e);
    }
    json_object_set_new(j, "categories", m);

    m = json_object();
    for (i = 0; i < p->reroutes.n; i++) {
        it = &p->reroutes.items[i];
        e = json_object();
        json_object_set_new(e, "requests", json_integer(it->requests));
        json_object_set_new(e, "saved_usd", tgc_json_usd(it->saved_usd));
        tgc_json_set_name(m, it->name, it->len, e);
    }
    json_object_set_new(j, "reroutes", m);

    json_object_set_new(j, "denied", json_integer(p->denied));
    json_object_set_new(j, "rerouted", json_integer(p->rerouted));
    json_object_set_new(j, "saved_usd", tgc_json_usd(p->saved_usd));
    json_object_set_new(j, "estimated", json_integer(p->estimated));
    json_object_set_new(j, "reserved_requests",
                        json_integer(p->reserved_requests));

    m = json_object();
    for (i = 0; i < TGC_LIM_N; i++) {
        if (lim->set[i]) {
            /* null: an override that removes the cap */
            json_object_set_new(m, tgc_limit_names[i],
                                lim->value[i] < 0 ? json_null()
                                : tgc_limit_is_usd(i)
                                ? tgc_json_usd(lim->value[i])
                                : json_integer(lim->value[i]));
        }
    }
    json_object_set_new(j, "overrides", m);

    return j;
}


static void
tgc_usage_text(tgc_opts_t *o, char scope, tgc_period_t *p,
    tgc_limits_t *lim, tgc_cap_t *cap, tgc_cap_t *sb)
{
    int          i, other;
    char        *name;
    char         a[TGC_MONEY_LEN], b[TGC_MONEY_LEN], n1[TGC_NUM_LEN],
                 n2[TGC_NUM_LEN];
    size_t       k;
    int64_t      rem;
    tgc_item_t  *it;
    tgc_table_t  t;

    static const char  *mhead[] = { "MODEL", "SPENT", "TOKENS IN",
                                    "TOKENS OUT" };
    static const char  *chead[] = { "CATEGORY", "WORK", "SPENT",
                                    "REQUESTS", "SHARE" };
    static const char  *rhead[] = { "REQUESTED -> ROUTED", "REQUESTS",
                                    "SAVED" };

    name = tgc_name_tty(o->args[1], strlen(o->args[1]));

    printf("%s %s, %s (%s)\n\n", scope == TG_SCOPE_USER ? "user" : "team",
           name ? name : "?", o->period, tgc_period_kind(o));
    free(name);

    printf("  spent       %s\n", tgc_money(p->usd, a));

    if (p->reserved_requests || p->reserved_usd) {
        printf("  reserved    %s  (%s request%s in flight)\n",
               tgc_money(p->reserved_usd, a),
               tgc_num(p->reserved_requests, n1),
               p->reserved_requests == 1 ? "" : "s");
    } else {
        printf("  reserved    %s\n", tgc_money(p->reserved_usd, a));
    }

    if (cap->value >= 0) {
        rem = cap->value - p->usd - p->reserved_usd;
        printf("  limit       %s  (%s %s)\n", tgc_money(cap->value, a),
               strcmp(cap->source, "override") == 0 ? "ops override"
                                                    : "nginx.conf",
               tgc_limit_names[cap->field]);
        printf("  spent       %s of %s (%s)\n",
               tgc_money(p->usd + p->reserved_usd, b),
               tgc_money(cap->value, a), cap->source);

        if (rem >= 0) {
            printf("  remaining   %s  (%lld%% used)\n", tgc_money(rem, a),
                   (long long) tgc_used_pct(p->usd + p->reserved_usd,
                                            cap->value));
        } else {
            printf("  remaining   $0.00  (over the limit by %s)\n",
                   tgc_money(-rem, a));
        }

    } else {
        printf("  limit       %s\n", cap->text);
        printf("  remaining   -\n");
    }

    printf("  tokens      %s in, %s out\n", tgc_num(p->tokens_in, n1),
           tgc_num(p->tokens_out, n2));
    printf("  requests    %s", tgc_num(p->requests, n1));
    if (p->estimated) {
        printf("  (%s with estimated usage)", tgc_num(p->estimated, n1));
    }
    printf("\n  denied      %s\n", tgc_num(p->denied, n1));
    printf("  rerouted    %s, saved %s\n", tgc_num(p->rerouted, n1),
           tgc_money(p->saved_usd, a));

    if (scope == TG_SCOPE_TEAM) {
        printf("  sandbox     -  (sandbox requests count for the user "
               "alone)\n");
        goto overrides;
    }

    printf("  sandbox     %s spent", tgc_money(p->sandbox_usd, a));
    if (p->sandbox_reserved_usd) {
        printf(", %s reserved", tgc_money(p->sandbox_reserved_usd, a));
    }
    if (sb->value >= 0) {
        rem = sb->value - p->sandbox_usd - p->sandbox_reserved_usd;
        printf(" of %s  (%s %s; %s left)\n",
               tgc_money(sb->value, a),
               strcmp(sb->source, "override") == 0 ? "ops override"
                                                   : "nginx.conf",
               tgc_limit_names[sb->field], tgc_money(rem > 0 ? rem : 0, b));
    } else {
        printf("; allowance %s\n", sb->text);
    }

overrides:

    other = 0;
    for (i = 0; i < TGC_LIM_N; i++) {
        if (!lim->set[i] || i == cap->field || i == sb->field) {
            continue;
        }

        printf("%s%s %s", other++ ? ", " : "  overrides   ",
               tgc_limit_names[i],
               lim->value[i] < 0 ? "none"
               : tgc_limit_is_usd(i) ? tgc_money(lim->value[i], a)
               : tgc_num(lim->value[i], a));
    }
    if (other) {
        printf("\n");
    }

    if (p->models.n) {
        printf("\n  by model (sandbox included)\n");
        tgc_list_sort_usd(&p->models);
        tgc_table_init(&t, 4, mhead, "lrrr");

        for (k = 0; k < p->models.n; k++) {
            it = &p->models.items[k];
            name = tgc_name_tty(it->name, it->len);
            tgc_table_row(&t, name, tgc_money(it->usd, a),
                          tgc_num(it->tokens_in, n1),
                          tgc_num(it->tokens_out, n2));
            free(name);
        }

        tgc_table_print(&t, stdout, "    ");
        tgc_table_free(&t);
    }

    if (p->cats.n) {
        int64_t  total = 0;

        printf("\n  by category (sandbox included)\n");
        tgc_list_sort_usd(&p->cats);
        tgc_table_init(&t, 5, chead, "llrrr");

        for (k = 0; k < p->cats.n; k++) {
            total += p->cats.items[k].usd;
        }

        for (k = 0; k < p->cats.n; k++) {
            it = &p->cats.items[k];
            name = tgc_name_tty(it->name, it->len);
            tgc_table_row(&t, name,
                          tgc_category_agentic(it->name, it->len)
                          ? "agentic" : "routine",
                          tgc_money(it->usd, a), tgc_num(it->requests, n1),
                          tgc_pct(it->usd, total, n2));
            free(name);
        }

        tgc_table_print(&t, stdout, "    ");
        tgc_table_free(&t);
    }

    if (p->reroutes.n) {
        printf("\n  reroutes\n");
        tgc_list_sort_usd(&p->reroutes);
        tgc_table_init(&t, 3, rhead, "lrr");

        for (k = 0; k < p->reroutes.n; k++) {
            it = &p->reroutes.items[k];
            name = tgc_name_tty(it->name, it->len);
            tgc_table_row(&t, name, tgc_num(it->requests, n1),
                          tgc_money(it->saved_usd, a));
            free(name);
        }

        tgc_table_print(&t, stdout, "    ");
        tgc_table_free(&t);
    }

    if (p->requests == 0 && p->sandbox_usd == 0 && p->models.n == 0
        && p->denied == 0 && p->reserved_requests == 0)
    {
        printf("\n  (no usage recorded in %s)\n", o->period);
    }
}


int
tgc_cmd_usage(tgc_t *c)
{
    int            rc;
    char           scope;
    tgc_cap_t      cap, sb;
    tgc_opts_t    *o;
    tgc_period_t   p;
    tgc_limits_t   lim;

    o = c->opts;

    if (o->nargs != 2) {
        return tgc_usage_error("usage: tokenguardctl usage user|team NAME "
                               "[--period P]");
    }

    rc = tgc_scope_arg(o, "usage", &scope);
    if (rc != TGC_OK) {
        return rc;
    }

    rc = tgc_connect(c);
    if (rc != TGC_OK) {
        return rc;
    }

    tgc_period_init(&p);

    rc = tgc_scope_read(c, scope, o->args[1], strlen(o->args[1]), o->period,
                        &p, &lim);
    if (rc != TGC_OK) {
        tgc_period_free(&p);
        return rc;
    }

    tgc_cap(&lim, &p, o->period_day ? TGC_LIM_USD_DAY : TGC_LIM_USD_MONTH,
            &cap);
    tgc_cap(&lim, &p, o->period_day ? TGC_LIM_SANDBOX_USD_DAY
                                    : TGC_LIM_SANDBOX_USD_MONTH, &sb);

    if (o->json) {
        tgc_list_sort_usd(&p.models);
        tgc_list_sort_usd(&p.cats);
        tgc_list_sort_usd(&p.reroutes);
        rc = tgc_json_print(tgc_usage_json(o, scope, &p, &lim, &cap, &sb));

    } else {
        tgc_usage_text(o, scope, &p, &lim, &cap, &sb);
    }

    tgc_period_free(&p);

    return rc;
}
