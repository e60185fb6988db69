/*
 * The X-TokenGuard-* headers are the gateway's own.  On responses they
 * tell the caller what the gateway did: X-TokenGuard-Model (the model
 * that served the request), X-TokenGuard-Route (the tag of the routing
 * rule, when one rewrote it), X-TokenGuard-Budget-Remaining, and
 * X-TokenGuard-Budget-Warning past a tokenguard_budget_warn threshold.  On
 * requests, the client's own are dropped (ngx_http_tokenguard_strip.c).
 */

#include "ngx_http_tokenguard_module.h"
#include "tg_keys.h"


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


/*
 * The values are checked where they are made (model names, tags); a byte
 * outside printable ASCII is still never sent as it is: CR LF would split
 * the response.
 */

static ngx_int_t
ngx_http_tokenguard_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    u_char           *p;
    ngx_uint_t        i;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    for (i = 0; i < value->len; i++) {
        if (value->data[i] < 0x20 || value->data[i] > 0x7e) {
            break;
        }
    }

    if (i == value->len) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, 3 * value->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h->value.data = p;
    h->value.len = tg_key_escape((char *) value->data, value->len,
                                 (char *) p);

    return NGX_OK;
}


/*
 * The highest tokenguard_budget_warn threshold the share passed (of the
 * tightest cap that applies: user or team, usd, tokens or requests, day
 * or month, or the sandbox allowance), counted once per response; 0:
 * none (thresholds are 1 to 100).  The warning says which cap, what is
 * left of it in its unit and when it resets.
 */

static ngx_int_t
ngx_http_tokenguard_warning(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx,
    ngx_str_t *value)
{
    u_char      *p;
    time_t       reset;
    int64_t      left;
    ngx_tm_t     tm;
    ngx_int_t    threshold;
    ngx_uint_t   i, *pct, cap, day, usd;

    static const char  *caps[] = {
        "usd month", "usd day", "tokens month", "tokens day",
        "requests month", "requests day", "usd month", "usd day"
    };

    if (tlcf->budget_warn == NULL || ctx->budget.warn_pct < 0) {
        return 0;
    }

    threshold = 0;
    pct = tlcf->budget_warn->elts;

    for (i = 0; i < tlcf->budget_warn->nelts; i++) {
        if ((ngx_uint_t) ctx->budget.warn_pct >= pct[i]) {
            threshold = pct[i];
        }
    }

    if (threshold == 0) {
        return 0;
    }

    ngx_http_tokenguard_counters_warning(threshold);

    value->data = ngx_pnalloc(r->pool, 200);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    cap = ctx->budget.warn_cap;
    day = cap % 2;
    usd = cap < 2 || cap >= 6;

    reset = ctx->now + (day ? tg_period_day_reset(ctx->now)
                            : tg_period_month_reset(ctx->now));
    ngx_gmtime(reset, &tm);

    p = ngx_sprintf(value->data, "%d%%; %s %s: ", ctx->budget.warn_pct,
                    cap >= 6 ? "sandbox"
                             : ctx->budget.warn_team ? "team" : "user",
                    caps[cap]);

    left = ngx_max(ctx->budget.warn_limit - ctx->budget.warn_used, 0);

    if (usd) {
        p = ngx_http_tokenguard_format_money(p, left);
        p = ngx_cpymem(p, " of ", 4);
        p = ngx_http_tokenguard_format_money(p, ctx->budget.warn_limit);

    } else {
        p = ngx_sprintf(p, "%L of %L", left, ctx->budget.warn_limit);
    }

    p = ngx_sprintf(p, " left; resets %4d-%02d-%02dT00:00:00Z",
                    tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday);
    value->len = p - value->data;

    return threshold;
}


static ngx_int_t
ngx_http_tokenguard_header_filter(ngx_http_request_t *r)
{
    u_char                          *p;
    ngx_int_t                        warned;
    ngx_str_t                        remaining, warning;
    ngx_http_tokenguard_ctx_t       *ctx;
    ngx_http_tokenguard_loc_conf_t  *tlcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);
    ctx = ngx_http_tokenguard_get_ctx(r);

    warned = 0;

    if (ctx != NULL) {
        ngx_http_tokenguard_usage_header(r, ctx);

        warned = ngx_http_tokenguard_warning(r, tlcf, ctx, &warning);
        if (warned == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    if (tlcf->headers && warned > 0
        && ngx_http_tokenguard_add_header(r, "X-TokenGuard-Budget-Warning",
                                          &warning)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!tlcf->headers || ctx == NULL || ctx->routing.model.len == 0) {
        return ngx_http_next_header_filter(r);
    }

    if (ctx->budget.remaining_usd >= 0) {
        remaining.data = ngx_pnalloc(r->pool, NGX_INT64_LEN + 8);
        if (remaining.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_http_tokenguard_format_usd(remaining.data,
                                           ctx->budget.remaining_usd);
        remaining.len = p - remaining.data;

        if (ngx_http_tokenguard_add_header(r, "X-TokenGuard-Budget-Remaining",
                                           &remaining)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_tokenguard_add_header(r, "X-TokenGuard-Model",
                                       &ctx->routing.model)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->routing.rerouted
        && ngx_http_tokenguard_add_header(r, "X-TokenGuard-Route",
                                          &ctx->routing.tag)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


/* tokenguard_budget_warn PERCENT [PERCENT ...] */

char *
ngx_http_tokenguard_budget_warn(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tokenguard_loc_conf_t *tlcf = conf;

    ngx_int_t                         n;
    ngx_str_t                        *value, s;
    ngx_uint_t                        i, *pct;
    ngx_http_tokenguard_main_conf_t  *tmcf;

    if (tlcf->budget_warn != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    tlcf->budget_warn = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                         sizeof(ngx_uint_t));
    if (tlcf->budget_warn == NULL) {
        return NGX_CONF_ERROR;
    }

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tokenguard_module);
    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        s = value[i];

        if (s.len && s.data[s.len - 1] == '%') {
            s.len--;
        }

        n = ngx_atoi(s.data, s.len);

        pct = tlcf->budget_warn->nelts ? tlcf->budget_warn->elts : NULL;

        if (n < 1 || n > 100
            || (pct && (ngx_uint_t) n <= pct[tlcf->budget_warn->nelts - 1]))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid percentage \"%V\" in \"%V\""
                               " directive, it must be from 1 to 100,"
                               " each above the one before",
                               &value[i], &value[0]);
            return NGX_CONF_ERROR;
        }

        pct = ngx_array_push(tlcf->budget_warn);
        if (pct == NULL) {
            return NGX_CONF_ERROR;
        }

        *pct = n;
        tmcf->warn_set[n] = 1;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_tokenguard_headers_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_tokenguard_header_filter;

    return NGX_OK;
}
