/*
 * The tokenguard_metrics content handler: the counters
 * (ngx_http_tokenguard_counters.c) in Prometheus' text exposition format.
 */

#include "ngx_http_tokenguard_counters.h"


/* ---- the exposition ---- */


typedef struct {
    ngx_http_request_t  *r;
    ngx_chain_t         *out;
    ngx_chain_t        **last;
    ngx_buf_t           *b;
} ngx_http_tokenguard_text_t;


static ngx_int_t
ngx_http_tokenguard_printf(ngx_http_tokenguard_text_t *t, const char *fmt,
    ...)
{
    u_char       *p;
    va_list       args;
    ngx_chain_t  *cl;

    if (t->b == NULL || t->b->end - t->b->last < 1024) {
        t->b = ngx_create_temp_buf(t->r->pool, 16384);
        cl = ngx_alloc_chain_link(t->r->pool);

        if (t->b == NULL || cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = t->b;
        cl->next = NULL;
        *t->last = cl;
        t->last = &cl->next;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(t->b->last, t->b->end, fmt, args);
    va_end(args);

    t->b->last = p;

    return NGX_OK;
}


/* a label value, escaped as the exposition format wants */
static ngx_str_t *
ngx_http_tokenguard_escape(ngx_http_request_t *r,
    ngx_http_tokenguard_label_t *l)
{
    u_char     *p;
    ngx_str_t  *s;
    ngx_uint_t  i;

    s = ngx_palloc(r->pool, sizeof(ngx_str_t));
    p = ngx_pnalloc(r->pool, l->len * 2);

    if (s == NULL || p == NULL) {
        return NULL;
    }

    s->data = p;

    for (i = 0; i < l->len; i++) {
        if (l->name[i] == '\\' || l->name[i] == '"') {
            *p++ = '\\';
            *p++ = l->name[i];

        } else if (l->name[i] == '\n') {
            *p++ = '\\';
            *p++ = 'n';

        } else {
            *p++ = l->name[i];
        }
    }

    s->len = p - s->data;

    return s;
}


/*
 * The escaped names of the labels in use: names[i] is NULL for an unused
 * slot, and for "other" while nothing has fallen into it.
 */
static ngx_int_t
ngx_http_tokenguard_label_names(ngx_http_request_t *r,
    ngx_http_tokenguard_label_t *labels, ngx_uint_t n, ngx_str_t **names)
{
    ngx_uint_t                    i;
    ngx_http_tokenguard_label_t  *l;

    for (i = 0; i <= NGX_HTTP_TOKENGUARD_LABELS; i++) {
        l = &labels[i];
        names[i] = NULL;

        if (i < NGX_HTTP_TOKENGUARD_LABELS ? i >= n
                                           : (l->a | l->b | l->c) == 0)
        {
            continue;
        }

        names[i] = ngx_http_tokenguard_escape(r, l);
        if (names[i] == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


#define tg_printf_to(tp, ...)                                                \
    if (ngx_http_tokenguard_printf(tp, __VA_ARGS__) != NGX_OK) {             \
        return NGX_HTTP_INTERNAL_SERVER_ERROR;                               \
    }

#define tg_printf(...)                                                       \
    if (ngx_http_tokenguard_printf(&t, __VA_ARGS__) != NGX_OK) {             \
        return NGX_HTTP_INTERNAL_SERVER_ERROR;                               \
    }


/* what the rollout watches: reroute savings, budget warnings */

static ngx_int_t
ngx_http_tokenguard_metrics_rollout(ngx_http_tokenguard_text_t *t,
    ngx_http_tokenguard_counters_t *sh, ngx_str_t **names)
{
    ngx_uint_t                        i;
    ngx_http_tokenguard_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(t->r, ngx_http_tokenguard_module);

    tg_printf_to(t, "# HELP tokenguard_reroute_saved_usd_total Dollars"
                 " reroutes saved (the requested model's price minus the"
                 " target's), by the route's tag.\n"
                 "# TYPE tokenguard_reroute_saved_usd_total counter\n");

    for (i = 0; i <= NGX_HTTP_TOKENGUARD_LABELS; i++) {
        if (names[i]) {
            tg_printf_to(t, "tokenguard_reroute_saved_usd_total{tag=\"%V\"}"
                         " %uA.%06uA\n", names[i], sh->tags[i].b / 1000000,
                         sh->tags[i].b % 1000000);
        }
    }

    tg_printf_to(t, "# HELP tokenguard_budget_warnings_total Responses past"
                 " a tokenguard_budget_warn threshold, by the highest"
                 " passed.\n"
                 "# TYPE tokenguard_budget_warnings_total counter\n");

    for (i = 0; i <= 100; i++) {
        if (tmcf->warn_set[i] || sh->warnings[i]) {
            tg_printf_to(t, "tokenguard_budget_warnings_total"
                         "{threshold=\"%ui\"} %uA\n", i, sh->warnings[i]);
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tokenguard_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t                          rc;
    ngx_str_t                         *names[NGX_HTTP_TOKENGUARD_LABELS + 1];
    ngx_uint_t                         i, cum;
    ngx_chain_t                       *cl;
    ngx_http_tokenguard_text_t         t;
    ngx_http_tokenguard_counters_t    *sh = ngx_http_tokenguard_counters();

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (sh == NULL) {
        /* no location has "tokenguard on": nothing is counted */
        return NGX_HTTP_NOT_FOUND;
    }

    ngx_memzero(&t, sizeof(ngx_http_tokenguard_text_t));
    t.r = r;
    t.last = &t.out;

    tg_printf("# HELP tokenguard_requests_total Requests tokenguard decided,"
              " by decision.\n"
              "# TYPE tokenguard_requests_total counter\n");

    for (i = 0; ngx_http_tokenguard_decisions[i]; i++) {
        tg_printf("tokenguard_requests_total{decision=\"%s\"} %uA\n",
                  ngx_http_tokenguard_decisions[i], sh->requests[i]);
    }

    tg_printf("# HELP tokenguard_reroutes_total Requests whose model a"
              " route rewrote, by the route's tag.\n"
              "# TYPE tokenguard_reroutes_total counter\n");

    if (ngx_http_tokenguard_label_names(r, sh->tags, sh->ntags, names)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i <= NGX_HTTP_TOKENGUARD_LABELS; i++) {
        if (names[i]) {
            tg_printf("tokenguard_reroutes_total{tag=\"%V\"} %uA\n",
                      names[i], sh->tags[i].a);
        }
    }

    rc = ngx_http_tokenguard_metrics_rollout(&t, sh, names);
    if (rc != NGX_OK) {
        return rc;
    }

    tg_printf("# HELP tokenguard_tokens_total Tokens settled, by model and"
              " direction.\n"
              "# TYPE tokenguard_tokens_total counter\n");

    if (ngx_http_tokenguard_label_names(r, sh->models, sh->nmodels, names)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i <= NGX_HTTP_TOKENGUARD_LABELS; i++) {
        if (names[i]) {
            tg_printf("tokenguard_tokens_total{model=\"%V\",direction=\"in\"}"
                      " %uA\n"
                      "tokenguard_tokens_total{model=\"%V\","
                      "direction=\"out\"} %uA\n",
                      names[i], sh->models[i].a, names[i], sh->models[i].b);
        }
    }

    tg_printf("# HELP tokenguard_cost_usd_total Dollars settled, by model.\n"
              "# TYPE tokenguard_cost_usd_total counter\n");

    for (i = 0; i <= NGX_HTTP_TOKENGUARD_LABELS; i++) {
        if (names[i]) {
            tg_printf("tokenguard_cost_usd_total{model=\"%V\"} %uA.%06uA\n",
                      names[i], sh->models[i].c / 1000000,
                      sh->models[i].c % 1000000);
        }
    }

    tg_printf("# HELP tokenguard_usage_total Settled requests, by where"
              " their usage came from.\n"
              "# TYPE tokenguard_usage_total counter\n"
              "tokenguard_usage_total{source=\"provider\"} %uA\n"
              "tokenguard_usage_total{source=\"estimate\"} %uA\n",
              sh->usage[0], sh->usage[1]);

    tg_printf("# HELP tokenguard_store_errors_total Redis failures: lost"
              " connections, timeouts, error replies.\n"
              "# TYPE tokenguard_store_errors_total counter\n"
              "tokenguard_store_errors_total %uA\n", sh->store_errors);

    tg_printf("# HELP tokenguard_store_latency_seconds Redis round trips of"
              " the ledger.\n"
              "# TYPE tokenguard_store_latency_seconds histogram\n");

    cum = 0;

    for (i = 0; i < NGX_HTTP_TOKENGUARD_BUCKETS; i++) {
        cum += sh->latency[i];
        tg_printf("tokenguard_store_latency_seconds_bucket{le=\"%s\"} %ui\n",
                  ngx_http_tokenguard_buckets[i].le, cum);
    }

    tg_printf("tokenguard_store_latency_seconds_bucket{le=\"+Inf\"} %uA\n"
              "tokenguard_store_latency_seconds_sum %uA.%06uA\n"
              "tokenguard_store_latency_seconds_count %uA\n",
              sh->latency_count, sh->latency_sum_us / 1000000,
              sh->latency_sum_us % 1000000, sh->latency_count);

    tg_printf("# HELP tokenguard_journal_pending Ledger writes waiting for"
              " Redis.\n"
              "# TYPE tokenguard_journal_pending gauge\n"
              "tokenguard_journal_pending %ui\n",
              ngx_http_tokenguard_journal_pending());

    tg_printf("# HELP tokenguard_reservations_expired_total Reservations"
              " that expired unsettled.\n"
              "# TYPE tokenguard_reservations_expired_total counter\n"
              "tokenguard_reservations_expired_total %uA\n", sh->expired);

    t.b->last_buf = 1;
    t.b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");
    r->headers_out.content_length_n = 0;

    for (cl = t.out; cl; cl = cl->next) {
        r->headers_out.content_length_n += cl->buf->last - cl->buf->pos;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, t.out);
}


/* tokenguard_metrics: this location answers with the metrics */

char *
ngx_http_tokenguard_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_tokenguard_metrics_handler;

    return NGX_CONF_OK;
}
