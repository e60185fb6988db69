/*
 * The budget ledger: reserve a request's worst case against its scopes'
 * caps before it goes upstream, settle what it really used afterwards.
 * Redis scripts do the arithmetic atomically (core/tg_scripts.c); this
 * file builds their arguments, reads their replies and resumes requests.
 *
 * Writes that nobody waits for (settles, releases, counters) go through
 * one path: if the store is unavailable they are journaled in shared
 * memory and replayed later.  Settles carry the reservation id, and the
 * settle script ignores an id it has already counted, so a replay can
 * never count twice.
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


/* the arguments go straight into the bounded builder (core/tg_command.c) */
static void
ngx_http_tokenguard_args_init(tg_command_t *a, tg_script_e s, int nkeys)
{
    tg_command_init(a, 0);
    tg_command_str(a, "EVALSHA");
    tg_command_arg(a, ngx_http_tokenguard_script_sha[s], 40);
    tg_command_int(a, nkeys);
}


static void
ngx_http_tokenguard_arg(tg_command_t *a, u_char *p, size_t len)
{
    tg_command_arg(a, p, len);
}


static void
ngx_http_tokenguard_arg_int(tg_command_t *a, int64_t v)
{
    tg_command_int(a, v);
}


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
    sc->prefix_len = tg_key_prefix(scope, (char *) name->data, name->len,
                                   (char *) sc->prefix);

    return sc->prefix_len ? NGX_OK : NGX_ERROR;
}


/* ---- writes nobody waits for: journaled when the store is away ---- */


static void
ngx_http_tokenguard_write_handler(ngx_http_tokenguard_redis_op_t *op,
    redisReply *reply)
{
    if (reply == NULL || ngx_http_tokenguard_redis_transient(reply)) {
        if (reply) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "tokenguard: redis refused a ledger write for now,"
                          " journaled: %s", reply->str);
        }

        (void) ngx_http_tokenguard_journal_add(op->script, op->cmd, op->len);
        return;
    }

    /* a settle's reply: {applied, reservations it found expired} */
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2
        && reply->element[1]->type == REDIS_REPLY_INTEGER
        && reply->element[1]->integer > 0)
    {
        ngx_http_tokenguard_counters_store(-1, 0,
                                          reply->element[1]->integer);
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* not journaled: the same command would fail the same way again */
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "tokenguard: redis refused a ledger write: %s",
                      reply->str);
    }
}


static void
ngx_http_tokenguard_write(ngx_http_tokenguard_redis_op_t *op)
{
    if (op == NULL) {
        ngx_log_error(NGX_LOG_CRIT, ngx_cycle->log, 0,
                      "tokenguard: out of memory, a ledger write is lost");
        return;
    }

    if (ngx_http_tokenguard_redis_send(op) != NGX_OK) {
        (void) ngx_http_tokenguard_journal_add(op->script, op->cmd, op->len);
        ngx_http_tokenguard_redis_free(op);
    }
}


static void
ngx_http_tokenguard_write_args(ngx_int_t script, tg_command_t *a)
{
    ngx_http_tokenguard_write(ngx_http_tokenguard_redis_op(script, a, 0,
                              ngx_http_tokenguard_write_handler, NULL));
}


/* SETTLE for one scope; requests 0 only releases the reservation */
static void
ngx_http_tokenguard_settle_args(tg_command_t *a,
    ngx_http_tokenguard_ctx_t *ctx, ngx_http_tokenguard_scope_t *sc,
    ngx_http_tokenguard_main_conf_t *tmcf, int64_t usd, int64_t tin,
    int64_t tout, ngx_uint_t requests)
{
    ngx_uint_t  rerouted;

    rerouted = ctx->rerouted && requests;

    ngx_http_tokenguard_args_init(a, TG_SCRIPT_SETTLE, 5);
    ngx_http_tokenguard_arg_periods(a, sc, ctx->now);
    ngx_http_tokenguard_arg_key(a, sc, "resv");
    ngx_http_tokenguard_arg_key(a, sc, "resv:exp");
    ngx_http_tokenguard_arg_key(a, sc, "settled");

    ngx_http_tokenguard_arg_int(a, (int64_t) ngx_time() * 1000);
    ngx_http_tokenguard_arg(a, ctx->id, TG_ID_LEN);
    ngx_http_tokenguard_arg_int(a, ctx->sandbox);
    ngx_http_tokenguard_arg_int(a, usd);
    ngx_http_tokenguard_arg_int(a, tin);
    ngx_http_tokenguard_arg_int(a, tout);
    ngx_http_tokenguard_arg_int(a, requests);
    ngx_http_tokenguard_arg(a, ctx->model.data, ctx->model.len);
    ngx_http_tokenguard_arg(a, ctx->category.data, ctx->category.len);
    ngx_http_tokenguard_arg_int(a, ctx->rerouted);
    ngx_http_tokenguard_arg_int(a, tmcf->retention_month);
    ngx_http_tokenguard_arg_int(a, tmcf->retention_day);
    ngx_http_tokenguard_arg_int(a, NGX_HTTP_TOKENGUARD_REMEMBER_MS);
    ngx_http_tokenguard_arg_int(a, ctx->estimated);

    if (rerouted) {
        ngx_http_tokenguard_arg(a, ctx->model_requested.data,
                                ctx->model_requested.len);
    } else {
        ngx_http_tokenguard_arg(a, (u_char *) "", 0);
    }

    ngx_http_tokenguard_arg_int(a, rerouted ? ctx->saved_usd : 0);
}


/*
 * "who was seen in the period": plain commands, each key its own slot;
 * a worker writes them once a minute per name at most.
 */
void
ngx_http_tokenguard_ledger_index(char scope, ngx_str_t *name)
{
    char                              period[11];
    u_char                            key[sizeof("tg:idx:YYYY-MM-DD")];
    size_t                            len;
    uint32_t                          hash;
    ngx_uint_t                        i;
    tg_command_t                      c;
    ngx_http_tokenguard_main_conf_t  *tmcf;

    static struct {
        uint32_t                      hash;
        time_t                        minute;
    }                                 seen[1024];

    hash = ngx_crc32_short(name->data, name->len) ^ (uint32_t) scope;
    i = hash % 1024;

    if (seen[i].hash == hash && seen[i].minute == ngx_time() / 60) {
        return;
    }

    seen[i].hash = hash;
    seen[i].minute = ngx_time() / 60;

    tmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_tokenguard_module);

    for (i = 0; i < 2; i++) {
        if (i == 0) {
            tg_period_month(ngx_time(), period);
        } else {
            tg_period_day(ngx_time(), period);
        }

        len = ngx_snprintf(key, sizeof(key), "tg:idx:%s", period) - key;

        tg_command_init(&c, 0);
        tg_command_str(&c, "SADD");
        tg_command_key(&c, (char *) key, len,
                       scope == TG_SCOPE_USER ? "users" : "teams");
        tg_command_arg(&c, name->data, name->len);

        ngx_http_tokenguard_write(ngx_http_tokenguard_redis_op(-1, &c, 0,
                                  ngx_http_tokenguard_write_handler, NULL));

        tg_command_init(&c, 0);
        tg_command_str(&c, "EXPIRE");
        tg_command_key(&c, (char *) key, len,
                       scope == TG_SCOPE_USER ? "users" : "teams");
        tg_command_int(&c, i == 0 ? tmcf->retention_month
                                  : tmcf->retention_day);

        ngx_http_tokenguard_write(ngx_http_tokenguard_redis_op(-1, &c, 0,
                                  ngx_http_tokenguard_write_handler, NULL));
    }
}


static ngx_uint_t
ngx_http_tokenguard_scopes(ngx_http_tokenguard_ctx_t *ctx,
    ngx_http_tokenguard_scope_t *sc)
{
    ngx_uint_t  n;

    n = 0;

    if (ngx_http_tokenguard_scope(&sc[n], TG_SCOPE_USER, &ctx->user)
        == NGX_OK)
    {
        n++;
    }

    /* a sandbox request is the user's own experiment: no team budget */
    if (ctx->team.len && !ctx->sandbox
        && ngx_http_tokenguard_scope(&sc[n], TG_SCOPE_TEAM, &ctx->team)
           == NGX_OK)
    {
        n++;
    }

    return n;
}


void
ngx_http_tokenguard_ledger_settle(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, const tg_usage_t *u)
{
    int64_t                           usd, input, output;
    ngx_uint_t                        i, n;
    const tg_price_t                 *requested;
    tg_command_t                      a;
    ngx_http_tokenguard_scope_t       sc[2];
    ngx_http_tokenguard_main_conf_t  *tmcf;

    if (ctx->settled || ctx->price == NULL) {
        return;
    }

    ctx->settled = 1;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tokenguard_module);

    input = u->input;
    output = u->output;
    /* the worst case is charged at what was reserved for it */
    usd = ctx->charge_reserved ? ctx->reserve_usd
                               : tg_price_cost(ctx->price, u, ngx_time());

    if (ctx->rerouted) {
        /* the routing's worth: the same usage at the requested model */
        requested = tg_prices_lookup(tmcf->prices,
                                     (char *) ctx->model_requested.data,
                                     ctx->model_requested.len);
        ctx->saved_usd = requested ? tg_price_cost(requested, u, ngx_time())
                                     - usd
                                   : 0;
    }

    /* what the log-phase variables report */
    ctx->usage.input = input;
    ctx->usage.output = output;
    ctx->cost_usd = usd;

    ngx_http_tokenguard_counters_usage(ctx, input, output, usd);

    if (ctx->leased) {
        ngx_http_tokenguard_lease_settle(ctx, usd, input, output);
        return;
    }

    n = ngx_http_tokenguard_scopes(ctx, sc);

    for (i = 0; i < n; i++) {
        ngx_http_tokenguard_settle_args(&a, ctx, &sc[i], tmcf, usd, input,
                                        output, 1);
        ngx_http_tokenguard_write_args(TG_SCRIPT_SETTLE, &a);
        ngx_http_tokenguard_ledger_index(sc[i].scope, sc[i].name);
    }
}


/* a refusal before the ledger ("denied"): counted for the user */
void
ngx_http_tokenguard_ledger_count(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, const char *field)
{
    tg_command_t                      a;
    ngx_http_tokenguard_scope_t       sc;
    ngx_http_tokenguard_main_conf_t  *tmcf;

    if (ngx_http_tokenguard_scope(&sc, TG_SCOPE_USER, &ctx->user) != NGX_OK)
    {
        return;
    }

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tokenguard_module);

    if (ctx->now == 0) {
        ctx->now = ngx_time();
    }

    ngx_http_tokenguard_args_init(&a, TG_SCRIPT_COUNT, 2);
    ngx_http_tokenguard_arg_periods(&a, &sc, ctx->now);
    ngx_http_tokenguard_arg(&a, (u_char *) field, ngx_strlen(field));
    ngx_http_tokenguard_arg_int(&a, tmcf->retention_month);
    ngx_http_tokenguard_arg_int(&a, tmcf->retention_day);
    ngx_http_tokenguard_write_args(TG_SCRIPT_COUNT, &a);

    ngx_http_tokenguard_ledger_index(sc.scope, sc.name);
}


/* ---- the budget>= read ---- */


static void
ngx_http_tokenguard_status_handler(ngx_http_tokenguard_redis_op_t *op,
    redisReply *reply)
{
    ngx_http_tokenguard_ctx_t  *ctx = op->data;

    if (ctx == NULL) {
        return;
    }

    ctx->ops[0] = NULL;
    ctx->waiting = 0;

    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        ctx->budget_pct = (int) ngx_min(reply->integer, 1000000);

    } else {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "tokenguard: redis refused the budget read: %s",
                          reply->str);
        }

        ctx->budget_pct = -1;
    }

    ngx_http_tokenguard_resume(ctx);
}


/* NGX_OK: wait for the reply; NGX_DECLINED: the store is away, go on */
ngx_int_t
ngx_http_tokenguard_ledger_status(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    tg_command_t                      a;
    ngx_http_tokenguard_scope_t       sc;
    ngx_http_tokenguard_redis_op_t   *op;
    ngx_http_tokenguard_loc_conf_t   *tlcf;

    ctx->budget_pct = -1;

    if (ngx_http_tokenguard_scope(&sc, TG_SCOPE_USER, &ctx->user) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);

    ngx_http_tokenguard_args_init(&a, TG_SCRIPT_STATUS, 3);
    ngx_http_tokenguard_arg_periods(&a, &sc, ctx->now);
    ngx_http_tokenguard_arg_key(&a, &sc, "limits");
    ngx_http_tokenguard_arg_int(&a, tlcf->user_caps[0]);
    ngx_http_tokenguard_arg_int(&a, tlcf->user_caps[1]);

    op = ngx_http_tokenguard_redis_op(TG_SCRIPT_STATUS, &a, 0,
                                      ngx_http_tokenguard_status_handler,
                                      ctx);
    if (op == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_tokenguard_redis_send(op) != NGX_OK) {
        ngx_http_tokenguard_redis_free(op);
        return NGX_DECLINED;
    }

    ctx->ops[0] = op;
    ctx->waiting = 1;

    return NGX_OK;
}


/* ---- the reservation ---- */


static void
ngx_http_tokenguard_release_orphan(ngx_http_tokenguard_redis_op_t *op)
{
    ngx_http_tokenguard_reserve_payload_t  *pl;

    pl = (ngx_http_tokenguard_reserve_payload_t *) op->payload;

    ngx_http_tokenguard_write(ngx_http_tokenguard_redis_op_raw(
                                  TG_SCRIPT_SETTLE, pl->release,
                                  pl->release_len,
                                  ngx_http_tokenguard_write_handler, NULL));
}


void
ngx_http_tokenguard_ledger_reserve_done(ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_uint_t                       refused;
    ngx_http_request_t              *r;
    ngx_http_tokenguard_loc_conf_t  *tlcf;

    r = ctx->request;
    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);

    refused = ctx->cap_field[0] != '\0';

    if (!ctx->store_failed && !refused) {
        ctx->decision.data = (u_char *) "allow";
        ctx->decision.len = sizeof("allow") - 1;
        ctx->state = NGX_HTTP_TOKENGUARD_DONE;
        return;
    }

    /* undo the half that was admitted: the request does not go */
    if (ctx->reserved_user || ctx->reserved_team) {
        ngx_http_tokenguard_ledger_release(r, ctx);
    }

    if (refused) {
        ngx_http_tokenguard_refuse_budget(r, ctx);
        return;
    }

    if (tlcf->on_store_error == NGX_HTTP_TOKENGUARD_STORE_OPEN) {
        ctx->open = 1;
        ctx->decision.data = (u_char *) "open";
        ctx->decision.len = sizeof("open") - 1;
        ctx->state = NGX_HTTP_TOKENGUARD_DONE;
        return;
    }

    ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_STORE,
                               "the budget store is unavailable, so this"
                               " request cannot be checked against your"
                               " budget; try again in a moment");
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

        ctx->store_failed = 1;
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
            ctx->reserved_user = 1;
        } else {
            ctx->reserved_team = 1;
        }

        e = reply->element[1];

        if (e->type == REDIS_REPLY_INTEGER && e->integer >= 0
            && (ctx->remaining_usd < 0 || e->integer < ctx->remaining_usd))
        {
            ctx->remaining_usd = e->integer;
        }

        goto done;
    }

    if (ctx == NULL) {
        return;
    }

    if (reply->elements >= 4 && ctx->cap_field[0] == '\0'
        && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        ngx_cpystrn((u_char *) ctx->cap_field,
                    (u_char *) reply->element[1]->str,
                    sizeof(ctx->cap_field));
        ctx->cap_limit = reply->element[2]->integer;
        ctx->cap_used = reply->element[3]->integer;
        ctx->refused_scope = pl->index;
    }

done:

    ctx->ops[pl->index] = NULL;

    if (--ctx->waiting != 0) {
        return;
    }

    if (pl->index == 0 && ctx->reserved_user && ctx->cap_field[0] == '\0'
        && ngx_http_tokenguard_reserve_send(ctx, 1) == NGX_OK)
    {
        /* the user admitted: now the team */
        return;
    }

    ngx_http_tokenguard_ledger_reserve_done(ctx);
    ngx_http_tokenguard_resume(ctx);
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

    ngx_http_tokenguard_args_init(&a, TG_SCRIPT_RESERVE, 5);
    ngx_http_tokenguard_arg_periods(&a, sc, ctx->now);
    ngx_http_tokenguard_arg_key(&a, sc, "limits");
    ngx_http_tokenguard_arg_key(&a, sc, "resv");
    ngx_http_tokenguard_arg_key(&a, sc, "resv:exp");

    ngx_http_tokenguard_arg_int(&a, (int64_t) ngx_time() * 1000);
    ngx_http_tokenguard_arg_int(&a, tlcf->reservation_ttl);
    ngx_http_tokenguard_arg(&a, ctx->id, TG_ID_LEN);
    ngx_http_tokenguard_arg_int(&a, ctx->sandbox);
    ngx_http_tokenguard_arg_int(&a, ctx->reserve_usd);
    ngx_http_tokenguard_arg_int(&a, ctx->reserve_tokens);

    for (i = 0; i < NGX_HTTP_TOKENGUARD_CAPS; i++) {
        ngx_http_tokenguard_arg_int(&a, caps[i]);
    }

    ngx_http_tokenguard_arg_int(&a, index == 0 ? tlcf->sandbox_caps[0] : -1);
    ngx_http_tokenguard_arg_int(&a, index == 0 ? tlcf->sandbox_caps[1] : -1);
    ngx_http_tokenguard_arg_int(&a, tmcf->retention_month);
    ngx_http_tokenguard_arg_int(&a, tmcf->retention_day);

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

    if (op == NULL || ngx_http_tokenguard_redis_send(op) != NGX_OK) {
        if (op) {
            ngx_http_tokenguard_redis_free(op);
        }

        ctx->store_failed = 1;
        return NGX_ERROR;
    }

    ctx->ops[i] = op;
    ctx->waiting++;

    return NGX_OK;
}


/*
 * NGX_OK: waiting for the replies (ctx->state is WAIT_STORE); otherwise
 * ctx->state says what was decided without the store.
 */
ngx_int_t
ngx_http_tokenguard_ledger_reserve(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    int64_t                           output;
    ngx_http_tokenguard_loc_conf_t   *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);

    output = ctx->rq.max_output >= 0 ? ctx->rq.max_output
                                     : tlcf->max_tokens_default;

    /* both may be up to 1e12: saturate rather than wrap to a negative */
    if (ctx->rq.choices > 1 && output > TG_COST_MAX / ctx->rq.choices) {
        output = TG_COST_MAX;

    } else {
        output *= ctx->rq.choices;
    }

    output = ngx_min(output, TG_COST_MAX - ctx->rq.prompt_tokens);

    ctx->reserve_usd = tg_price_reserve(ctx->price, ctx->rq.prompt_tokens,
                                        output, ngx_time());
    ctx->reserve_tokens = ctx->rq.prompt_tokens + output;
    ctx->remaining_usd = -1;

    /*
     * 128 random bits: an id another instance, worker or restart also
     * made would have its settle dropped as a replay (tokens for free)
     */
    if (tg_id_new((char *) ctx->id) != 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                      "tokenguard: no random bytes for a reservation id");
        ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_STORE,
                                   "the budget store cannot take this"
                                   " request now; try again in a moment");
        return NGX_DECLINED;
    }

    if (ngx_http_tokenguard_lease_reserve(r, ctx) != NGX_DECLINED) {
        return ctx->state == NGX_HTTP_TOKENGUARD_WAIT_STORE ? NGX_OK
                                                            : NGX_DECLINED;
    }

    /*
     * The team is asked only once the user has admitted (one more round
     * trip): a request its user refuses must not hold, even for a round
     * trip, team headroom that another user's request fits in.
     */
    if (ngx_http_tokenguard_reserve_send(ctx, 0) == NGX_OK) {
        ctx->state = NGX_HTTP_TOKENGUARD_WAIT_STORE;
        return NGX_OK;
    }

    ngx_http_tokenguard_ledger_reserve_done(ctx);

    return NGX_DECLINED;
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

    if (ctx->leased) {
        ngx_http_tokenguard_lease_release(ctx);
        ctx->reserved_user = 0;
        ctx->reserved_team = 0;
        return;
    }

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tokenguard_module);

    n = ngx_http_tokenguard_scopes(ctx, sc);

    for (i = 0; i < n; i++) {
        if ((i == 0 && !ctx->reserved_user) || (i == 1 && !ctx->reserved_team))
        {
            continue;
        }

        ngx_http_tokenguard_settle_args(&a, ctx, &sc[i], tmcf, 0, 0, 0, 0);
        ngx_http_tokenguard_write_args(TG_SCRIPT_SETTLE, &a);
    }

    ctx->reserved_user = 0;
    ctx->reserved_team = 0;
}


/* the request is going away: replies still owed find no request */
void
ngx_http_tokenguard_ledger_detach(ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_uint_t  i;

    ngx_http_tokenguard_lease_detach(ctx);

    for (i = 0; i < 2; i++) {
        if (ctx->ops[i]) {
            ctx->ops[i]->data = NULL;
            ctx->ops[i] = NULL;
        }
    }
}


/* ---- the budget refusal ---- */


void
ngx_http_tokenguard_refuse_budget(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    u_char      *p, reset[32], used[64], need[32];
    ngx_tm_t     tm;
    ngx_str_t   *who;
    ngx_uint_t   day;
    const char  *kind;

    day = ngx_strstr(ctx->cap_field, "_day") != NULL;

    ctx->retry_after = day ? tg_period_day_reset(ctx->now)
                           : tg_period_month_reset(ctx->now);

    ngx_gmtime(ctx->now + ctx->retry_after, &tm);

    /* the numbers come from Redis: bounded, whatever they are */
    p = ngx_slprintf(reset, reset + sizeof(reset) - 1,
                     "%4d-%02d-%02d 00:00 UTC",
                     tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday);
    *p = '\0';

    who = ctx->refused_scope ? &ctx->team_shown : &ctx->user_shown;

    if (ngx_strstr(ctx->cap_field, "usd")) {
        kind = "USD";
        p = ngx_slprintf(used, used + sizeof(used) - 1,
                         "$%L.%02L of the $%L.%02L",
                         ctx->cap_used / 1000000,
                         ctx->cap_used % 1000000 / 10000,
                         ctx->cap_limit / 1000000,
                         ctx->cap_limit % 1000000 / 10000);
        *p = '\0';
        p = ngx_slprintf(need, need + sizeof(need) - 1, "$%L.%06L",
                         ctx->reserve_usd / 1000000,
                         ctx->reserve_usd % 1000000);

    } else if (ngx_strstr(ctx->cap_field, "tokens")) {
        kind = "token";
        p = ngx_slprintf(used, used + sizeof(used) - 1, "%L of the %L",
                         ctx->cap_used, ctx->cap_limit);
        *p = '\0';
        p = ngx_slprintf(need, need + sizeof(need) - 1, "%L tokens",
                         ctx->reserve_tokens);

    } else {
        kind = "request";
        p = ngx_slprintf(used, used + sizeof(used) - 1, "%L of the %L",
                         ctx->cap_used, ctx->cap_limit);
        *p = '\0';
        p = ngx_cpystrn(need, (u_char *) "one more request", sizeof(need));
    }

    *p = '\0';

    if (ngx_strncmp(ctx->cap_field, "sandbox", 7) == 0) {
        if (ctx->cap_limit == 0 && ctx->cap_used == 0) {
            ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_SANDBOX,
                "sandbox requests need an experiment allowance, and user"
                " \"%V\" has none here; send the request without the"
                " sandbox mark, or ask your platform team for one", who);
            ctx->retry_after = 0;
            return;
        }

        ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_SANDBOX,
            "user \"%V\" has used %s %s sandbox allowance, and this"
            " request could cost up to %s; the allowance resets %s (in"
            " %T seconds); ask your platform team for a larger experiment"
            " budget", who, used, day ? "daily" : "monthly", need, reset,
            ctx->retry_after);
        return;
    }

    ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_BUDGET,
        "%s \"%V\" has used %s %s %s cap (counting requests in flight),"
        " and this request could take up to %s; the cap resets %s (in %T"
        " seconds); use a cheaper model, send experiments as sandbox"
        " requests, or ask for a higher cap",
        ctx->refused_scope ? "team" : "user", who, used,
        day ? "daily" : "monthly", kind, need, reset, ctx->retry_after);
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
