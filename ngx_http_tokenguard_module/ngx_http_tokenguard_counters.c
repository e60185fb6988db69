/*
 * The counters behind the Prometheus metrics, in a shared memory zone,
 * added to with atomic operations by every worker.
 *
 * The zone keeps its counters across "nginx -s reload" (same zone, same
 * size) and starts from zero when nginx starts.  Model and tag labels
 * are bounded: past NGX_HTTP_TOKENGUARD_LABELS distinct values, the rest
 * count under "other".
 */

#include "ngx_http_tokenguard_counters.h"


const char  *ngx_http_tokenguard_decisions[] = {
    "allow", "deny_identity", "deny_policy", "deny_budget", "deny_sandbox",
    "deny_invalid", "store_error", "open", "deny_endpoint", "passthrough",
    "deny_identity_dry_run", "deny_policy_dry_run", "deny_budget_dry_run",
    "deny_sandbox_dry_run", NULL
};


const ngx_http_tokenguard_bucket_t  ngx_http_tokenguard_buckets[] = {
    { 500, "0.0005" }, { 1000, "0.001" }, { 2500, "0.0025" },
    { 5000, "0.005" }, { 10000, "0.01" }, { 25000, "0.025" },
    { 50000, "0.05" }, { 100000, "0.1" }, { 250000, "0.25" },
    { 500000, "0.5" }, { 1000000, "1" }, { 2500000, "2.5" }
};


static ngx_slab_pool_t                 *ngx_http_tokenguard_counters_pool;
static ngx_http_tokenguard_counters_t  *ngx_http_tokenguard_counters_sh;


ngx_int_t
ngx_http_tokenguard_counters_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t                 *shpool;
    ngx_http_tokenguard_counters_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    ngx_http_tokenguard_counters_pool = shpool;

    if (data) {
        /* a reload: the counters go on */
        shm_zone->data = data;
        ngx_http_tokenguard_counters_sh = data;
        return NGX_OK;
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_tokenguard_counters_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(sh->models[NGX_HTTP_TOKENGUARD_LABELS].name, "other", 5);
    sh->models[NGX_HTTP_TOKENGUARD_LABELS].len = 5;
    ngx_memcpy(sh->tags[NGX_HTTP_TOKENGUARD_LABELS].name, "other", 5);
    sh->tags[NGX_HTTP_TOKENGUARD_LABELS].len = 5;

    shm_zone->data = sh;
    ngx_http_tokenguard_counters_sh = sh;

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

    ngx_shmtx_lock(&ngx_http_tokenguard_counters_pool->mutex);

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

    ngx_shmtx_unlock(&ngx_http_tokenguard_counters_pool->mutex);

    return i < NGX_HTTP_TOKENGUARD_LABELS ? &labels[i]
                                          : &labels[NGX_HTTP_TOKENGUARD_LABELS];
}


void
ngx_http_tokenguard_counters_request(ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_uint_t                       i;
    ngx_http_tokenguard_label_t     *l;
    ngx_http_tokenguard_counters_t  *sh = ngx_http_tokenguard_counters_sh;

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

    if (ctx->routing.rerouted && ctx->routing.tag.len
        && (ctx->budget.reserved_user || ctx->open))
    {
        l = ngx_http_tokenguard_label(sh->tags, &sh->ntags, &ctx->routing.tag);
        (void) ngx_atomic_fetch_add(&l->a, 1);
    }
}


/* what a reroute saved, by its tag; a counter: a loss adds nothing */
void
ngx_http_tokenguard_counters_saved(ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_http_tokenguard_label_t     *l;
    ngx_http_tokenguard_counters_t  *sh = ngx_http_tokenguard_counters_sh;

    if (sh == NULL || ctx->routing.tag.len == 0 || ctx->resp.saved_usd <= 0) {
        return;
    }

    l = ngx_http_tokenguard_label(sh->tags, &sh->ntags, &ctx->routing.tag);
    (void) ngx_atomic_fetch_add(&l->b, ctx->resp.saved_usd);
}


/* a response that passed a tokenguard_budget_warn threshold */
void
ngx_http_tokenguard_counters_warning(ngx_uint_t threshold)
{
    ngx_http_tokenguard_counters_t  *sh = ngx_http_tokenguard_counters_sh;

    if (sh != NULL && threshold <= 100) {
        (void) ngx_atomic_fetch_add(&sh->warnings[threshold], 1);
    }
}


void
ngx_http_tokenguard_counters_usage(ngx_http_tokenguard_ctx_t *ctx,
    int64_t input, int64_t output, int64_t cost)
{
    ngx_http_tokenguard_label_t     *l;
    ngx_http_tokenguard_counters_t  *sh = ngx_http_tokenguard_counters_sh;

    if (sh == NULL) {
        return;
    }

    l = ngx_http_tokenguard_label(sh->models, &sh->nmodels,
                                  &ctx->routing.model);

    (void) ngx_atomic_fetch_add(&l->a, input);
    (void) ngx_atomic_fetch_add(&l->b, output);
    (void) ngx_atomic_fetch_add(&l->c, cost);
    (void) ngx_atomic_fetch_add(&sh->usage[ctx->resp.estimated ? 1 : 0], 1);
}


void
ngx_http_tokenguard_counters_store(ngx_msec_int_t us, ngx_uint_t error,
    ngx_uint_t expired)
{
    ngx_uint_t                       i;
    ngx_http_tokenguard_counters_t  *sh = ngx_http_tokenguard_counters_sh;

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


ngx_http_tokenguard_counters_t *
ngx_http_tokenguard_counters(void)
{
    return ngx_http_tokenguard_counters_sh;
}
