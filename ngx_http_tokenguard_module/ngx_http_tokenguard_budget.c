/*
 * The budget behind one interface: read how much of it is used, reserve
 * a request's worst case against its scopes' caps before it goes
 * upstream, settle what it really used, release what it did not.
 *
 * Two implementations keep it.  With tokenguard_lease on, a request is
 * admitted from a slice of the scope's headroom this worker leased
 * (ngx_http_tokenguard_lease.c); a request no slice can take (a sandbox
 * request, a scope whose slice is held under other caps) and every
 * request with leases off reserves with a script call of its own
 * (ngx_http_tokenguard_ledger.c).  Both answer the same way.  A dry run
 * (tokenguard_dry_run) uses scripts only: a refusal it lets through must
 * be the script's exact answer, and nothing of it enters a slice.
 *
 * An answer that needs the store comes later, through the continuation
 * the caller passed (the call returns NGX_AGAIN); one known at once is
 * returned (NGX_OK).  The answer is a result in ctx, never a refusal:
 * reserved_user/reserved_team, or the cap that refused (cap_field,
 * cap_limit, cap_used, refused_scope), or store_failed.  The pipeline
 * turns it into a decision.
 */

#include "ngx_http_tokenguard_module.h"


/*
 * The budget>= read: NGX_AGAIN, done(ctx) is called with ctx->budget.pct;
 * NGX_OK, ctx->budget.pct is known now (-1: unknown, the store is away).
 */
ngx_int_t
ngx_http_tokenguard_budget_status(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, ngx_http_tokenguard_done_pt done)
{
    ngx_http_tokenguard_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);

    ctx->budget.pct = -1;
    ctx->budget.warn_pct = -1;

    if (!tlcf->dry_run && ngx_http_tokenguard_lease_status(r, ctx) == NGX_OK)
    {
        return NGX_OK;
    }

    ctx->budget.done = done;

    return ngx_http_tokenguard_ledger_status(r, ctx);
}


/*
 * Prices the worst case and reserves it.  NGX_AGAIN: done(ctx) is called
 * with the result; NGX_OK: the result is known now; NGX_ERROR: nothing
 * was reserved and nothing can be (no reservation id).
 */
ngx_int_t
ngx_http_tokenguard_budget_reserve(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, ngx_http_tokenguard_done_pt done)
{
    int64_t                          input, output;
    ngx_int_t                        rc;
    ngx_http_tokenguard_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);

    output = ctx->in.rq.max_output >= 0 ? ctx->in.rq.max_output
                                        : tlcf->max_tokens_default;

    /* both may be up to 1e12: saturate rather than wrap to a negative */
    if (ctx->in.rq.choices > 1 && output > TG_COST_MAX / ctx->in.rq.choices) {
        output = TG_COST_MAX;

    } else {
        output *= ctx->in.rq.choices;
    }

    /*
     * input the provider keeps (an earlier response, a conversation, a
     * cache) is billed as input but is not in the body: without this, a
     * caller near a cap could chain requests whose worst case is a few
     * tokens and whose bill is the whole conversation
     */
    input = ctx->in.rq.prompt_tokens;

    if (ctx->in.rq.stored) {
        input = ngx_min(input + tlcf->stored_input_tokens, TG_COST_MAX);
    }

    output = ngx_min(output, TG_COST_MAX - input);

    ctx->budget.reserve_usd = tg_price_reserve(ctx->price, input, output,
                                               ngx_time());
    ctx->budget.reserve_tokens = input + output;
    ctx->budget.reserve_input = input;
    ctx->budget.remaining_usd = -1;

    /*
     * 128 random bits: an id another instance, worker or restart also
     * made would have its settle dropped as a replay (tokens for free)
     */
    if (tg_id_new((char *) ctx->budget.id) != 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                      "tokenguard: no random bytes for a reservation id");
        return NGX_ERROR;
    }

    ctx->budget.done = done;

    rc = tlcf->dry_run ? NGX_DECLINED
                       : ngx_http_tokenguard_lease_reserve(r, ctx);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_tokenguard_ledger_reserve(r, ctx);
}


/* what a request used, priced: the worst case held for it comes back */
void
ngx_http_tokenguard_budget_settle(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, int64_t usd, int64_t input,
    int64_t output)
{
    if (ctx->lease.leased) {
        ngx_http_tokenguard_lease_settle(ctx, usd, input, output);
        return;
    }

    ngx_http_tokenguard_ledger_settle(r, ctx, usd, input, output);
}


/* gives back whatever the request reserved, spending nothing */
void
ngx_http_tokenguard_budget_release(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    if (ctx->lease.leased) {
        ngx_http_tokenguard_lease_release(ctx);

    } else {
        ngx_http_tokenguard_ledger_release(r, ctx);
    }

    ctx->budget.reserved_user = 0;
    ctx->budget.reserved_team = 0;
}


/*
 * A refusal before the budget ("denied"): counted for the user; a dry
 * run's would-be refusal ("dry_denied", and by kind): for user and team.
 */
void
ngx_http_tokenguard_budget_count(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, const char *field, const char *kind)
{
    ngx_http_tokenguard_ledger_count(r, ctx, field, kind);
}


/* the request is going away: answers still owed find no request */
void
ngx_http_tokenguard_budget_detach(ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_http_tokenguard_lease_detach(ctx);
    ngx_http_tokenguard_ledger_detach(ctx);
}
