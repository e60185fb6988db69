/*
 * The budget kept by a script call per request: the worst case reserved
 * in each scope (user, then team) before the request goes upstream, what
 * it used settled afterwards.  Redis scripts do the arithmetic atomically
 * (core/tg_scripts.c); this file builds their arguments and reads their
 * replies, and answers through ctx->budget.done
 * (ngx_http_tokenguard_budget.c says what the answer is).  Settles and
 * releases are writes nobody waits for (ngx_http_tokenguard_write.c).
 */

#include "ngx_http_tokenguard_module.h"
#include "tg_keys.h"


/* a settled id is remembered this long, longer than any journal stay */
#define NGX_HTTP_TOKENGUARD_REMEMBER_MS  (7 * 86400 * 1000LL)


/* the keys of one scope, for one request's periods */
typedef struct {
    char          scope;
    ngx_str_t    *name;
    u_char        prefix[TG_KEY_PREFIX_MAX];
    size_t        prefix_len;
} ngx_http_tokenguard_scope_t;


/* what a reservation op carries: enough to release it if orphaned */
typedef struct {
    ngx_uint_t    index;                /* 0 user, 1 team */
    size_t        release_len;
    u_char        release[];
} ngx_http_tokenguard_reserve_payload_t;


static ngx_int_t ngx_http_tokenguard_reserve_send(
    ngx_http_tokenguard_ctx_t *ctx, ngx_uint_t i);


/* prefix + suffix ("tg:{u:alice}" + ":2026-11") */
static void
ngx_http_tokenguard_arg_key(tg_command_t *a, ngx_http_tokenguard_scope_t *sc,
    const char *suffix)
{
    tg_command_key(a, (char *) sc->prefix, sc->prefix_len, suffix);
}


static void
ngx_http_tokenguard_arg_periods(tg_command_t *a,
    ngx_http_tokenguard_scope_t *sc, time_t now)
{
    char  month[8], day[11];

    tg_period_month(now, month);
    tg_period_day(now, day);

    ngx_http_tokenguard_arg_key(a, sc, month);
    ngx_http_tokenguard_arg_key(a, sc, day);
}


static ngx_int_t
ngx_http_tokenguard_scope(ngx_http_tokenguard_scope_t *sc, char scope,
    ngx_str_t *name)
{
    sc->scope = scope;
    sc->name = name;

    if (name->len == 0 && name->data == ngx_http_tokenguard_anonymous) {
        /* a dry run's caller without an identity: "tg:{u:}" */
        sc->prefix_len = ngx_sprintf(sc->prefix, "tg:{%c:}", scope)
                         - sc->prefix;
        return NGX_OK;
    }

    sc->prefix_len = tg_key_prefix(scope, (char *) name->data, name->len,
                                   (char *) sc->prefix);

    return sc->prefix_len ? NGX_OK : NGX_ERROR;
}


/* SETTLE for one scope; requests 0 only releases the reservation */
static void
ngx_http_tokenguard_settle_args(tg_command_t *a,
    ngx_http_tokenguard_ctx_t *ctx, ngx_http_tokenguard_scope_t *sc,
    ngx_http_tokenguard_main_conf_t *tmcf, int64_t usd, int64_t tin,
    int64_t tout, ngx_uint_t requests)
{
    ngx_uint_t  rerouted;

    rerouted = ctx->routing.rerouted && requests;

    ngx_http_tokenguard_redis_evalsha(a, TG_SCRIPT_SETTLE, 5);
    ngx_http_tokenguard_arg_periods(a, sc, ctx->now);
    ngx_http_tokenguard_arg_key(a, sc, "resv");
    ngx_http_tokenguard_arg_key(a, sc, "resv:exp");
    ngx_http_tokenguard_arg_key(a, sc, "settled");

    tg_command_int(a, (int64_t) ngx_time() * 1000);
    tg_command_arg(a, ctx->budget.id, TG_ID_LEN);
    tg_command_int(a, ctx->caller.sandbox);
    tg_command_int(a, usd);
    tg_command_int(a, tin);
    tg_command_int(a, tout);
    tg_command_int(a, requests);
    tg_command_arg(a, ctx->routing.model.data, ctx->routing.model.len);
    tg_command_arg(a, ctx->routing.category.data, ctx->routing.category.len);
    tg_command_int(a, ctx->routing.rerouted);
    tg_command_int(a, tmcf->retention_month);
    tg_command_int(a, tmcf->retention_day);
    tg_command_int(a, NGX_HTTP_TOKENGUARD_REMEMBER_MS);
    tg_command_int(a, ctx->resp.estimated);

    if (rerouted) {
        tg_command_arg(a, ctx->in.model_requested.data,
                       ctx->in.model_requested.len);
    } else {
        tg_command_arg(a, (u_char *) "", 0);
    }

    tg_command_int(a, rerouted ? ctx->resp.saved_usd : 0);

    /* per route: what it saved, or in a dry run what it would have */
    if (requests && (rerouted || ctx->routing.dry_price)) {
        tg_command_arg(a, ctx->routing.tag.data, ctx->routing.tag.len);
    } else {
        tg_command_arg(a, (u_char *) "", 0);
    }

    tg_command_int(a, ctx->routing.dry_price != NULL);
    tg_command_int(a, ctx->resp.dry_saved_usd);
}


static ngx_uint_t
ngx_http_tokenguard_scopes(ngx_http_tokenguard_ctx_t *ctx,
    ngx_http_tokenguard_scope_t *sc)
{
    ngx_uint_t  n;

    n = 0;

    if (ngx_http_tokenguard_scope(&sc[n], TG_SCOPE_USER, &ctx->caller.user)
        == NGX_OK)
    {
        n++;
    }

    /* a sandbox request is the user's own experiment: no team budget */
    if (ctx->caller.team.len && !ctx->caller.sandbox
        && ngx_http_tokenguard_scope(&sc[n], TG_SCOPE_TEAM, &ctx->caller.team)
           == NGX_OK)
    {
        n++;
    }

    return n;
}


void
ngx_http_tokenguard_ledger_settle(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, int64_t usd, int64_t input,
    int64_t output)
{
    ngx_uint_t                        i, n;
    tg_command_t                      a;
    ngx_http_tokenguard_scope_t       sc[2];
    ngx_http_tokenguard_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tokenguard_module);

    n = ngx_http_tokenguard_scopes(ctx, sc);

    for (i = 0; i < n; i++) {
        ngx_http_tokenguard_settle_args(&a, ctx, &sc[i], tmcf, usd, input,
                                        output, 1);
        ngx_http_tokenguard_write_command(TG_SCRIPT_SETTLE, &a);
        ngx_http_tokenguard_write_index(sc[i].scope, sc[i].name, NULL);
    }
}


/*
 * A counter of the user's ("denied"); with a kind, also "FIELD:KIND",
 * and the team's too ("dry_denied", "dry_denied:budget")
 */
void
ngx_http_tokenguard_ledger_count(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, const char *field, const char *kind)
{
    u_char                            more[64], *p;
    ngx_uint_t                        i, n;
    tg_command_t                      a;
    ngx_http_tokenguard_scope_t       sc[2];
    ngx_http_tokenguard_main_conf_t  *tmcf;

    if (kind) {
        n = ngx_http_tokenguard_scopes(ctx, sc);

    } else {
        n = ngx_http_tokenguard_scope(&sc[0], TG_SCOPE_USER,
                                      &ctx->caller.user)
            == NGX_OK;
    }

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tokenguard_module);

    if (ctx->now == 0) {
        ctx->now = ngx_time();
    }

    p = kind ? ngx_slprintf(more, more + sizeof(more), "%s:%s", field, kind)
             : more;

    for (i = 0; i < n; i++) {
        ngx_http_tokenguard_redis_evalsha(&a, TG_SCRIPT_COUNT, 2);
        ngx_http_tokenguard_arg_periods(&a, &sc[i], ctx->now);
        tg_command_arg(&a, (u_char *) field, ngx_strlen(field));
        tg_command_int(&a, tmcf->retention_month);
        tg_command_int(&a, tmcf->retention_day);

        if (p != more) {
            tg_command_arg(&a, more, p - more);
        }

        ngx_http_tokenguard_write_command(TG_SCRIPT_COUNT, &a);
        ngx_http_tokenguard_write_index(sc[i].scope, sc[i].name, NULL);
    }
}


/* ---- the budget>= read ---- */


/*
 * One scope's STATUS reply: the user's gives the budget>= share (the
 * user's tightest USD cap); each scope's tightest cap of any unit is a
 * candidate for the warning's.  A reply that is not understood leaves
 * the shares unknown: a warning of one scope only would claim too much.
 */
static void
ngx_http_tokenguard_status_handler(ngx_http_tokenguard_redis_op_t *op,
    redisReply *reply)
{
    ngx_uint_t                  i, team;
    ngx_http_tokenguard_ctx_t  *ctx = op->data;

    if (ctx == NULL) {
        return;
    }

    team = op->payload[0];
    ctx->ledger.ops[team] = NULL;

    for (i = 0; reply && reply->type == REDIS_REPLY_ARRAY
                && reply->elements == 8 && i < 8; i++)
    {
        if (reply->element[i]->type != REDIS_REPLY_INTEGER) {
            break;
        }
    }

    if (i == 8 && !ctx->ledger.status_failed) {
        if (!team) {
            ctx->budget.pct = (int) ngx_max(ngx_min(
                                  reply->element[0]->integer, 1000000), -1);
            ctx->budget.pct_day = reply->element[1]->integer == 2;
            ctx->budget.pct_limit = reply->element[2]->integer;
            ctx->budget.pct_used = reply->element[3]->integer;
        }

        if (reply->element[4]->integer > ctx->budget.warn_pct
            && reply->element[5]->integer >= 1
            && reply->element[5]->integer <= 8)
        {
            ctx->budget.warn_pct = (int) ngx_min(reply->element[4]->integer,
                                                 1000000);
            ctx->budget.warn_cap = reply->element[5]->integer - 1;
            ctx->budget.warn_team = team;
            ctx->budget.warn_limit = reply->element[6]->integer;
            ctx->budget.warn_used = reply->element[7]->integer;
        }

    } else {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "tokenguard: redis refused the budget read: %s",
                          reply->str);
        }

        ctx->ledger.status_failed = 1;
        ctx->budget.pct = -1;
        ctx->budget.warn_pct = -1;
    }

    if (--ctx->ledger.waiting == 0) {
        ctx->budget.done(ctx);
    }
}


/*
 * The scopes' STATUS calls, pipelined: one round trip whatever their
 * number.  NGX_AGAIN: wait for the replies; NGX_OK: the store is away.
 */
ngx_int_t
ngx_http_tokenguard_ledger_status(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    int64_t                          *caps;
    ngx_uint_t                        i, j, n;
    tg_command_t                      a;
    ngx_http_tokenguard_scope_t       sc[2];
    ngx_http_tokenguard_redis_op_t   *op;
    ngx_http_tokenguard_loc_conf_t   *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);

    n = ngx_http_tokenguard_scopes(ctx, sc);

    ctx->ledger.status_failed = 0;

    for (i = 0; i < n; i++) {
        caps = sc[i].scope == TG_SCOPE_USER ? tlcf->user_caps
                                            : tlcf->team_caps;

        ngx_http_tokenguard_redis_evalsha(&a, TG_SCRIPT_STATUS, 3);
        ngx_http_tokenguard_arg_periods(&a, &sc[i], ctx->now);
        ngx_http_tokenguard_arg_key(&a, &sc[i], "limits");
        tg_command_int(&a, ctx->caller.sandbox);

        for (j = 0; j < NGX_HTTP_TOKENGUARD_CAPS; j++) {
            tg_command_int(&a, caps[j]);
        }

        tg_command_int(&a, i == 0 ? tlcf->sandbox_caps[0] : -1);
        tg_command_int(&a, i == 0 ? tlcf->sandbox_caps[1] : -1);

        op = ngx_http_tokenguard_redis_op(TG_SCRIPT_STATUS, &a, 1,
                                          ngx_http_tokenguard_status_handler,
                                          ctx);
        if (op == NULL) {
            break;
        }

        op->payload[0] = (u_char) i;

        if (ngx_http_tokenguard_cluster_send(op) != NGX_OK) {
            ngx_http_tokenguard_redis_free(op);
            break;
        }

        ctx->ledger.ops[i] = op;
        ctx->ledger.waiting++;
    }

    if (i < n) {
        /* a scope unread: no share is claimed, the replies owed ignored */
        ctx->ledger.status_failed = 1;
        ctx->budget.pct = -1;
        ctx->budget.warn_pct = -1;
    }

    return ctx->ledger.waiting ? NGX_AGAIN : NGX_OK;
}


/* ---- the reservation ---- */


static void
ngx_http_tokenguard_release_orphan(ngx_http_tokenguard_redis_op_t *op)
{
    ngx_http_tokenguard_reserve_payload_t  *pl;

    pl = (ngx_http_tokenguard_reserve_payload_t *) op->payload;

    ngx_http_tokenguard_write_raw(TG_SCRIPT_SETTLE, pl->release,
                                  pl->release_len);
}


static void
ngx_http_tokenguard_reserve_handler(ngx_http_tokenguard_redis_op_t *op,
    redisReply *reply)
{
    redisReply                             *e;
    ngx_http_tokenguard_ctx_t              *ctx = op->data;
    ngx_http_tokenguard_reserve_payload_t  *pl;

    pl = (ngx_http_tokenguard_reserve_payload_t *) op->payload;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 3
        || reply->element[0]->type != REDIS_REPLY_INTEGER)
    {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "tokenguard: redis refused a reservation: %s",
                          reply->str);

        } else if (reply) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "tokenguard: unexpected reply type %d to a"
                          " reservation", reply->type);
        }

        if (ctx == NULL) {
            return;
        }

        ctx->budget.store_failed = 1;
        goto done;
    }

    if (reply->element[reply->elements - 1]->type == REDIS_REPLY_INTEGER
        && reply->element[reply->elements - 1]->integer > 0)
    {
        /* the last element: reservations this script found expired */
        ngx_http_tokenguard_counters_store(-1, 0,
                        reply->element[reply->elements - 1]->integer);
    }

    if (reply->element[0]->integer == 1) {

        if (ctx == NULL) {
            /* the request is gone: give the reservation back now */
            ngx_http_tokenguard_release_orphan(op);
            return;
        }

        if (pl->index == 0) {
            ctx->budget.reserved_user = 1;
        } else {
            ctx->budget.reserved_team = 1;
        }

        e = reply->element[1];

        if (e->type == REDIS_REPLY_INTEGER && e->integer >= 0
            && (ctx->budget.remaining_usd < 0
                || e->integer < ctx->budget.remaining_usd))
        {
            ctx->budget.remaining_usd = e->integer;
        }

        goto done;
    }

    if (ctx == NULL) {
        return;
    }

    if (reply->elements >= 4 && ctx->budget.cap_field[0] == '\0'
        && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        ngx_cpystrn((u_char *) ctx->budget.cap_field,
                    (u_char *) reply->element[1]->str,
                    sizeof(ctx->budget.cap_field));
        ctx->budget.cap_limit = reply->element[2]->integer;
        ctx->budget.cap_used = reply->element[3]->integer;
        ctx->budget.refused_scope = pl->index;
    }

done:

    ctx->ledger.ops[pl->index] = NULL;

    if (--ctx->ledger.waiting != 0) {
        return;
    }

    if (pl->index == 0 && ctx->budget.reserved_user
        && ctx->budget.cap_field[0] == '\0'
        && ngx_http_tokenguard_reserve_send(ctx, 1) == NGX_OK)
    {
        /* the user admitted: now the team */
        return;
    }

    ctx->budget.done(ctx);
}


static ngx_http_tokenguard_redis_op_t *
ngx_http_tokenguard_reserve_op(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, ngx_http_tokenguard_scope_t *sc,
    ngx_uint_t index)
{
    char                                   *release;
    long                                    len;
    int64_t                                *caps;
    ngx_uint_t                              i;
    tg_command_t                            a;
    ngx_http_tokenguard_redis_op_t         *op;
    ngx_http_tokenguard_loc_conf_t         *tlcf;
    ngx_http_tokenguard_main_conf_t        *tmcf;
    ngx_http_tokenguard_reserve_payload_t  *pl;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);
    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tokenguard_module);

    /* the release this reservation needs if its request disappears */
    ngx_http_tokenguard_settle_args(&a, ctx, sc, tmcf, 0, 0, 0, 0);

    len = tg_command_finish(&a, &release);
    if (len < 0) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "tokenguard: a release command is not built: %s",
                      tg_command_strerror(a.error));
        return NULL;
    }

    caps = index == 0 ? tlcf->user_caps : tlcf->team_caps;

    ngx_http_tokenguard_redis_evalsha(&a, TG_SCRIPT_RESERVE, 5);
    ngx_http_tokenguard_arg_periods(&a, sc, ctx->now);
    ngx_http_tokenguard_arg_key(&a, sc, "limits");
    ngx_http_tokenguard_arg_key(&a, sc, "resv");
    ngx_http_tokenguard_arg_key(&a, sc, "resv:exp");

    tg_command_int(&a, (int64_t) ngx_time() * 1000);
    tg_command_int(&a, tlcf->reservation_ttl);
    tg_command_arg(&a, ctx->budget.id, TG_ID_LEN);
    tg_command_int(&a, ctx->caller.sandbox);
    tg_command_int(&a, ctx->budget.reserve_usd);
    tg_command_int(&a, ctx->budget.reserve_tokens);

    for (i = 0; i < NGX_HTTP_TOKENGUARD_CAPS; i++) {
        tg_command_int(&a, caps[i]);
    }

    tg_command_int(&a, index == 0 ? tlcf->sandbox_caps[0] : -1);
    tg_command_int(&a, index == 0 ? tlcf->sandbox_caps[1] : -1);
    tg_command_int(&a, tmcf->retention_month);
    tg_command_int(&a, tmcf->retention_day);
    tg_command_int(&a, tlcf->dry_run);

    op = ngx_http_tokenguard_redis_op(TG_SCRIPT_RESERVE, &a,
                    sizeof(ngx_http_tokenguard_reserve_payload_t) + len,
                    ngx_http_tokenguard_reserve_handler, ctx);

    if (op != NULL) {
        pl = (ngx_http_tokenguard_reserve_payload_t *) op->payload;
        pl->index = index;
        pl->release_len = len;
        ngx_memcpy(pl->release, release, len);
    }

    redisFreeCommand(release);

    return op;
}


/*
 * Sends the reservation of scope i (0 the user, 1 the team).  NGX_DECLINED:
 * there is no such scope; NGX_ERROR: it could not be sent (store_failed).
 */
static ngx_int_t
ngx_http_tokenguard_reserve_send(ngx_http_tokenguard_ctx_t *ctx,
    ngx_uint_t i)
{
    ngx_http_tokenguard_scope_t      sc[2];
    ngx_http_tokenguard_redis_op_t  *op;

    if (i >= ngx_http_tokenguard_scopes(ctx, sc)) {
        return NGX_DECLINED;
    }

    op = ngx_http_tokenguard_reserve_op(ctx->request, ctx, &sc[i], i);

    if (op == NULL || ngx_http_tokenguard_cluster_send(op) != NGX_OK) {
        if (op) {
            ngx_http_tokenguard_redis_free(op);
        }

        ctx->budget.store_failed = 1;
        return NGX_ERROR;
    }

    ctx->ledger.ops[i] = op;
    ctx->ledger.waiting++;

    return NGX_OK;
}


/*
 * NGX_AGAIN: waiting for the replies, ctx->budget.done(ctx) follows;
 * NGX_OK: not sent (store_failed), or no scope to reserve in.
 *
 * The team is asked only once the user has admitted (one more round
 * trip): a request its user refuses must not hold, even for a round
 * trip, team headroom that another user's request fits in.
 */
ngx_int_t
ngx_http_tokenguard_ledger_reserve(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    return ngx_http_tokenguard_reserve_send(ctx, 0) == NGX_OK ? NGX_AGAIN
                                                              : NGX_OK;
}


/* gives back whatever the request reserved, spending nothing */
void
ngx_http_tokenguard_ledger_release(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_uint_t                        i, n;
    tg_command_t                      a;
    ngx_http_tokenguard_scope_t       sc[2];
    ngx_http_tokenguard_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tokenguard_module);

    n = ngx_http_tokenguard_scopes(ctx, sc);

    for (i = 0; i < n; i++) {
        if ((i == 0 && !ctx->budget.reserved_user)
            || (i == 1 && !ctx->budget.reserved_team))
        {
            continue;
        }

        ngx_http_tokenguard_settle_args(&a, ctx, &sc[i], tmcf, 0, 0, 0, 0);
        ngx_http_tokenguard_write_command(TG_SCRIPT_SETTLE, &a);
    }
}


/* the request is going away: replies still owed find no request */
void
ngx_http_tokenguard_ledger_detach(ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_uint_t  i;

    for (i = 0; i < 2; i++) {
        if (ctx->ledger.ops[i]) {
            ctx->ledger.ops[i]->data = NULL;
            ctx->ledger.ops[i] = NULL;
        }
    }
}


/* ---- directives ---- */


/* tokenguard_cap user|team LIMIT day|month */
char *
ngx_http_tokenguard_cap_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tokenguard_loc_conf_t *tlcf = conf;

    int64_t     *caps;
    ngx_str_t   *value;
    tg_limit_t   limit;
    tg_period_e  period;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "user") == 0) {
        caps = tlcf->user_caps;

    } else if (ngx_strcmp(value[1].data, "team") == 0) {
        caps = tlcf->team_caps;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid scope \"%V\" in \"%V\" directive, it"
                           " must be \"user\" or \"team\"",
                           &value[1], &value[0]);
        return NGX_CONF_ERROR;
    }

    if (tg_limit_parse((char *) value[2].data, value[2].len, &limit) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid limit \"%V\" in \"%V\" directive, it"
                           " must be like \"1500usd\", \"0.25usd\","
                           " \"2000000tokens\" or \"500requests\"",
                           &value[2], &value[0]);
        return NGX_CONF_ERROR;
    }

    if (tg_period_parse((char *) value[3].data, value[3].len, &period) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid period \"%V\" in \"%V\" directive, it"
                           " must be \"day\" or \"month\"",
                           &value[3], &value[0]);
        return NGX_CONF_ERROR;
    }

    if (!tlcf->caps_set) {
        ngx_memset(tlcf->user_caps, 0xff, sizeof(tlcf->user_caps));
        ngx_memset(tlcf->team_caps, 0xff, sizeof(tlcf->team_caps));
        tlcf->caps_set = 1;
    }

    if (caps[TG_CAP(limit.kind, period)] >= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate \"%V %V ... %V\" in \"%V\" directive",
                           &value[1], &value[2], &value[3], &value[0]);
        return NGX_CONF_ERROR;
    }

    caps[TG_CAP(limit.kind, period)] = limit.value;

    return NGX_CONF_OK;
}


/* tokenguard_sandbox_allowance LIMIT day|month (USD only) */
char *
ngx_http_tokenguard_allowance_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tokenguard_loc_conf_t *tlcf = conf;

    ngx_str_t   *value;
    tg_limit_t   limit;
    tg_period_e  period;

    value = cf->args->elts;

    if (tg_limit_parse((char *) value[1].data, value[1].len, &limit) != 0
        || limit.kind != TG_LIMIT_USD)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid allowance \"%V\" in \"%V\" directive,"
                           " it must be in dollars, like \"50usd\"",
                           &value[1], &value[0]);
        return NGX_CONF_ERROR;
    }

    if (tg_period_parse((char *) value[2].data, value[2].len, &period) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid period \"%V\" in \"%V\" directive, it"
                           " must be \"day\" or \"month\"",
                           &value[2], &value[0]);
        return NGX_CONF_ERROR;
    }

    if (!tlcf->sandbox_set) {
        tlcf->sandbox_caps[0] = -1;
        tlcf->sandbox_caps[1] = -1;
        tlcf->sandbox_set = 1;
    }

    tlcf->sandbox_caps[period] = limit.value;

    return NGX_CONF_OK;
}
