/*
 * Prometheus metrics: counters in a shared memory zone, added to with
 * atomic operations by every worker, and the tokenguard_metrics content
 * handler that writes them in the text exposition format.
 *
 * The zone keeps its counters across "nginx -s reload" (same zone, same
 * size) and starts from zero when nginx starts.  Model and tag labels
 * are bounded: past NGX_HTTP_TOKENGUARD_LABELS distinct values, the rest
 * count under "other".
 */

#include "ngx_http_tokenguard_module.h"


#define NGX_HTTP_TOKENGUARD_LABELS      32
#define NGX_HTTP_TOKENGUARD_LABEL_LEN   64


static const char  *ngx_http_tokenguard_decisions[] = {
    "allow", "deny_identity", "deny_policy", "deny_budget", "deny_sandbox",
    "deny_invalid", "store_error", "open", "deny_endpoint", "passthrough",
    NULL
};

#define NGX_HTTP_TOKENGUARD_DECISIONS  10


/* latency buckets: the bound in microseconds and as the "le" label */
typedef struct {
    ngx_msec_int_t                us;
    const char                   *le;
} ngx_http_tokenguard_bucket_t;


static const ngx_http_tokenguard_bucket_t  ngx_http_tokenguard_buckets[] = {
    { 500, "0.0005" }, { 1000, "0.001" }, { 2500, "0.0025" },
    { 5000, "0.005" }, { 10000, "0.01" }, { 25000, "0.025" },
    { 50000, "0.05" }, { 100000, "0.1" }, { 250000, "0.25" },
    { 500000, "0.5" }, { 1000000, "1" }, { 2500000, "2.5" }
};

#define NGX_HTTP_TOKENGUARD_BUCKETS  12


typedef struct {
    u_char                        name[NGX_HTTP_TOKENGUARD_LABEL_LEN];
    size_t                        len;
    ngx_atomic_t                  a;        /* tokens in;  reroutes */
    ngx_atomic_t                  b;        /* tokens out */
    ngx_atomic_t                  c;        /* cost, micro-USD */
} ngx_http_tokenguard_label_t;


typedef struct {
    ngx_atomic_t                  requests[NGX_HTTP_TOKENGUARD_DECISIONS];
    ngx_atomic_t                  usage[2];         /* provider, estimate */
    ngx_atomic_t                  store_errors;
    ngx_atomic_t                  expired;
    ngx_atomic_t                  latency[NGX_HTTP_TOKENGUARD_BUCKETS + 1];
    ngx_atomic_t                  latency_count;
    ngx_atomic_t                  latency_sum_us;

    /* the +1 is "other"; slots fill once, under the zone's lock */
    ngx_uint_t                    nmodels;
    ngx_http_tokenguard_label_t   models[NGX_HTTP_TOKENGUARD_LABELS + 1];
    ngx_uint_t                    ntags;
    ngx_http_tokenguard_label_t   tags[NGX_HTTP_TOKENGUARD_LABELS + 1];
} ngx_http_tokenguard_metrics_sh_t;


static ngx_slab_pool_t                   *ngx_http_tokenguard_metrics_pool;
static ngx_http_tokenguard_metrics_sh_t  *ngx_http_tokenguard_metrics_sh;


ngx_int_t
ngx_http_tokenguard_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t                   *shpool;
    ngx_http_tokenguard_metrics_sh_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    ngx_http_tokenguard_metrics_pool = shpool;

    if (data) {
        /* a reload: the counters go on */
        shm_zone->data = data;
        ngx_http_tokenguard_metrics_sh = data;
        return NGX_OK;
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_tokenguard_metrics_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(sh->models[NGX_HTTP_TOKENGUARD_LABELS].name, "other", 5);
    sh->models[NGX_HTTP_TOKENGUARD_LABELS].len = 5;
    ngx_memcpy(sh->tags[NGX_HTTP_TOKENGUARD_LABELS].name, "other", 5);
    sh->tags[NGX_HTTP_TOKENGUARD_LABELS].len = 5;

    shm_zone->data = sh;
    ngx_http_tokenguard_metrics_sh = sh;

    return NGX_OK;
}


/* the slot of a label value: found, added, or "other" when full */
static ngx_http_tokenguard_label_t *
ngx_http_tokenguard_label(ngx_http_tokenguard_label_t *labels,
    ngx_uint_t *n, ngx_str_t *value)
{
    ngx_uint_t  i, len;

    len = ngx_min(value->len, NGX_HTTP_TOKENGUARD_LABEL_LEN);

    for (i = 0; i < *n; i++) {
        if (labels[i].len == len
            && ngx_memcmp(labels[i].name, value->data, len) == 0)
        {
            return &labels[i];
        }
    }

    ngx_shmtx_lock(&ngx_http_tokenguard_metrics_pool->mutex);

    /* another worker may have added it meanwhile */
    for ( /* void */ ; i < *n; i++) {
        if (labels[i].len == len
            && ngx_memcmp(labels[i].name, value->data, len) == 0)
        {
            break;
        }
    }

    if (i == *n && *n < NGX_HTTP_TOKENGUARD_LABELS) {
        ngx_memcpy(labels[i].name, value->data, len);
        labels[i].len = len;
        ngx_memory_barrier();
        (*n)++;
    }

    ngx_shmtx_unlock(&ngx_http_tokenguard_metrics_pool->mutex);

    return i < NGX_HTTP_TOKENGUARD_LABELS ? &labels[i]
                                          : &labels[NGX_HTTP_TOKENGUARD_LABELS];
}


void
ngx_http_tokenguard_metrics_request(ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_uint_t                         i;
    ngx_http_tokenguard_label_t       *l;
    ngx_http_tokenguard_metrics_sh_t  *sh = ngx_http_tokenguard_metrics_sh;

    if (sh == NULL || ctx->decision.len == 0) {
        return;
    }

    for (i = 0; ngx_http_tokenguard_decisions[i]; i++) {
        if (ngx_strlen(ngx_http_tokenguard_decisions[i]) == ctx->decision.len
            && ngx_strncmp(ngx_http_tokenguard_decisions[i],
                           ctx->decision.data, ctx->decision.len) == 0)
        {
            (void) ngx_atomic_fetch_add(&sh->requests[i], 1);
            break;
        }
    }

    if (ctx->rerouted && ctx->route.len && (ctx->reserved_user || ctx->open)) {
        l = ngx_http_tokenguard_label(sh->tags, &sh->ntags, &ctx->route);
        (void) ngx_atomic_fetch_add(&l->a, 1);
    }
}


void
ngx_http_tokenguard_metrics_usage(ngx_http_tokenguard_ctx_t *ctx,
    int64_t input, int64_t output, int64_t cost)
{
    ngx_http_tokenguard_label_t       *l;
    ngx_http_tokenguard_metrics_sh_t  *sh = ngx_http_tokenguard_metrics_sh;

    if (sh == NULL) {
        return;
    }

    l = ngx_http_tokenguard_label(sh->models, &sh->nmodels, &ctx->model);

    (void) ngx_atomic_fetch_add(&l->a, input);
    (void) ngx_atomic_fetch_add(&l->b, output);
    (void) ngx_atomic_fetch_add(&l->c, cost);
    (void) ngx_atomic_fetch_add(&sh->usage[ctx->estimated ? 1 : 0], 1);
}


void
ngx_http_tokenguard_metrics_store(ngx_msec_int_t us, ngx_uint_t error,
    ngx_uint_t expired)
{
    ngx_uint_t                         i;
    ngx_http_tokenguard_metrics_sh_t  *sh = ngx_http_tokenguard_metrics_sh;

    if (sh == NULL) {
        return;
    }

    if (error) {
        (void) ngx_atomic_fetch_add(&sh->store_errors, 1);
    }

    if (expired) {
        (void) ngx_atomic_fetch_add(&sh->expired, expired);
    }

    if (us < 0) {
        return;
    }

    for (i = 0; i < NGX_HTTP_TOKENGUARD_BUCKETS; i++) {
        if (us <= ngx_http_tokenguard_buckets[i].us) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&sh->latency[i], 1);
    (void) ngx_atomic_fetch_add(&sh->latency_count, 1);
    (void) ngx_atomic_fetch_add(&sh->latency_sum_us, us);
}


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


#define tg_printf(...)                                                       \
    if (ngx_http_tokenguard_printf(&t, __VA_ARGS__) != NGX_OK) {             \
        return NGX_HTTP_INTERNAL_SERVER_ERROR;                               \
    }


static ngx_int_t
ngx_http_tokenguard_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t                          rc;
    ngx_str_t                         *names[NGX_HTTP_TOKENGUARD_LABELS + 1];
    ngx_uint_t                         i, cum;
    ngx_chain_t                       *cl;
    ngx_http_tokenguard_text_t         t;
    ngx_http_tokenguard_metrics_sh_t  *sh = ngx_http_tokenguard_metrics_sh;

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
