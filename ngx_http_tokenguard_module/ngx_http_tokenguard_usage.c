/*
 * Response accounting: a body filter that watches the upstream's bytes
 * on their way to the client (never holding them back), finds the usage
 * the provider reports (a JSON body, or SSE events), and, at the end of
 * the request, settles the real cost once.
 *
 * A JSON body is kept whole up to NGX_HTTP_TOKENGUARD_KEEP_WHOLE; past
 * that only its tail, where every dialect puts its usage.  Events are
 * parsed as they pass; only those that mention usage are decoded.
 */

#include "ngx_http_tokenguard_module.h"
#include "tg_estimate.h"


#define NGX_HTTP_TOKENGUARD_KEEP_WHOLE  (1024 * 1024)
#define NGX_HTTP_TOKENGUARD_KEEP_TAIL   (256 * 1024)
#define NGX_HTTP_TOKENGUARD_SSE_MAX     (8 * 1024 * 1024)


static ngx_http_output_body_filter_pt  ngx_http_next_body_filter;


static void
ngx_http_tokenguard_usage_event(void *data, const char *event,
    size_t event_len, const char *payload, size_t len)
{
    ngx_http_tokenguard_ctx_t  *ctx = data;

    tg_usage_from_event(ctx->ep.api, payload, len, &ctx->usage);
}


/* keeps a JSON body, or once it is large, its last bytes */
static ngx_int_t
ngx_http_tokenguard_usage_keep(ngx_http_tokenguard_ctx_t *ctx, u_char *p,
    size_t n)
{
    u_char  *b;
    size_t   size, keep;

    if (ctx->kept_whole
        && ctx->kept_len + n > NGX_HTTP_TOKENGUARD_KEEP_WHOLE)
    {
        ctx->kept_whole = 0;
    }

    if (!ctx->kept_whole) {
        /* the tail: drop what falls out of the window */
        if (n >= NGX_HTTP_TOKENGUARD_KEEP_TAIL) {
            p += n - NGX_HTTP_TOKENGUARD_KEEP_TAIL;
            n = NGX_HTTP_TOKENGUARD_KEEP_TAIL;
            ctx->kept_len = 0;

        } else if (ctx->kept_len + n > NGX_HTTP_TOKENGUARD_KEEP_TAIL) {
            keep = NGX_HTTP_TOKENGUARD_KEEP_TAIL - n;
            ngx_memmove(ctx->kept, ctx->kept + ctx->kept_len - keep, keep);
            ctx->kept_len = keep;
        }
    }

    if (ctx->kept_len + n > ctx->kept_size) {
        size = ngx_max(ctx->kept_size * 2, 16384);

        while (size < ctx->kept_len + n) {
            size *= 2;
        }

        b = ngx_alloc(size, ngx_cycle->log);
        if (b == NULL) {
            return NGX_ERROR;
        }

        if (ctx->kept) {
            ngx_memcpy(b, ctx->kept, ctx->kept_len);
            ngx_free(ctx->kept);
        }

        ctx->kept = b;
        ctx->kept_size = size;
    }

    ngx_memcpy(ctx->kept + ctx->kept_len, p, n);
    ctx->kept_len += n;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tokenguard_usage_bytes(ngx_http_tokenguard_ctx_t *ctx, u_char *p,
    size_t n)
{
    ctx->relayed += n;

    if (ctx->count_failed) {
        /* only the bytes: the output will be estimated from them */
        return NGX_OK;
    }

    if (ctx->sse_on) {
        return tg_sse_feed(&ctx->sse, (char *) p, n,
                           ngx_http_tokenguard_usage_event, ctx) == 0
               ? NGX_OK : NGX_ERROR;
    }

    return ngx_http_tokenguard_usage_keep(ctx, p, n);
}


static ngx_int_t
ngx_http_tokenguard_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    off_t                       pos, size;
    ssize_t                     n;
    ngx_buf_t                  *b;
    ngx_chain_t                *cl;
    ngx_http_tokenguard_ctx_t  *ctx;
    u_char                      buf[16384];

    if (r != r->main || in == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_tokenguard_get_ctx(r);

    if (ctx == NULL || !ctx->counting) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            if (b->last > b->pos
                && ngx_http_tokenguard_usage_bytes(ctx, b->pos,
                                                   b->last - b->pos)
                   != NGX_OK)
            {
                goto failed;
            }

            continue;
        }

        if (!b->in_file) {
            continue;
        }

        /* proxy buffered the response to a temp file */
        for (pos = b->file_pos; pos < b->file_last; pos += n) {
            size = ngx_min(b->file_last - pos, (off_t) sizeof(buf));

            n = ngx_read_file(b->file, buf, (size_t) size, pos);
            if (n <= 0) {
                goto failed;
            }

            if (ngx_http_tokenguard_usage_bytes(ctx, buf, n) != NGX_OK) {
                goto failed;
            }
        }
    }

    return ngx_http_next_body_filter(r, in);

failed:

    /* the response still goes out; its usage will be an estimate */
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "tokenguard: cannot follow the response's usage");
    ctx->count_failed = 1;

    return ngx_http_next_body_filter(r, in);
}


/* from the header filter: decide whether and how to count the response */
void
ngx_http_tokenguard_usage_header(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_str_t  *ct;

    if (!(ctx->reserved_user || ctx->open) || ctx->counting
        || ctx->settled)
    {
        return;
    }

    ctx->status = r->headers_out.status;

    if (ctx->status >= NGX_HTTP_BAD_REQUEST) {
        /* an error from the provider: nothing was generated */
        return;
    }

    if (r->headers_out.content_encoding
        && r->headers_out.content_encoding->value.len
        && ngx_strncasecmp(r->headers_out.content_encoding->value.data,
                           (u_char *) "identity", 8) != 0)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "tokenguard: the provider sent a \"%V\" response"
                      " though asked for identity; its usage will be"
                      " estimated",
                      &r->headers_out.content_encoding->value);
        ctx->count_failed = 1;
        ctx->counting = 1;
        return;
    }

    ct = &r->headers_out.content_type;

    ctx->sse_on = ct->len >= sizeof("text/event-stream") - 1
                  && ngx_strncasecmp(ct->data, (u_char *) "text/event-stream",
                                     sizeof("text/event-stream") - 1) == 0;

    if (ctx->sse_on) {
        tg_sse_init(&ctx->sse, NGX_HTTP_TOKENGUARD_SSE_MAX);
    }

    ctx->kept_whole = 1;
    ctx->counting = 1;
}


/*
 * At the end of the request (log phase, before the access log is
 * written): the usage the provider reported, or an estimate where it did
 * not; then the one settle.
 */
void
ngx_http_tokenguard_usage_settle(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    tg_usage_t  *u;

    u = &ctx->usage;

    if (ctx->counting && !ctx->count_failed) {
        if (ctx->sse_on) {
            tg_sse_finish(&ctx->sse, ngx_http_tokenguard_usage_event, ctx);

        } else if (ctx->kept_len) {
            (void) tg_usage_from_body(ctx->ep.api, (char *) ctx->kept,
                                      ctx->kept_len, ctx->kept_whole, u);
        }
    }

    if (ctx->status >= NGX_HTTP_BAD_REQUEST
        || (ctx->status == 0 && r->headers_out.status >= NGX_HTTP_BAD_REQUEST
            && !ctx->relayed))
    {
        /* the provider failed (or was never reached): charge nothing */
        ngx_http_tokenguard_ledger_release(r, ctx);
        ctx->settled = 1;
        return;
    }

    if (u->has_input && u->has_output) {
        ngx_str_set(&ctx->usage_source, "provider");

    } else {
        /*
         * No usage came (a client gone mid-stream, an upstream cut short,
         * a provider that does not report it): the prompt estimate, and
         * for the output what was relayed, at four bytes a token.
         */
        if (!u->has_input) {
            u->input = ctx->rq.prompt_tokens;
        }

        if (!u->has_output) {
            u->output = ctx->rq.embeddings ? 0 : (int64_t) ctx->relayed / 4;
        }

        ngx_str_set(&ctx->usage_source, "estimate");
        ctx->estimated = 1;
    }

    ngx_http_tokenguard_ledger_settle(r, ctx, u);
}


void
ngx_http_tokenguard_usage_cleanup(ngx_http_tokenguard_ctx_t *ctx)
{
    if (ctx->sse_on) {
        tg_sse_free(&ctx->sse);
    }

    if (ctx->kept) {
        ngx_free(ctx->kept);
        ctx->kept = NULL;
    }
}


ngx_int_t
ngx_http_tokenguard_usage_init(ngx_conf_t *cf)
{
    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_tokenguard_body_filter;

    return NGX_OK;
}
