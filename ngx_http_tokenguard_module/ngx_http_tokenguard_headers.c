/*
 * The X-TokenGuard-* headers are the gateway's own.  On responses they
 * tell the caller what the gateway did: X-TokenGuard-Model (the model
 * that served the request), X-TokenGuard-Route (the tag of the routing
 * rule, when one rewrote it), X-TokenGuard-Budget-Remaining.  On
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


static ngx_int_t
ngx_http_tokenguard_header_filter(ngx_http_request_t *r)
{
    u_char                          *p;
    ngx_str_t                        remaining;
    ngx_http_tokenguard_ctx_t       *ctx;
    ngx_http_tokenguard_loc_conf_t  *tlcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);
    ctx = ngx_http_tokenguard_get_ctx(r);

    if (ctx != NULL) {
        ngx_http_tokenguard_usage_header(r, ctx);
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


ngx_int_t
ngx_http_tokenguard_headers_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_tokenguard_header_filter;

    return NGX_OK;
}
