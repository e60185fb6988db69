/*
 * $tokenguard_* variables, for log_format and map.  A variable whose
 * value is not known (yet) for the request is empty ("not found").
 */

#include "ngx_http_tokenguard_module.h"


static ngx_int_t ngx_http_tokenguard_str_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_tokenguard_sandbox_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_tokenguard_budget_pct_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_tokenguard_prompt_tokens_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_tokenguard_remaining_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_tokenguard_settled_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_tokenguard_genai_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_tokenguard_request_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_tokenguard_response_model_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_tokenguard_vars[] = {

    { ngx_string("tokenguard_user"), NULL,
      ngx_http_tokenguard_str_variable,
      offsetof(ngx_http_tokenguard_ctx_t, caller.user),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_team"), NULL,
      ngx_http_tokenguard_str_variable,
      offsetof(ngx_http_tokenguard_ctx_t, caller.team),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_model_requested"), NULL,
      ngx_http_tokenguard_str_variable,
      offsetof(ngx_http_tokenguard_ctx_t, in.model_requested),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_model"), NULL,
      ngx_http_tokenguard_str_variable,
      offsetof(ngx_http_tokenguard_ctx_t, routing.model),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_route"), NULL,
      ngx_http_tokenguard_str_variable,
      offsetof(ngx_http_tokenguard_ctx_t, routing.tag),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_category"), NULL,
      ngx_http_tokenguard_str_variable,
      offsetof(ngx_http_tokenguard_ctx_t, routing.category),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_decision"), NULL,
      ngx_http_tokenguard_str_variable,
      offsetof(ngx_http_tokenguard_ctx_t, decision),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_sandbox"), NULL,
      ngx_http_tokenguard_sandbox_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_budget_pct"), NULL,
      ngx_http_tokenguard_budget_pct_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_prompt_tokens"), NULL,
      ngx_http_tokenguard_prompt_tokens_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /* OpenTelemetry GenAI names of the call (docs/operations.md) */

    { ngx_string("tokenguard_provider"), NULL,
      ngx_http_tokenguard_genai_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_operation"), NULL,
      ngx_http_tokenguard_genai_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_max_tokens"), NULL,
      ngx_http_tokenguard_request_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_stream"), NULL,
      ngx_http_tokenguard_request_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /* known once the response is counted and settled (log phase) */

    { ngx_string("tokenguard_completion_tokens"), NULL,
      ngx_http_tokenguard_settled_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_cost_usd"), NULL,
      ngx_http_tokenguard_settled_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_cache_read_tokens"), NULL,
      ngx_http_tokenguard_settled_variable, 2,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_cache_write_tokens"), NULL,
      ngx_http_tokenguard_settled_variable, 3,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_response_model"), NULL,
      ngx_http_tokenguard_response_model_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_usage_source"), NULL,
      ngx_http_tokenguard_str_variable,
      offsetof(ngx_http_tokenguard_ctx_t, resp.usage_source),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tokenguard_remaining_usd"), NULL,
      ngx_http_tokenguard_remaining_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/* sets a found value */
static ngx_int_t
ngx_http_tokenguard_var(ngx_http_variable_value_t *v, u_char *data,
    size_t len)
{
    v->len = len;
    v->data = data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_tokenguard_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_tokenguard_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tokenguard_str_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                  *s;
    ngx_http_tokenguard_ctx_t  *ctx;

    ctx = ngx_http_tokenguard_get_ctx(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((u_char *) ctx + data);

    return ngx_http_tokenguard_var(v, s->data, s->len);
}


static ngx_int_t
ngx_http_tokenguard_sandbox_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                     *flag;
    ngx_http_tokenguard_ctx_t  *ctx;

    ctx = ngx_http_tokenguard_get_ctx(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    flag = (u_char *) (ctx->caller.sandbox ? "1" : "0");

    return ngx_http_tokenguard_var(v, flag, 1);
}


/*
 * The share of the tightest cap that applies (any scope, unit, period),
 * as tokenguard_budget_warn reads it; not found when it was not read
 * (neither budget_warn nor budget>= asks) or there is no cap
 */

static ngx_int_t
ngx_http_tokenguard_budget_pct_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                     *p, *last;
    ngx_http_tokenguard_ctx_t  *ctx;

    ctx = ngx_http_tokenguard_get_ctx(r);

    if (ctx == NULL || ctx->budget.warn_pct < 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_http_tokenguard_format_int(p, ctx->budget.warn_pct);

    return ngx_http_tokenguard_var(v, p, last - p);
}


/* the estimate, until the settle replaces it with what was counted */

static ngx_int_t
ngx_http_tokenguard_prompt_tokens_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                     *p, *last;
    ngx_http_tokenguard_ctx_t  *ctx;

    ctx = ngx_http_tokenguard_get_ctx(r);

    if (ctx == NULL || !ctx->in.inspected) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_http_tokenguard_format_int(p,
               ctx->settled && ctx->resp.usage_source.len
               ? ctx->resp.usage.input : ctx->in.rq.prompt_tokens);

    return ngx_http_tokenguard_var(v, p, last - p);
}


/*
 * What settled: the completion tokens (data 0), the cost (1), the input
 * tokens read from (2) and written to (3) a prompt cache
 */

static ngx_int_t
ngx_http_tokenguard_settled_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                     *p, *last;
    tg_usage_t                 *u;
    ngx_http_tokenguard_ctx_t  *ctx;

    ctx = ngx_http_tokenguard_get_ctx(r);

    if (ctx == NULL || !ctx->settled || ctx->resp.usage_source.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN + 8);
    if (p == NULL) {
        return NGX_ERROR;
    }

    u = &ctx->resp.usage;

    switch (data) {
    case 1:
        last = ngx_http_tokenguard_format_usd(p, ctx->resp.cost_usd);
        break;
    case 2:
        last = ngx_http_tokenguard_format_int(p, u->cached);
        break;
    case 3:
        last = ngx_http_tokenguard_format_int(p, u->cache_write);
        break;
    default:
        last = ngx_http_tokenguard_format_int(p, u->output);
        break;
    }

    return ngx_http_tokenguard_var(v, p, last - p);
}


/* gen_ai.provider.name (data 0) and gen_ai.operation.name (1) */

static ngx_int_t
ngx_http_tokenguard_genai_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    const char                 *name;
    ngx_http_tokenguard_ctx_t  *ctx;

    ctx = ngx_http_tokenguard_get_ctx(r);

    name = NULL;

    if (ctx != NULL) {
        name = data ? tg_endpoint_genai_operation(&ctx->in.ep)
                    : tg_endpoint_genai_provider(&ctx->in.ep);
    }

    if (name == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_http_tokenguard_var(v, (u_char *) name, ngx_strlen(name));
}


/* the request's output limit (data 0; empty if none) and stream flag (1) */

static ngx_int_t
ngx_http_tokenguard_request_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                     *p, *last;
    ngx_http_tokenguard_ctx_t  *ctx;

    ctx = ngx_http_tokenguard_get_ctx(r);

    if (ctx == NULL || !ctx->in.inspected
        || (data == 0 && ctx->in.rq.max_output < 0))
    {
        v->not_found = 1;
        return NGX_OK;
    }

    if (data) {
        p = (u_char *) (ctx->in.rq.stream || ctx->in.ep.stream ? "1" : "0");
        return ngx_http_tokenguard_var(v, p, 1);
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_http_tokenguard_format_int(p, ctx->in.rq.max_output);

    return ngx_http_tokenguard_var(v, p, last - p);
}


/* the model the provider's response named (gen_ai.response.model) */

static ngx_int_t
ngx_http_tokenguard_response_model_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_tokenguard_ctx_t  *ctx;

    ctx = ngx_http_tokenguard_get_ctx(r);

    if (ctx == NULL || ctx->resp.usage.model[0] == '\0') {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_http_tokenguard_var(v, (u_char *) ctx->resp.usage.model,
                                   ngx_strlen(ctx->resp.usage.model));
}


/* the tightest USD cap's headroom after this request's reservation */

static ngx_int_t
ngx_http_tokenguard_remaining_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                     *p;
    ngx_http_tokenguard_ctx_t  *ctx;

    ctx = ngx_http_tokenguard_get_ctx(r);

    if (ctx == NULL || ctx->budget.remaining_usd < 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN + 8);
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_tokenguard_var(v, p,
               ngx_http_tokenguard_format_usd(p, ctx->budget.remaining_usd)
               - p);
}
