/*
 * The request path: identity, body, inspection, policy, routing, the
 * rewrite and the budget's reservation, run once per main request in the
 * precontent phase.
 *
 * The handler is a small state machine on the request context: it starts
 * reading the body and suspends; the body handler decides and re-runs the
 * phases; the handler, entered again, either lets the request go on or
 * sends the refusal that was decided.  When the budget answers later
 * (WAIT_STORE), its continuations, budget_known() and reserved(), finish
 * the decision and re-run the phases.
 */

#include "ngx_http_tokenguard_module.h"


static ngx_int_t ngx_http_tokenguard_start(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx);
static void ngx_http_tokenguard_body_handler(ngx_http_request_t *r);
static void ngx_http_tokenguard_end(ngx_http_tokenguard_ctx_t *ctx);
static ngx_int_t ngx_http_tokenguard_decide(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx);
static void ngx_http_tokenguard_budget_known(ngx_http_tokenguard_ctx_t *ctx);
static ngx_int_t ngx_http_tokenguard_route_and_reserve(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx);
static void ngx_http_tokenguard_reserve(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx);
static void ngx_http_tokenguard_reserved(ngx_http_tokenguard_ctx_t *ctx);
static void ngx_http_tokenguard_admit(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx);
static void ngx_http_tokenguard_go_on(ngx_http_request_t *r);
static ngx_int_t ngx_http_tokenguard_rewrite(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx,
    ngx_str_t *body);
static ngx_int_t ngx_http_tokenguard_rewrite_uri(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx);


ngx_int_t
ngx_http_tokenguard_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_tokenguard_ctx_t       *ctx;
    ngx_http_tokenguard_loc_conf_t  *tlcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);

    if (!tlcf->enable) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_tokenguard_get_ctx(r);

    if (ctx == NULL) {
        ctx = ngx_http_tokenguard_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->cleanup = ngx_http_tokenguard_end;

        rc = ngx_http_tokenguard_start(r, tlcf, ctx);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    switch (ctx->state) {

    case NGX_HTTP_TOKENGUARD_DONE:
        return NGX_DECLINED;

    case NGX_HTTP_TOKENGUARD_REFUSE:
        rc = ngx_http_tokenguard_send_refusal(r, ctx);
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;

    default:
        /* still reading the body, or waiting for the budget */
        return NGX_DONE;
    }
}


/*
 * Decides what can be decided from the request line and headers, then
 * starts reading the body.  Returns NGX_OK to go on with ctx->state, or
 * what the phase handler must return.
 */

static ngx_int_t
ngx_http_tokenguard_start(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_int_t  rc;

    ngx_http_tokenguard_endpoint_classify(r, tlcf, ctx);

    rc = ngx_http_tokenguard_identify(r, tlcf, ctx);
    if (rc != NGX_OK) {
        return rc == NGX_DECLINED ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_tokenguard_endpoint_check(r, tlcf, ctx) != NGX_OK) {
        /* free, passed through or refused: nothing to inspect or count */
        return NGX_OK;
    }

    if (!ngx_http_tokenguard_body_readable(r)) {
        ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_INVALID,
                                   "the request body has a Content-Encoding"
                                   " that the gateway cannot read; send it"
                                   " uncompressed");
        return NGX_OK;
    }

    if (r->headers_in.content_length_n > (off_t) tlcf->max_body) {
        ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_TOO_LARGE,
                                   "the request body is %O bytes, over this"
                                   " gateway's limit of %uz bytes; send a"
                                   " shorter prompt",
                                   r->headers_in.content_length_n,
                                   tlcf->max_body);
        return NGX_OK;
    }

    ctx->state = NGX_HTTP_TOKENGUARD_READING_BODY;

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_tokenguard_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    /* the body handler runs the phases again, maybe already did */
    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


static void
ngx_http_tokenguard_body_handler(ngx_http_request_t *r)
{
    ngx_http_tokenguard_ctx_t       *ctx;
    ngx_http_tokenguard_loc_conf_t  *tlcf;

    ctx = ngx_http_tokenguard_get_ctx(r);
    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);

    if (ngx_http_tokenguard_decide(r, tlcf, ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/*
 * Leaves ctx in DONE (allowed), REFUSE, or WAIT_STORE when the budget
 * answers later.  Returns NGX_ERROR only for what is the gateway's fault
 * (memory, temp file I/O).
 */

static ngx_int_t
ngx_http_tokenguard_decide(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx)
{
    int         rc;
    ngx_int_t   n;
    ngx_str_t  *body;

    body = &ctx->in.body;

    if (ngx_http_tokenguard_body_get(r, body, &ctx->in.body_temporary)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (body->len > tlcf->max_body) {
        ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_TOO_LARGE,
                                   "the request body is %uz bytes, over this"
                                   " gateway's limit of %uz bytes; send a"
                                   " shorter prompt",
                                   body->len, tlcf->max_body);
        return NGX_OK;
    }

    rc = tg_request_inspect(&ctx->in.ep, (char *) r->uri.data,
                            (char *) body->data, body->len, &ctx->in.rq);

    if (rc == TG_NOMEM) {
        return NGX_ERROR;
    }

    if (rc == TG_INVALID) {
        ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_INVALID, "%s",
                                   ctx->in.rq.error);
        return NGX_OK;
    }

    ctx->in.inspected = 1;
    ctx->in.model_requested.data = (u_char *) ctx->in.rq.model;
    ctx->in.model_requested.len = ctx->in.rq.model_len;
    ctx->routing.model = ctx->in.model_requested;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "tokenguard: model \"%V\" stream:%d max_output:%L"
                   " prompt_tokens:%L", &ctx->routing.model, ctx->in.rq.stream,
                   ctx->in.rq.max_output, ctx->in.rq.prompt_tokens);

    /* each step returns NGX_OK to go on, NGX_DECLINED once it refused */

    n = ngx_http_tokenguard_check_prompt(r, tlcf, ctx);

    if (n == NGX_OK) {
        n = ngx_http_tokenguard_classify(r, tlcf, ctx);
    }

    if (n != NGX_OK) {
        return n == NGX_ERROR ? NGX_ERROR : NGX_OK;
    }

    if (ctx->in.ep.kind == TG_ENDPOINT_FREE) {
        return ngx_http_tokenguard_endpoint_free(r, tlcf, ctx);
    }

    ctx->now = ngx_time();
    ctx->budget.pct = -1;
    ctx->budget.warn_pct = -1;

    if (tlcf->need_budget
        && ngx_http_tokenguard_budget_status(r, ctx,
                                             ngx_http_tokenguard_budget_known)
           == NGX_AGAIN)
    {
        ctx->state = NGX_HTTP_TOKENGUARD_WAIT_STORE;
        return NGX_OK;
    }

    return ngx_http_tokenguard_route_and_reserve(r, tlcf, ctx);
}


/* the budget>= read answered: the rest of the decision */

static void
ngx_http_tokenguard_budget_known(ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_http_request_t              *r;
    ngx_http_tokenguard_loc_conf_t  *tlcf;

    r = ctx->request;
    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);

    /* not waiting any more; the reservation may wait again */
    ctx->state = NGX_HTTP_TOKENGUARD_READING_BODY;

    if (ngx_http_tokenguard_route_and_reserve(r, tlcf, ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        ngx_http_run_posted_requests(r->connection);
        return;
    }

    if (ctx->state != NGX_HTTP_TOKENGUARD_WAIT_STORE) {
        ngx_http_tokenguard_go_on(r);
    }
}


/*
 * The second half of the decision, once the budget is known if a route
 * needs it: route, check the model, price the worst case, rewrite what
 * goes upstream, and reserve.
 */

static ngx_int_t
ngx_http_tokenguard_route_and_reserve(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_int_t                         n;
    ngx_http_tokenguard_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tokenguard_module);

    n = ngx_http_tokenguard_route(r, tlcf, ctx);

    if (n == NGX_OK && tlcf->dry_run && ctx->routing.rerouted) {
        /* the route is named and priced, the model goes as it came */
        ctx->routing.dry_price = tg_prices_lookup(tmcf->prices,
                                    (char *) ctx->routing.model.data,
                                    ctx->routing.model.len);
        ctx->routing.model = ctx->in.model_requested;
        ctx->routing.rerouted = 0;
    }

    if (n == NGX_OK) {
        n = ngx_http_tokenguard_check_model(r, tlcf, ctx);
    }

    if (n == NGX_OK) {
        ctx->price = tg_prices_lookup(tmcf->prices,
                                      (char *) ctx->routing.model.data,
                                      ctx->routing.model.len);

        if (ctx->price == NULL) {
            ctx->enforce = 1;   /* what has no price cannot be charged */
            ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_MODEL,
                                       "no price is known for the model"
                                       " \"%V\", so its cost cannot be"
                                       " counted; ask your platform team to"
                                       " add it to the price table",
                                       &ctx->routing.model);
            n = NGX_DECLINED;
        }
    }

    if (n == NGX_OK) {
        n = ngx_http_tokenguard_rewrite(r, tlcf, ctx, &ctx->in.body);
    }

    /*
     * The prompt was for policy and routing, the body's copy for the
     * parsers: a stream keeps neither.
     */
    tg_request_drop_prompt(&ctx->in.rq);
    ngx_http_tokenguard_body_release(r, &ctx->in.body, &ctx->in.body_temporary);

    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (n == NGX_OK) {
        ngx_http_tokenguard_reserve(r, tlcf, ctx);
    }

    return NGX_OK;
}


static void
ngx_http_tokenguard_reserve(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_tokenguard_budget_reserve(r, ctx,
                                            ngx_http_tokenguard_reserved);

    if (rc == NGX_AGAIN) {
        ctx->state = NGX_HTTP_TOKENGUARD_WAIT_STORE;
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_STORE,
                                   "the budget store cannot take this"
                                   " request now; try again in a moment");
        return;
    }

    ngx_http_tokenguard_admit(r, tlcf, ctx);
}


/* the budget answered later: decide, and let the request go on */

static void
ngx_http_tokenguard_reserved(ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_http_request_t              *r;
    ngx_http_tokenguard_loc_conf_t  *tlcf;

    r = ctx->request;
    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);

    ngx_http_tokenguard_admit(r, tlcf, ctx);
    ngx_http_tokenguard_go_on(r);
}


/*
 * The budget's answer as a decision: admitted, refused by a cap, or the
 * store away (tokenguard_on_store_error says what then).
 */

static void
ngx_http_tokenguard_admit(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_uint_t  refused;

    refused = ctx->budget.cap_field[0] != '\0';

    if (!ctx->budget.store_failed && !refused) {
        ngx_str_set(&ctx->decision, "allow");
        ctx->state = NGX_HTTP_TOKENGUARD_DONE;
        return;
    }

    if (refused) {
        ngx_http_tokenguard_refuse_budget(r, ctx);

        if (ngx_http_tokenguard_refused(ctx) == NGX_OK) {
            /*
             * A dry run: it goes without the reservation the cap refused
             * (the user's, if the team's refused, is settled with it);
             * its spend is settled, once, as a request let through open.
             */
            ctx->open = 1;
            ctx->state = NGX_HTTP_TOKENGUARD_DONE;
            return;
        }
    }

    /* undo the half that was admitted: the request does not go */
    if (ctx->budget.reserved_user || ctx->budget.reserved_team) {
        ngx_http_tokenguard_budget_release(r, ctx);
    }

    if (refused) {
        return;
    }

    if (tlcf->on_store_error == NGX_HTTP_TOKENGUARD_STORE_OPEN) {
        ctx->open = 1;
        ngx_str_set(&ctx->decision, "open");
        ctx->state = NGX_HTTP_TOKENGUARD_DONE;
        return;
    }

    ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_STORE,
                               "the budget store is unavailable, so this"
                               " request cannot be checked against your"
                               " budget; try again in a moment");
}


/* decided after a wait: the phases run again, from this one */

static void
ngx_http_tokenguard_go_on(ngx_http_request_t *r)
{
    ngx_connection_t  *c;

    c = r->connection;

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


/* settles what was admitted; counts policy refusals */

ngx_int_t
ngx_http_tokenguard_log_handler(ngx_http_request_t *r)
{
    ngx_http_tokenguard_ctx_t  *ctx;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_tokenguard_get_ctx(r);

    if (ctx == NULL || ctx->settled) {
        return NGX_OK;
    }

    if (ctx->dry.len) {
        /* what enforcing would have done, as the log and metrics show it */
        ctx->decision = ctx->dry;
        ngx_http_tokenguard_budget_count(r, ctx, "dry_denied", ctx->dry_kind);
    }

    ngx_http_tokenguard_counters_request(ctx);

    if (ctx->budget.reserved_user || ctx->open) {
        ngx_http_tokenguard_usage_settle(r, ctx);

    } else if (ctx->decision.len == sizeof("deny_policy") - 1
               && ngx_strncmp(ctx->decision.data, "deny_policy",
                              ctx->decision.len) == 0)
    {
        ctx->settled = 1;
        ngx_http_tokenguard_budget_count(r, ctx, "denied", NULL);
    }

    return NGX_OK;
}


/*
 * What goes upstream: the routed model, and for OpenAI streams the
 * include_usage option that makes the provider report usage at the end.
 */

static ngx_int_t
ngx_http_tokenguard_rewrite(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx,
    ngx_str_t *body)
{
    int             rc, include_usage, n;
    char           *model;
    ngx_int_t       rv;
    tg_json_edit_t  edits[TG_JSON_EDITS_MAX];

    model = NULL;

    ngx_http_tokenguard_body_identity(r);

    if (ctx->routing.rerouted) {
        if (ctx->in.ep.model_len) {
            if (ngx_http_tokenguard_rewrite_uri(r, ctx) != NGX_OK) {
                return NGX_ERROR;
            }

        } else {
            model = (char *) ctx->routing.model.data;
        }
    }

    include_usage = tlcf->include_usage && ctx->in.rq.stream
                    && (ctx->in.ep.api == TG_API_CHAT
                        || ctx->in.ep.api == TG_API_COMPLETIONS);

    if (model == NULL && !include_usage) {
        return NGX_OK;
    }

    rc = tg_json_edit_plan((char *) body->data, body->len,
                           &ctx->in.rq.places, model, ctx->routing.model.len,
                           include_usage, edits, &n);

    if (rc == -2) {
        return NGX_ERROR;
    }

    if (rc != 0) {
        /* the parser accepted what the editor cannot: our bug, not theirs */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "tokenguard: cannot rewrite the request body");
        ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_INVALID,
                                   "the request body could not be rewritten"
                                   " for the upstream");
        return NGX_DECLINED;
    }

    rv = ngx_http_tokenguard_body_splice(r, body, edits, n);
    tg_json_edits_free(edits, n);

    return rv;
}


/*
 * The URI names the model: "/v1beta/models/M:generateContent", Vertex AI,
 * an Azure deployment
 */

static ngx_int_t
ngx_http_tokenguard_rewrite_uri(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    u_char     *p;
    size_t      tail;
    ngx_str_t   uri;

    tail = r->uri.len - ctx->in.ep.model_off - ctx->in.ep.model_len;

    uri.len = ctx->in.ep.model_off + ctx->routing.model.len + tail;
    uri.data = ngx_pnalloc(r->pool, uri.len);
    if (uri.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(uri.data, r->uri.data, ctx->in.ep.model_off);
    p = ngx_cpymem(p, ctx->routing.model.data, ctx->routing.model.len);
    ngx_memcpy(p, r->uri.data + ctx->in.ep.model_off + ctx->in.ep.model_len,
               tail);

    r->uri = uri;

    /* proxy_pass builds the upstream URI from r->uri, escaped, plus args */
    r->valid_unparsed_uri = 0;
    r->quoted_uri = 1;

    return NGX_OK;
}


/* the request's pool goes away: replies still owed find no request */

static void
ngx_http_tokenguard_end(ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_http_tokenguard_budget_detach(ctx);
    ngx_http_tokenguard_usage_cleanup(ctx);
    tg_request_free(&ctx->in.rq);
}
