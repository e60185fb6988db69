/*
 * Refusals: decided anywhere on the request path, sent once by the phase
 * handler, in the error shape of the caller's provider so that its SDK
 * shows the message as it would show the provider's own.
 */

#include "ngx_http_tokenguard_module.h"
#include "tg_keys.h"


#define NGX_HTTP_TOKENGUARD_MESSAGE_MAX  1024


/*
 * tokenguard_dry_run: the refusals a rollout wants to see before it
 * enforces them are recorded, and the request goes on, charged as any.
 * A request that cannot be metered (an unreadable body, an endpoint not
 * known, a model without a price) or checked (the store away: as
 * tokenguard_on_store_error says) is refused as without a dry run: a
 * call that spends is never let through unmetered.
 */
static ngx_uint_t
ngx_http_tokenguard_would_refuse(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, tg_refusal_e refusal)
{
    ngx_uint_t                       i;
    ngx_http_tokenguard_loc_conf_t  *tlcf;

    static const struct {
        tg_refusal_e                 refusal;
        ngx_str_t                    decision;
        const char                  *kind;
    } dry[] = {
        { TG_REFUSE_IDENTITY, ngx_string("deny_identity_dry_run"),
          "identity" },
        { TG_REFUSE_MODEL, ngx_string("deny_policy_dry_run"), "policy" },
        { TG_REFUSE_PROMPT, ngx_string("deny_policy_dry_run"), "policy" },
        { TG_REFUSE_BUDGET, ngx_string("deny_budget_dry_run"), "budget" },
        { TG_REFUSE_SANDBOX, ngx_string("deny_sandbox_dry_run"), "sandbox" }
    };

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);

    if (!tlcf->dry_run || ctx->enforce) {
        return 0;
    }

    for (i = 0; i < sizeof(dry) / sizeof(dry[0]); i++) {
        if (dry[i].refusal == refusal) {
            break;
        }
    }

    if (i == sizeof(dry) / sizeof(dry[0])) {
        return 0;
    }

    /* the first refusal is the one enforcing would have sent */
    if (ctx->dry_kind == NULL) {
        ctx->dry = dry[i].decision;
        ctx->dry_kind = dry[i].kind;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "tokenguard: dry run: would refuse %s for user"
                      " \"%V\"", tg_refusal_info(refusal)->code,
                      &ctx->caller.user_shown);
    }

    return 1;
}


void
ngx_http_tokenguard_refuse(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, tg_refusal_e refusal,
    const char *fmt, ...)
{
    u_char                   *p;
    va_list                   args;
    const tg_refusal_info_t  *info;

    if (ngx_http_tokenguard_would_refuse(r, ctx, refusal)) {
        return;
    }

    /* refused after all: a dry run's earlier "would" is not what happened */
    ngx_str_null(&ctx->dry);
    ctx->dry_kind = NULL;

    info = tg_refusal_info(refusal);

    ctx->refusal = refusal;
    ctx->state = NGX_HTTP_TOKENGUARD_REFUSE;
    ctx->decision.data = (u_char *) info->decision;
    ctx->decision.len = ngx_strlen(info->decision);

    p = ngx_pnalloc(r->pool, NGX_HTTP_TOKENGUARD_MESSAGE_MAX);
    if (p == NULL) {
        ngx_str_set(&ctx->message, "refused by the AI gateway");
        return;
    }

    ctx->message.data = p;

    p = ngx_cpymem(p, "tokenguard: ", sizeof("tokenguard: ") - 1);

    va_start(args, fmt);
    p = ngx_vslprintf(p, ctx->message.data + NGX_HTTP_TOKENGUARD_MESSAGE_MAX
                         - 1, fmt, args);
    va_end(args);

    *p = '\0';
    ctx->message.len = p - ctx->message.data;
}


ngx_int_t
ngx_http_tokenguard_send_refusal(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    char                     *json;
    size_t                    len;
    ngx_int_t                 rc;
    ngx_buf_t                *b;
    ngx_chain_t               out;
    ngx_table_elt_t          *h;
    const tg_refusal_info_t  *info;

    info = tg_refusal_info(ctx->refusal);

    /* from here on the request is answered: the handler must not resend */
    ctx->state = NGX_HTTP_TOKENGUARD_DONE;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "tokenguard: refused %s for user \"%V\"",
                  info->code, &ctx->caller.user_shown);

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json = tg_refusal_body(ctx->in.ep.provider, ctx->refusal,
                           (char *) ctx->message.data, &len);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        free(json);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->pos, json, len);
    b->last_buf = 1;
    b->last_in_chain = 1;
    free(json);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "X-TokenGuard-Code");
    h->value.data = (u_char *) info->code;
    h->value.len = ngx_strlen(info->code);

    if (ctx->retry_after > 0) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        h->value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (h->value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->value.len = ngx_sprintf(h->value.data, "%T", ctx->retry_after)
                       - h->value.data;
    }

    r->headers_out.status = info->status;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * The budget's "no" (ngx_http_tokenguard_budget.c) as the caller reads
 * it: which cap, how much of it is used, what this request needed, and
 * when the cap resets (Retry-After).
 */

void
ngx_http_tokenguard_refuse_budget(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    u_char      *p, reset[32], used[64], need[32];
    ngx_tm_t     tm;
    ngx_str_t   *who;
    ngx_uint_t   day;
    const char  *kind;

    day = ngx_strstr(ctx->budget.cap_field, "_day") != NULL;

    ctx->retry_after = day ? tg_period_day_reset(ctx->now)
                           : tg_period_month_reset(ctx->now);

    ngx_gmtime(ctx->now + ctx->retry_after, &tm);

    /* the numbers come from Redis: bounded, whatever they are */
    p = ngx_slprintf(reset, reset + sizeof(reset) - 1,
                     "%4d-%02d-%02d 00:00 UTC",
                     tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday);
    *p = '\0';

    who = ctx->budget.refused_scope ? &ctx->caller.team_shown
                                    : &ctx->caller.user_shown;

    if (ngx_strstr(ctx->budget.cap_field, "usd")) {
        kind = "USD";
        p = ngx_slprintf(used, used + sizeof(used) - 1,
                         "$%L.%02L of the $%L.%02L",
                         ctx->budget.cap_used / 1000000,
                         ctx->budget.cap_used % 1000000 / 10000,
                         ctx->budget.cap_limit / 1000000,
                         ctx->budget.cap_limit % 1000000 / 10000);
        *p = '\0';
        p = ngx_slprintf(need, need + sizeof(need) - 1, "$%L.%06L",
                         ctx->budget.reserve_usd / 1000000,
                         ctx->budget.reserve_usd % 1000000);

    } else if (ngx_strstr(ctx->budget.cap_field, "tokens")) {
        kind = "token";
        p = ngx_slprintf(used, used + sizeof(used) - 1, "%L of the %L",
                         ctx->budget.cap_used, ctx->budget.cap_limit);
        *p = '\0';
        p = ngx_slprintf(need, need + sizeof(need) - 1, "%L tokens",
                         ctx->budget.reserve_tokens);

    } else {
        kind = "request";
        p = ngx_slprintf(used, used + sizeof(used) - 1, "%L of the %L",
                         ctx->budget.cap_used, ctx->budget.cap_limit);
        *p = '\0';
        p = ngx_cpystrn(need, (u_char *) "one more request", sizeof(need));
    }

    *p = '\0';

    if (ngx_strncmp(ctx->budget.cap_field, "sandbox", 7) == 0) {
        if (ctx->budget.cap_limit == 0 && ctx->budget.cap_used == 0) {
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
        ctx->budget.refused_scope ? "team" : "user", who, used,
        day ? "daily" : "monthly", kind, need, reset, ctx->retry_after);
}
