/*
 * tokenguardctl limit get|set|clear user|team NAME [FIELD [VALUE]]
 *
 * The ops overrides in tg:{u:NAME}:limits (tg:{t:NAME}:limits), which the
 * module reads on every reservation and which win over tokenguard_cap.
 * USD fields are dollars here and micro-USD in Redis.  "none" stores -1:
 * no cap at all, whatever nginx.conf says; "clear" removes the override,
 * so nginx.conf applies again.
 */

#include <stdlib.h>
#include <string.h>

#include "tgc.h"


static const char  tgc_limit_usage[] =
    "usage: tokenguardctl limit get|set|clear user|team NAME "
    "[FIELD [VALUE]]";


static char *
tgc_limit_text(const tgc_limits_t *lim, int f, char *buf)
{
    if (!lim->set[f]) {
        strcpy(buf, "not set");

    } else if (lim->value[f] < 0) {
        strcpy(buf, "none (no cap)");

    } else if (tgc_limit_is_usd(f)) {
        tgc_money(lim->value[f], buf);

    } else {
        tgc_num(lim->value[f], buf);
    }

    return buf;
}


static int
tgc_limits_get(tgc_t *c, char scope, const char *name, tgc_limits_t *lim)
{
    int          rc;
    char         key[TG_KEY_PREFIX_MAX + 32];
    size_t       lens[2];
    const char  *argv[2];
    redisReply  *r;

    argv[0] = "HGETALL";
    lens[0] = 7;
    argv[1] = key;

    if (tgc_key(scope, name, strlen(name), ":limits", key, sizeof(key),
                &lens[1]) != 0)
    {
        return tgc_usage_error("a name is 1 to 256 bytes");
    }

    rc = tgc_command(c, &r, 2, argv, lens);
    if (rc != TGC_OK) {
        return rc;
    }

    tgc_limits_parse(r, lim);
    freeReplyObject(r);

    return TGC_OK;
}


/* the overrides as JSON: dollars or counts, null for "no cap" */
static int
tgc_limits_json(char scope, const char *name, const tgc_limits_t *lim,
    int only)
{
    int      i;
    char     key[TG_KEY_PREFIX_MAX + 32];
    size_t   len;
    json_t  *j, *m;

    j = json_object();
    json_object_set_new(j, scope == TG_SCOPE_USER ? "user" : "team",
                        tgc_json_name(name, strlen(name)));

    if (tgc_key(scope, name, strlen(name), ":limits", key, sizeof(key), &len)
        == 0)
    {
        json_object_set_new(j, "key", tgc_json_name(key, len));
    }

    m = json_object();

    for (i = 0; i < TGC_LIM_N; i++) {
        if (!lim->set[i] || (only >= 0 && i != only)) {
            continue;
        }

        json_object_set_new(m, tgc_limit_names[i],
                            lim->value[i] < 0 ? json_null()
                            : tgc_limit_is_usd(i)
                            ? tgc_json_usd(lim->value[i])
                            : json_integer(lim->value[i]));
    }

    json_object_set_new(j, "limits", m);

    return tgc_json_print(j);
}


static int
tgc_limits_show(char scope, const char *name, const tgc_limits_t *lim,
    int only)
{
    int           i;
    char         *n;
    char          buf[TGC_MONEY_LEN];
    tgc_table_t   t;

    static const char  *head[] = { "FIELD", "OVERRIDE", "" };

    n = tgc_name_tty(name, strlen(name));
    printf("%s %s: ops overrides\n\n", scope == TG_SCOPE_USER ? "user"
                                                              : "team",
           n ? n : "?");
    free(n);

    tgc_table_init(&t, 3, head, "lrl");

    for (i = 0; i < TGC_LIM_N; i++) {
        if (only >= 0 && i != only) {
            continue;
        }

        tgc_table_row(&t, tgc_limit_names[i], tgc_limit_text(lim, i, buf),
                      lim->set[i] ? "" : "(limit: from nginx.conf or none)");
    }

    tgc_table_print(&t, stdout, "  ");
    tgc_table_free(&t);

    return TGC_OK;
}


/*
 * HSET one field (value < 0: "no cap"), then say what it was and is;
 * also for "sandbox grant"
 */
int
tgc_limit_write(tgc_t *c, char scope, const char *name, int field,
    int64_t value)
{
    int           rc;
    char         *n;
    char          key[TG_KEY_PREFIX_MAX + 32], v[TGC_NUM_LEN],
                  was[TGC_MONEY_LEN], now[TGC_MONEY_LEN];
    size_t        lens[4];
    const char   *argv[4];
    redisReply   *r;
    tgc_limits_t  old, lim;

    rc = tgc_connect(c);
    if (rc != TGC_OK) {
        return rc;
    }

    rc = tgc_limits_get(c, scope, name, &old);
    if (rc != TGC_OK) {
        return rc;
    }

    argv[0] = "HSET";
    lens[0] = 4;
    argv[1] = key;
    tgc_key(scope, name, strlen(name), ":limits", key, sizeof(key), &lens[1]);
    argv[2] = tgc_limit_names[field];
    lens[2] = strlen(argv[2]);
    argv[3] = v;
    lens[3] = snprintf(v, sizeof(v), "%lld",
                       (long long) (value < 0 ? -1 : value));

    rc = tgc_command(c, &r, 4, argv, lens);
    if (rc != TGC_OK) {
        return rc;
    }

    freeReplyObject(r);

    lim = old;
    lim.set[field] = 1;
    lim.value[field] = value < 0 ? -1 : value;

    if (c->opts->json) {
        return tgc_limits_json(scope, name, &lim, field);
    }

    n = tgc_name_tty(name, strlen(name));
    printf("%s %s: %s is now %s (was %s)\n",
           scope == TG_SCOPE_USER ? "user" : "team", n ? n : "?",
           tgc_limit_names[field], tgc_limit_text(&lim, field, now),
           tgc_limit_text(&old, field, was));
    free(n);

    return TGC_OK;
}


static int
tgc_limit_clear(tgc_t *c, char scope, const char *name, int field)
{
    int           rc;
    char         *n;
    char          key[TG_KEY_PREFIX_MAX + 32], was[TGC_MONEY_LEN];
    size_t        lens[3];
    const char   *argv[3];
    redisReply   *r;
    tgc_limits_t  old;

    rc = tgc_limits_get(c, scope, name, &old);
    if (rc != TGC_OK) {
        return rc;
    }

    argv[0] = field < 0 ? "DEL" : "HDEL";
    lens[0] = strlen(argv[0]);
    argv[1] = key;
    tgc_key(scope, name, strlen(name), ":limits", key, sizeof(key), &lens[1]);

    if (field >= 0) {
        argv[2] = tgc_limit_names[field];
        lens[2] = strlen(argv[2]);
    }

    rc = tgc_command(c, &r, field < 0 ? 2 : 3, argv, lens);
    if (rc != TGC_OK) {
        return rc;
    }

    freeReplyObject(r);

    if (c->opts->json) {
        memset(&old, 0, sizeof(tgc_limits_t));

        if (field < 0) {
            return tgc_limits_json(scope, name, &old, -1);
        }

        /* what is left */
        rc = tgc_limits_get(c, scope, name, &old);
        if (rc != TGC_OK) {
            return rc;
        }

        return tgc_limits_json(scope, name, &old, -1);
    }

    n = tgc_name_tty(name, strlen(name));

    if (field < 0) {
        int  i, any = 0;

        for (i = 0; i < TGC_LIM_N; i++) {
            any |= old.set[i];
        }

        printf("%s %s: %s; the limits from nginx.conf apply\n",
               scope == TG_SCOPE_USER ? "user" : "team", n ? n : "?",
               any ? "every ops override removed"
                   : "had no ops override");

    } else {
        printf("%s %s: %s override removed (was %s); the limit from "
               "nginx.conf applies, if any\n",
               scope == TG_SCOPE_USER ? "user" : "team", n ? n : "?",
               tgc_limit_names[field], tgc_limit_text(&old, field, was));
    }

    free(n);

    return TGC_OK;
}


/* a VALUE for FIELD: dollars, a count, or "none" (-1) */
int
tgc_limit_value(int field, const char *s, int64_t *v)
{
    int  rc;

    if (strcmp(s, "none") == 0) {
        *v = -1;
        return TGC_OK;
    }

    rc = tgc_limit_is_usd(field) ? tgc_money_parse(s, v)
                                 : tgc_int_parse(s, v);

    switch (rc) {
    case 0:
        return TGC_OK;
    case -2:
        return tgc_usage_error("negative amount \"%s\" refused: \"limit "
                               "clear\" removes an override, \"none\" "
                               "stores no cap", s);
    case -3:
        return tgc_usage_error("amount \"%s\" is finer than a micro-dollar",
                               s);
    case -4:
        return tgc_usage_error("amount \"%s\" is too large", s);
    default:
        return tgc_usage_error("\"%s\" is not %s (or \"none\")", s,
                               tgc_limit_is_usd(field)
                               ? "an amount in dollars, like 2000 or 0.25"
                               : "a whole number");
    }
}


static int
tgc_field_arg(const char *s, int *field)
{
    *field = tgc_limit_field(s);

    if (*field < 0) {
        return tgc_usage_error("unknown limit field \"%s\" (fields: "
                               "usd_month, usd_day, tokens_month, "
                               "tokens_day, requests_month, requests_day, "
                               "sandbox_usd_month, sandbox_usd_day)", s);
    }

    return TGC_OK;
}


int
tgc_cmd_limit(tgc_t *c)
{
    int           rc, field;
    char          scope;
    int64_t       value;
    tgc_opts_t   *o;
    tgc_opts_t    sub;
    tgc_limits_t  lim;
    const char   *op;

    o = c->opts;

    if (o->nargs < 3) {
        return tgc_usage_error("%s", tgc_limit_usage);
    }

    op = o->args[0];

    if (strcmp(op, "get") != 0 && strcmp(op, "set") != 0
        && strcmp(op, "clear") != 0)
    {
        return tgc_usage_error("limit \"%s\": use get, set or clear", op);
    }

    /* user|team NAME are args[1], args[2] */
    sub = *o;
    sub.args = o->args + 1;

    rc = tgc_scope_arg(&sub, "limit", &scope);
    if (rc != TGC_OK) {
        return rc;
    }

    field = -1;

    if (o->nargs >= 4) {
        rc = tgc_field_arg(o->args[3], &field);
        if (rc != TGC_OK) {
            return rc;
        }
    }

    if (strcmp(op, "set") == 0) {
        if (o->nargs != 5) {
            return tgc_usage_error("usage: tokenguardctl limit set user|team "
                                   "NAME FIELD VALUE");
        }

        rc = tgc_limit_value(field, o->args[4], &value);
        if (rc != TGC_OK) {
            return rc;
        }

        if (scope == TG_SCOPE_TEAM
            && (field == TGC_LIM_SANDBOX_USD_MONTH
                || field == TGC_LIM_SANDBOX_USD_DAY))
        {
            return tgc_usage_error("%s is per user: sandbox requests do not "
                                   "count against a team",
                                   tgc_limit_names[field]);
        }

        return tgc_limit_write(c, scope, o->args[2], field, value);
    }

    if (o->nargs > 4) {
        return tgc_usage_error("usage: tokenguardctl limit %s user|team "
                               "NAME [FIELD]", op);
    }

    rc = tgc_connect(c);
    if (rc != TGC_OK) {
        return rc;
    }

    if (strcmp(op, "clear") == 0) {
        return tgc_limit_clear(c, scope, o->args[2], field);
    }

    rc = tgc_limits_get(c, scope, o->args[2], &lim);
    if (rc != TGC_OK) {
        return rc;
    }

    if (o->json) {
        return tgc_limits_json(scope, o->args[2], &lim, field);
    }

    return tgc_limits_show(scope, o->args[2], &lim, field);
}
