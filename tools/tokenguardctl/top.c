/*
 * tokenguardctl top [--by user|team|model|category] [--period P] [-n N]
 *                   [--watch]
 *
 * The period's scopes come from the index sets tg:idx:PERIOD:users and
 * :teams (never KEYS or SCAN); their hashes are read pipelined.  Models
 * and categories are the users' hashes summed: every request has one
 * user, so nothing is counted twice.  --watch redraws every 2 seconds
 * until Ctrl-C.
 */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tgc.h"


#define TGC_TOP_DEFAULT  10


static volatile sig_atomic_t  tgc_stop;


/* "$1,500.00 (nginx.conf)" */
static char *
tgc_top_limit(const tgc_item_t *it, char *money, char *buf)
{
    snprintf(buf, TGC_MONEY_LEN + 16, "%s (%s)", tgc_money(it->cap_usd, money),
             it->cap_source);
    return buf;
}


/* the biggest share of its cap first, scopes without a cap last */
static int
tgc_share_cmp(const void *a, const void *b)
{
    const tgc_item_t  *x = a, *y = b;

    if (x->used_pct != y->used_pct) {
        return x->used_pct > y->used_pct ? -1 : 1;
    }

    if (x->usd != y->usd) {
        return x->usd > y->usd ? -1 : 1;
    }

    return strcmp(x->name, y->name);
}


/* the users' (and teams') hashes of the period, and their sums */
int
tgc_aggregate(tgc_t *c, int what, tgc_agg_t *a)
{
    int            rc, s, field;
    char           scope;
    size_t         i;
    tgc_list_t    *names;
    tgc_item_t    *it;
    tgc_period_t  *ps, *total;
    tgc_limits_t  *lims;

    memset(a, 0, sizeof(tgc_agg_t));

    field = c->opts->period_day ? TGC_LIM_USD_DAY : TGC_LIM_USD_MONTH;

    for (s = 0; s < 2; s++) {
        if (!(what & (s == 0 ? TGC_AGG_USERS : TGC_AGG_TEAMS))) {
            continue;
        }

        scope = s == 0 ? TG_SCOPE_USER : TG_SCOPE_TEAM;
        names = s == 0 ? &a->users : &a->teams;
        total = s == 0 ? &a->total : &a->team_total;

        rc = tgc_index_read(c, c->opts->period, scope, names);
        if (rc != TGC_OK) {
            return rc;
        }

        if (names->n == 0) {
            continue;
        }

        ps = calloc(names->n, sizeof(tgc_period_t));
        lims = calloc(names->n, sizeof(tgc_limits_t));

        if (ps == NULL || lims == NULL) {
            free(ps);
            free(lims);
            tgc_error("out of memory");
            return TGC_ERROR;
        }

        rc = tgc_scopes_read(c, scope, names, c->opts->period, ps, lims);

        for (i = 0; i < names->n; i++) {
            if (rc == TGC_OK) {
                it = &names->items[i];
                it->scope = scope;
                it->usd = ps[i].usd;
                it->sandbox_usd = ps[i].sandbox_usd;
                it->reserved_usd = ps[i].reserved_usd;
                it->requests = ps[i].requests;
                it->tokens_in = ps[i].tokens_in;
                it->tokens_out = ps[i].tokens_out;
                it->saved_usd = ps[i].saved_usd;
                it->lim = lims[i];
                it->dry_saved_usd = ps[i].dry_saved_usd;
                memcpy(it->dry, ps[i].dry, sizeof(it->dry));

                /* the share divides what one read of one hash gave */
                if (tgc_cap_effective(&lims[i], &ps[i], field, &it->cap_usd,
                                      &it->cap_source)
                    == 0)
                {
                    it->field = tgc_limit_names[field];
                    it->used_pct = tgc_used_pct(it->usd + it->reserved_usd,
                                                it->cap_usd);
                }

                tgc_period_merge(total, &ps[i]);
            }

            tgc_period_free(&ps[i]);
        }

        free(ps);
        free(lims);

        if (rc != TGC_OK) {
            return rc;
        }

        tgc_list_sort_usd(names);
    }

    tgc_list_sort_usd(&a->total.models);
    tgc_list_sort_usd(&a->total.cats);
    tgc_list_sort_usd(&a->total.reroutes);
    tgc_list_sort_usd(&a->total.routes);

    return TGC_OK;
}


void
tgc_aggregate_free(tgc_agg_t *a)
{
    tgc_list_free(&a->users);
    tgc_list_free(&a->teams);
    tgc_period_free(&a->total);
    tgc_period_free(&a->team_total);
}


static int64_t
tgc_list_total(const tgc_list_t *l)
{
    size_t   i;
    int64_t  t;

    t = 0;

    for (i = 0; i < l->n; i++) {
        t += l->items[i].usd;
    }

    return t;
}


static json_t *
tgc_share_json(int64_t part, int64_t whole)
{
    if (whole <= 0) {
        return json_real(0);
    }

    return json_real((double) (int64_t) ((double) part * 1000.0
                                         / (double) whole + 0.5) / 10.0);
}


static json_t *
tgc_top_json(tgc_opts_t *o, tgc_list_t *l, size_t n, int by_scope)
{
    size_t       i;
    json_t      *j, *rows, *e;
    int64_t      total;
    tgc_item_t  *it;

    total = tgc_list_total(l);

    j = json_object();
    json_object_set_new(j, "period", json_string(o->period));
    json_object_set_new(j, "by", json_string(o->by));
    json_object_set_new(j, "total_usd", tgc_json_usd(total));
    json_object_set_new(j, "count", json_integer((json_int_t) l->n));

    rows = json_array();

    for (i = 0; i < n && i < l->n; i++) {
        it = &l->items[i];
        e = json_object();
        json_object_set_new(e, "name", tgc_json_name(it->name, it->len));
        json_object_set_new(e, "spent_usd", tgc_json_usd(it->usd));
        json_object_set_new(e, "share_pct", tgc_share_json(it->usd, total));

        if (by_scope) {
            json_object_set_new(e, "reserved_usd",
                                tgc_json_usd(it->reserved_usd));
            json_object_set_new(e, "limit_usd", it->cap_usd >= 0
                                ? tgc_json_usd(it->cap_usd) : json_null());
            json_object_set_new(e, "limit_source", it->cap_usd >= 0
                                ? json_string(it->cap_source) : json_null());
            json_object_set_new(e, "used_pct", it->used_pct >= 0
                                ? json_integer(it->used_pct) : json_null());
            json_object_set_new(e, "requests", json_integer(it->requests));
            json_object_set_new(e, "tokens_in", json_integer(it->tokens_in));
            json_object_set_new(e, "tokens_out",
                                json_integer(it->tokens_out));
            json_object_set_new(e, "sandbox_spent_usd",
                                tgc_json_usd(it->sandbox_usd));

        } else if (strcmp(o->by, "model") == 0) {
            json_object_set_new(e, "tokens_in", json_integer(it->tokens_in));
            json_object_set_new(e, "tokens_out",
                                json_integer(it->tokens_out));

        } else {
            json_object_set_new(e, "requests", json_integer(it->requests));
            json_object_set_new(e, "work", json_string(
                tgc_category_agentic(it->name, it->len) ? "agentic"
                                                        : "routine"));
        }

        json_array_append_new(rows, e);
    }

    json_object_set_new(j, "rows", rows);

    return j;
}


static void
tgc_top_text(tgc_opts_t *o, tgc_list_t *l, size_t n, int by_scope)
{
    char         *name;
    char          b[9][TGC_MONEY_LEN], lim[TGC_MONEY_LEN + 16];
    size_t        i;
    int64_t       total;
    tgc_item_t   *it;
    tgc_table_t   t;
    const char   *shead[] = { "USER", "SPENT", "SHARE", "LIMIT", "USED",
                              "REQUESTS", "TOKENS IN", "TOKENS OUT",
                              "RESERVED", "SANDBOX" };
    size_t        ncols;

    static const char  *mhead[] = { "MODEL", "SPENT", "SHARE", "TOKENS IN",
                                    "TOKENS OUT" };
    static const char  *chead[] = { "CATEGORY", "WORK", "SPENT", "SHARE",
                                    "REQUESTS" };

    total = tgc_list_total(l);

    if (by_scope) {
        /* sandbox requests skip the team: no column for teams */
        ncols = 10;

        if (strcmp(o->by, "team") == 0) {
            shead[0] = "TEAM";
            ncols = 9;
        }

        tgc_table_init(&t, ncols, shead, "lrrrrrrrrr");

    } else if (strcmp(o->by, "model") == 0) {
        tgc_table_init(&t, 5, mhead, "lrrrr");

    } else {
        tgc_table_init(&t, 5, chead, "llrrr");
    }

    for (i = 0; i < n && i < l->n; i++) {
        it = &l->items[i];
        /* a dry run's callers without an identity: the empty name */
        name = by_scope && it->len == 0 ? strdup("(no identity)")
                                        : tgc_name_tty(it->name, it->len);

        if (by_scope) {
            if (it->used_pct >= 0) {
                snprintf(b[3], TGC_MONEY_LEN, "%lld%%",
                         (long long) it->used_pct);
            }

            tgc_table_row(&t, name, tgc_money(it->usd, b[0]),
                          tgc_pct(it->usd, total, b[1]),
                          it->cap_usd >= 0 ? tgc_top_limit(it, b[2], lim)
                                           : "-",
                          it->used_pct >= 0 ? b[3] : "-",
                          tgc_num(it->requests, b[4]),
                          tgc_num(it->tokens_in, b[5]),
                          tgc_num(it->tokens_out, b[6]),
                          tgc_money(it->reserved_usd, b[7]),
                          tgc_money(it->sandbox_usd, b[8]));

        } else if (strcmp(o->by, "model") == 0) {
            tgc_table_row(&t, name, tgc_money(it->usd, b[0]),
                          tgc_pct(it->usd, total, b[1]),
                          tgc_num(it->tokens_in, b[2]),
                          tgc_num(it->tokens_out, b[3]));

        } else {
            tgc_table_row(&t, name,
                          tgc_category_agentic(it->name, it->len)
                          ? "agentic" : "routine",
                          tgc_money(it->usd, b[0]),
                          tgc_pct(it->usd, total, b[1]),
                          tgc_num(it->requests, b[2]));
        }

        free(name);
    }

    if (l->n == 0) {
        printf("  (nothing recorded in %s)\n", o->period);

    } else {
        tgc_table_print(&t, stdout, "  ");
    }

    tgc_table_free(&t);

    printf("\n  total %s", tgc_money(total, b[0]));
    if (l->n > n) {
        printf("; the top %zu of %zu shown", n, l->n);
    }
    if (by_scope) {
        printf("; LIMIT is the cap that applies, and whose");
    } else {
        printf(" (sandbox included)");
    }
    printf("\n");
}


/* one table: 0, or the exit code of a failure (already reported) */
static int
tgc_top_once(tgc_t *c, int json, int heading)
{
    int          rc, by_scope;
    size_t       n;
    tgc_agg_t    a;
    tgc_list_t  *l;
    tgc_opts_t  *o;

    o = c->opts;
    by_scope = strcmp(o->by, "user") == 0 || strcmp(o->by, "team") == 0;

    rc = tgc_aggregate(c, strcmp(o->by, "team") == 0 ? TGC_AGG_TEAMS
                                                     : TGC_AGG_USERS, &a);
    if (rc != TGC_OK) {
        tgc_aggregate_free(&a);
        return rc;
    }

    if (strcmp(o->by, "user") == 0) {
        l = &a.users;

    } else if (strcmp(o->by, "team") == 0) {
        l = &a.teams;

    } else if (strcmp(o->by, "model") == 0) {
        l = &a.total.models;

    } else {
        l = &a.total.cats;
    }

    n = o->n ? (size_t) o->n : TGC_TOP_DEFAULT;

    if (by_scope && o->sort && strcmp(o->sort, "share") == 0 && l->n > 1) {
        qsort(l->items, l->n, sizeof(tgc_item_t), tgc_share_cmp);
    }

    if (json) {
        rc = tgc_json_print(tgc_top_json(o, l, n, by_scope));

    } else {
        if (heading) {
            printf("top %s by %s, %s (%s)\n\n",
                   strcmp(o->by, "category") == 0 ? "categories"
                   : strcmp(o->by, "user") == 0 ? "users"
                   : strcmp(o->by, "team") == 0 ? "teams" : "models",
                   o->sort && strcmp(o->sort, "share") == 0
                   ? "share of the cap used" : "spend",
                   o->period, tgc_period_kind(o));
        }

        tgc_top_text(o, l, n, by_scope);
    }

    tgc_aggregate_free(&a);

    return rc;
}


static void
tgc_top_signal(int signo)
{
    (void) signo;
    tgc_stop = 1;
}


static int
tgc_top_watch(tgc_t *c)
{
    int               rc, tty, round;
    char              now[32];
    time_t            t;
    struct tm         tm;
    struct timespec   ts;
    struct sigaction  sa;

    memset(&sa, 0, sizeof(struct sigaction));
    sa.sa_handler = tgc_top_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    tty = isatty(STDOUT_FILENO);

    rc = tgc_connect(c);
    if (rc != TGC_OK) {
        return rc;
    }

    for (round = 0; !tgc_stop; round++) {
        if (tty) {
            /* home, then clear the screen: the table redraws in place */
            fputs("\033[H\033[2J", stdout);

        } else if (round) {
            fputc('\n', stdout);
        }

        t = time(NULL);
        gmtime_r(&t, &tm);
        strftime(now, sizeof(now), "%Y-%m-%d %H:%M:%S UTC", &tm);

        printf("tokenguard top by %s, %s (%s), %s; every %d s, Ctrl-C "
               "quits\n\n", c->opts->by, c->opts->period,
               tgc_period_kind(c->opts), now, TGC_WATCH_SEC);

        rc = tgc_connect(c);
        if (rc == TGC_OK) {
            rc = tgc_top_once(c, 0, 0);
        }

        if (rc == TGC_EREDIS) {
            /* Redis went away: say so, and try again next round */
            printf("  Redis at %s cannot be reached; retrying every %d s\n",
                   c->opts->addr, TGC_WATCH_SEC);
            tgc_disconnect(c);

        } else if (rc != TGC_OK) {
            return rc;
        }

        fflush(stdout);

        ts.tv_sec = TGC_WATCH_SEC;
        ts.tv_nsec = 0;

        while (!tgc_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            /* void */
        }
    }

    if (tty) {
        fputc('\n', stdout);
    }

    return TGC_OK;
}


int
tgc_cmd_top(tgc_t *c)
{
    int          rc;
    tgc_opts_t  *o;

    o = c->opts;

    if (o->nargs != 0) {
        return tgc_usage_error("top takes no words: tokenguardctl top "
                               "[--by user|team|model|category] "
                               "[--period P] [-n N] [--watch]");
    }

    if (o->by == NULL) {
        o->by = "user";
    }

    if (strcmp(o->by, "user") != 0 && strcmp(o->by, "team") != 0
        && strcmp(o->by, "model") != 0 && strcmp(o->by, "category") != 0)
    {
        return tgc_usage_error("top --by \"%s\": use user, team, model or "
                               "category", o->by);
    }

    if (o->watch && !o->json) {
        return tgc_top_watch(c);
    }

    rc = tgc_connect(c);
    if (rc != TGC_OK) {
        return rc;
    }

    return tgc_top_once(c, o->json, 1);
}
