/*
 * Response accounting: a body filter that watches the upstream's bytes
 * on their way to the client (never holding them back), finds the usage
 * the provider reports (a JSON body, or SSE events), and, at the end of
 * the request, settles the cost once: the provider's usage, an estimate,
 * the worst case, or nothing, by what the provider got and answered.
 *
 * Nothing of the response is kept: a JSON body and each stream event
 * pass through a streaming scan (tg_usage_scan_*) that keeps only the
 * usage object at its top level, a few kilobytes at most.
 */

#include "ngx_http_tokenguard_module.h"
#include "tg_estimate.h"


static void ngx_http_tokenguard_usage_charge(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, const tg_usage_t *u);


static ngx_http_output_body_filter_pt  ngx_http_next_body_filter;


static void
ngx_http_tokenguard_usage_event(void *data, const char *event,
    size_t event_len, const char *payload, size_t len)
{
    ngx_http_tokenguard_ctx_t  *ctx = data;

    (void) tg_usage_scan_end(ctx->resp.scan, &ctx->resp.usage);
}


static void
ngx_http_tokenguard_usage_data(void *data, const char *p, size_t len)
{
    ngx_http_tokenguard_ctx_t  *ctx = data;

    tg_usage_scan_feed(ctx->resp.scan, p, len);
}


static ngx_int_t
ngx_http_tokenguard_usage_bytes(ngx_http_tokenguard_ctx_t *ctx, u_char *p,
    size_t n)
{
    ctx->resp.relayed += n;

    if (ctx->resp.count_failed) {
        /* only the bytes: the output will be estimated from them */
        return NGX_OK;
    }

    if (ctx->resp.sse_on) {
        return tg_sse_feed(&ctx->resp.sse, (char *) p, n,
                           ngx_http_tokenguard_usage_event, ctx) == 0
               ? NGX_OK : NGX_ERROR;
    }

    tg_usage_scan_feed(ctx->resp.scan, (char *) p, n);

    return NGX_OK;
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

    if (ctx == NULL || !ctx->resp.counting) {
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
    ctx->resp.count_failed = 1;

    return ngx_http_next_body_filter(r, in);
}


/* from the header filter: decide whether and how to count the response */
void
ngx_http_tokenguard_usage_header(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_str_t            *ct;
    ngx_http_upstream_t  *u;

    if (!(ctx->budget.reserved_user || ctx->open) || ctx->resp.counting
        || ctx->settled)
    {
        return;
    }

    ctx->resp.status = r->headers_out.status;

    /*
     * The provider's own answer, or one nginx made (502, 504 after an
     * upstream error or timeout): the status is the provider's only when
     * its header was read and is the one going out.
     */
    u = r->upstream;
    ctx->resp.answered = u != NULL && u->headers_in.status_n != 0
                    && u->headers_in.status_n == ctx->resp.status;

    if (ctx->resp.status >= NGX_HTTP_BAD_REQUEST) {
        return;
    }

    ctx->resp.counting = 1;

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
        ctx->resp.count_failed = 1;
        return;
    }

    ctx->resp.scan = ngx_palloc(r->pool, sizeof(tg_usage_scan_t));
    if (ctx->resp.scan == NULL) {
        ctx->resp.count_failed = 1;
        return;
    }

    ct = &r->headers_out.content_type;

    ctx->resp.sse_on = ct->len >= sizeof("text/event-stream") - 1
                  && ngx_strncasecmp(ct->data, (u_char *) "text/event-stream",
                                     sizeof("text/event-stream") - 1) == 0;

    tg_usage_scan_init(ctx->resp.scan, ctx->in.ep.api, ctx->resp.sse_on);

    if (ctx->resp.sse_on) {
        tg_sse_init_stream(&ctx->resp.sse, ngx_http_tokenguard_usage_data);
    }
}


/* whether any attempt (proxy_next_upstream) sent the provider a byte */
static ngx_uint_t
ngx_http_tokenguard_usage_sent(ngx_http_request_t *r)
{
    ngx_uint_t                  i;
    ngx_http_upstream_state_t  *st;

    if (r->upstream && r->upstream->peer.connection
        && r->upstream->peer.connection->sent > 0)
    {
        return 1;
    }

    if (r->upstream_states == NULL) {
        return 0;
    }

    st = r->upstream_states->elts;

    for (i = 0; i < r->upstream_states->nelts; i++) {
        if (st[i].bytes_sent > 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * At the end of the request (log phase, before the access log is
 * written), the one settle:
 *
 *   nothing, when the provider never got the request or answered it with
 *     an error status of its own;
 *   the reservation's worst case, when it got the request and nothing
 *     came back (the client gone before the headers, a timeout, a reset)
 *     or when it answers later (Responses "background");
 *   the provider's usage, from the complete body or the final event;
 *   else an estimate: at least the prompt estimate, and at least the
 *     relayed bytes / 4 as output.
 */
void
ngx_http_tokenguard_usage_settle(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    int64_t      out;
    tg_usage_t  *u;

    u = &ctx->resp.usage;

    if (ctx->resp.counting && !ctx->resp.count_failed) {
        if (ctx->resp.sse_on) {
            tg_sse_finish(&ctx->resp.sse, ngx_http_tokenguard_usage_event, ctx);

        } else {
            (void) tg_usage_scan_end(ctx->resp.scan, u);
        }
    }

    if ((ctx->resp.answered && ctx->resp.status >= NGX_HTTP_BAD_REQUEST)
        || !ngx_http_tokenguard_usage_sent(r))
    {
        ngx_http_tokenguard_budget_release(r, ctx);
        ctx->settled = 1;
        return;
    }

    if (u->has_input && u->has_output && !u->background) {
        ngx_str_set(&ctx->resp.usage_source, "provider");

        ngx_http_tokenguard_usage_charge(r, ctx, u);
        return;
    }

    ngx_str_set(&ctx->resp.usage_source, "estimate");
    ctx->resp.estimated = 1;

    if (u->background || ctx->in.rq.background || !ctx->resp.answered
        || ctx->resp.relayed == 0)
    {
        /*
         * the reserved worst case: the same tokens (the input the
         * provider keeps included), the reserved price
         */
        out = ctx->budget.reserve_tokens - ctx->budget.reserve_input;

        ngx_memzero(u, sizeof(tg_usage_t));
        u->input = ngx_max(ctx->budget.reserve_input,
                           ctx->in.rq.prompt_tokens);
        u->output = ngx_max(out, 0);
        ctx->resp.charge_reserved = 1;

        ngx_http_tokenguard_usage_charge(r, ctx, u);
        return;
    }

    /* a stream or body cut short, or a server that reports no usage */

    if (!u->has_input || u->input < ctx->in.rq.prompt_tokens) {
        u->input = ctx->in.rq.prompt_tokens;
    }

    /*
     * the input the provider keeps is billed however the answer ends: an
     * answer cut before it said how much is charged the reserved
     * assumption, or a client could cut its streams to have it for free
     */
    if (ctx->in.rq.stored && !u->has_input) {
        u->input = ngx_max(u->input, ctx->budget.reserve_input);
    }

    out = ctx->in.rq.embeddings ? 0 : (int64_t) ctx->resp.relayed / 4;

    if (!u->has_output || u->output < out) {
        u->output = out;
    }

    if (u->cached > u->input) {
        u->cached = u->input;
    }

    if (u->cache_write > u->input - u->cached) {
        u->cache_write = u->input - u->cached;
    }

    ngx_http_tokenguard_usage_charge(r, ctx, u);
}


/*
 * The usage priced and settled: the worst case is charged at what was
 * reserved for it; a rerouted request also records what the routing
 * saved (the same usage at the requested model).
 */
static void
ngx_http_tokenguard_usage_charge(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, const tg_usage_t *u)
{
    int64_t                           usd;
    const tg_price_t                 *requested;
    ngx_http_tokenguard_main_conf_t  *tmcf;

    if (ctx->settled || ctx->price == NULL) {
        return;
    }

    ctx->settled = 1;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tokenguard_module);

    usd = ctx->resp.charge_reserved ? ctx->budget.reserve_usd
                                    : tg_price_cost(ctx->price, u, ngx_time());

    if (ctx->routing.rerouted) {
        requested = tg_prices_lookup(tmcf->prices,
                                     (char *) ctx->in.model_requested.data,
                                     ctx->in.model_requested.len);
        ctx->resp.saved_usd = requested
                              ? tg_price_cost(requested, u, ngx_time()) - usd
                              : 0;
        ngx_http_tokenguard_counters_saved(ctx);
    }

    if (ctx->routing.dry_price) {
        /* a dry run: the same usage at the price of the route's target */
        ctx->resp.dry_saved_usd = usd - tg_price_cost(ctx->routing.dry_price,
                                                      u, ngx_time());
    }

    /* what the log-phase variables report */
    ctx->resp.usage.input = u->input;
    ctx->resp.usage.output = u->output;
    ctx->resp.cost_usd = usd;

    ngx_http_tokenguard_counters_usage(ctx, u->input, u->output, usd);
    ngx_http_tokenguard_budget_settle(r, ctx, usd, u->input, u->output);
}


void
ngx_http_tokenguard_usage_cleanup(ngx_http_tokenguard_ctx_t *ctx)
{
    if (ctx->resp.scan) {
        tg_usage_scan_free(ctx->resp.scan);
        ctx->resp.scan = NULL;
    }
}


ngx_int_t
ngx_http_tokenguard_usage_init(ngx_conf_t *cf)
{
    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_tokenguard_body_filter;

    return NGX_OK;
}
