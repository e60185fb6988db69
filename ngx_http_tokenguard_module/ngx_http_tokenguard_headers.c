/*
 * The X-TokenGuard-* headers are the gateway's own.  On responses they
 * tell the caller what the gateway did: X-TokenGuard-Model (the model
 * that served the request), X-TokenGuard-Route (the tag of the routing
 * rule, when one rewrote it), X-TokenGuard-Budget-Remaining.  On
 * requests, the client's own are dropped before anything is proxied.
 */

#include "ngx_http_tokenguard_module.h"
#include "tg_keys.h"


static ngx_uint_t ngx_http_tokenguard_own_header(ngx_table_elt_t *h);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


/*
 * Unlinks every X-TokenGuard-* header from r->headers_in.headers, so that
 * no client can send the provider, or anything behind the gateway, a
 * header that looks as if the gateway had set it.
 *
 * The other entries do not move: each run of them becomes a list part of
 * its own that points into the array it was parsed into (a part with
 * elts past the array's start), so every pointer into the list
 * (r->headers_in.host, .user_agent, .cookies ...) stays right.  Parts
 * are never left empty, except the first when nothing is left, because
 * the usual loop over a list reads the first element of each next part
 * unchecked.  nalloc becomes the size of the last run, so that a later
 * ngx_list_push() starts a new part instead of writing past an array
 * (lua-nginx-module's ngx.req.clear_header() edits the list the same
 * way).
 */

ngx_int_t
ngx_http_tokenguard_strip_headers(ngx_http_request_t *r)
{
    ngx_uint_t        i, start, found;
    ngx_list_t       *list;
    ngx_list_part_t  *part, *next, *tail, *run, first;
    ngx_table_elt_t  *h;

    list = &r->headers_in.headers;
    found = 0;

    for (part = &list->part; part && !found; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (ngx_http_tokenguard_own_header(&h[i])) {
                found = 1;
                break;
            }
        }
    }

    if (!found) {
        return NGX_OK;
    }

    first = list->part;     /* list->part is rewritten below */
    tail = NULL;

    for (part = &first; part; part = next) {
        next = part->next;
        h = part->elts;
        start = 0;

        for (i = 0; i <= part->nelts; i++) {

            if (i < part->nelts && !ngx_http_tokenguard_own_header(&h[i])) {
                continue;
            }

            if (i < part->nelts) {
                ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                               "tokenguard: request header \"%V\" dropped,"
                               " %uz bytes", &h[i].key, h[i].value.len);
            }

            if (i > start) {
                if (tail == NULL) {
                    run = &list->part;

                } else {
                    run = ngx_palloc(r->pool, sizeof(ngx_list_part_t));
                    if (run == NULL) {
                        return NGX_ERROR;
                    }

                    tail->next = run;
                }

                run->elts = &h[start];
                run->nelts = i - start;
                run->next = NULL;

                tail = run;
            }

            start = i + 1;
        }
    }

    if (tail == NULL) {
        /* the client sent nothing else */
        list->part.elts = first.elts;
        list->part.nelts = 0;
        list->part.next = NULL;
        list->last = &list->part;

        return NGX_OK;
    }

    list->last = tail;
    list->nalloc = tail->nelts;

    return NGX_OK;
}


/* "X-TokenGuard-..." in any case, or with "_" (underscores_in_headers) */

static ngx_uint_t
ngx_http_tokenguard_own_header(ngx_table_elt_t *h)
{
    u_char       c;
    ngx_uint_t   i;
    static char  prefix[] = "x-tokenguard-";

    if (h->key.len < sizeof(prefix) - 1) {
        return 0;
    }

    for (i = 0; i < sizeof(prefix) - 1; i++) {
        c = ngx_tolower(h->key.data[i]);

        if (c == '_') {
            c = '-';
        }

        if (c != (u_char) prefix[i]) {
            return 0;
        }
    }

    return 1;
}


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

        remaining.len = ngx_http_tokenguard_format_usd(remaining.data,
                                                 ctx->budget.remaining_usd)
                        - remaining.data;

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
