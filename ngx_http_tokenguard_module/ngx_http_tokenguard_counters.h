/*
 * The counters behind the Prometheus metrics: a shared memory zone that
 * every worker adds to with atomic operations
 * (ngx_http_tokenguard_counters.c), read by the tokenguard_metrics
 * handler (ngx_http_tokenguard_metrics.c).  Only these two include this
 * header; the functions that add are in ngx_http_tokenguard_module.h.
 */

#ifndef _NGX_HTTP_TOKENGUARD_COUNTERS_H_INCLUDED_
#define _NGX_HTTP_TOKENGUARD_COUNTERS_H_INCLUDED_


#include "ngx_http_tokenguard_module.h"


#define NGX_HTTP_TOKENGUARD_LABELS      32  /* distinct values, then "other" */
#define NGX_HTTP_TOKENGUARD_LABEL_LEN   64

/* the entries of ngx_http_tokenguard_decisions[] and _buckets[] */
#define NGX_HTTP_TOKENGUARD_DECISIONS   14
#define NGX_HTTP_TOKENGUARD_BUCKETS     12


/* latency buckets: the bound in microseconds and as the "le" label */
typedef struct {
    ngx_msec_int_t                us;
    const char                   *le;
} ngx_http_tokenguard_bucket_t;


/* a model's usage (a, b, c) or a route tag's reroutes (a), savings (b) */
typedef struct {
    u_char                        name[NGX_HTTP_TOKENGUARD_LABEL_LEN];
    size_t                        len;
    ngx_atomic_t                  a;        /* tokens in; reroutes */
    ngx_atomic_t                  b;        /* tokens out; micro-USD */
    ngx_atomic_t                  c;        /* cost, micro-USD */
} ngx_http_tokenguard_label_t;


typedef struct {
    ngx_atomic_t                  requests[NGX_HTTP_TOKENGUARD_DECISIONS];
    ngx_atomic_t                  usage[2];     /* provider, estimate */
    ngx_atomic_t                  store_errors;
    ngx_atomic_t                  expired;
    ngx_atomic_t                  warnings[101];    /* by threshold */

    /* the store's latency: per bucket, the +1 past the last bound */
    ngx_atomic_t                  latency[NGX_HTTP_TOKENGUARD_BUCKETS + 1];
    ngx_atomic_t                  latency_count;
    ngx_atomic_t                  latency_sum_us;

    /* the +1 is "other"; slots fill once, under the zone's lock */
    ngx_uint_t                    nmodels;
    ngx_http_tokenguard_label_t   models[NGX_HTTP_TOKENGUARD_LABELS + 1];
    ngx_uint_t                    ntags;
    ngx_http_tokenguard_label_t   tags[NGX_HTTP_TOKENGUARD_LABELS + 1];
} ngx_http_tokenguard_counters_t;


extern const char                          *ngx_http_tokenguard_decisions[];
extern const ngx_http_tokenguard_bucket_t   ngx_http_tokenguard_buckets[];


ngx_http_tokenguard_counters_t *ngx_http_tokenguard_counters(void);


#endif /* _NGX_HTTP_TOKENGUARD_COUNTERS_H_INCLUDED_ */
