/*
 * Budget leases: each worker holds a slice of a scope's headroom and
 * admits requests against it without a round trip to Redis.
 *
 * A slice is a record in the scope's reservations, so Redis counts it as
 * reserved and every cap stays exact across any number of workers and
 * instances.  Locally a slice has three parts: what it was granted, the
 * worst cases of the requests admitted and still running ("flight"),
 * and what requests settled since spent ("spent", with the counters to
 * add, "pairs").  One call of the LEASE script (core/tg_scripts.c) adds
 * the spend and sets the slice to what is in flight plus a fresh spare
 * sized to the scope's recent rate; calls are made when a request does
 * not fit, once half of a slice's room is gone, every flush interval
 * while a slice has spend or spare, and to give the slice back once the
 * scope is idle.  A call nobody waits for keeps part of the room (the
 * new slice has it whatever the reply says), and requests are admitted
 * from that part while the call is out; a waiting request's call keeps
 * none, so the others wait with it.
 *
 * A call that fails leaves the slice as it was in Redis, and the next
 * call sets it right; its spend goes to the journal (replays count once,
 * by batch id).  A worker that dies leaves its slice to expire like a
 * reservation; one that exits journals its spend and the slice's
 * removal.  After a removal the scope takes a new id, so a late replay
 * never removes a slice granted later.
 */

#include "ngx_http_tokenguard_module.h"
#include "tg_keys.h"


/*
 * The tick calls the slices whose flush is due: short, so that each tick
 * has few of them (at 100 ms, 1,000 users flushed each second made one
 * tick in ten send ~100 calls at once, and a p99 tail of several ms)
 */
#define NGX_HTTP_TOKENGUARD_LEASE_TICK   20       /* ms */
#define NGX_HTTP_TOKENGUARD_RECALL       3000     /* ms: slices come back */
#define NGX_HTTP_TOKENGUARD_LEASE_MAX    65536    /* scopes per worker */
#define NGX_HTTP_TOKENGUARD_REMEMBER_MS  (7 * 86400 * 1000LL)

/* a rate scaled up to a flush interval stays exact in Lua's doubles */
#define NGX_HTTP_TOKENGUARD_WANT_MAX     ((int64_t) 1 << 40)

/*
 * Spend fields one lease call carries at most (a field is at most
 * NGX_HTTP_TOKENGUARD_FIELD_MAX bytes): far below TG_COMMAND_MAX; the
 * rest wait for the next call
 */
#define NGX_HTTP_TOKENGUARD_LEASE_PAIRS  1024
#define NGX_HTTP_TOKENGUARD_FIELD_MAX    (sizeof("reroute:->:saved_usd")     \
                                          + 2 * TG_MODEL_MAX + 64)


typedef struct {
    u_char                      *name;          /* ngx_alloc()ed */
    size_t                       len;
    int64_t                      delta;
} ngx_http_tokenguard_pair_t;


/* the fields every settle adds, in the order it adds them */
#define NGX_HTTP_TOKENGUARD_SETTLE_FIELDS  9

typedef struct {
    ngx_http_tokenguard_pair_t  *elts;
    ngx_uint_t                   nelts;
    ngx_uint_t                   nalloc;
    /*
     * where the last settle's fields are: a scope's requests mostly use
     * one model and category, so most settles only add to these
     */
    ngx_uint_t                   hint[NGX_HTTP_TOKENGUARD_SETTLE_FIELDS];
    unsigned                     hinted:1;
} ngx_http_tokenguard_pairs_t;


struct ngx_http_tokenguard_lease_s {
    ngx_str_node_t               sn;            /* key: the scope prefix */
    ngx_queue_t                  queue;         /* every slice, for ticks */
    char                         scope;
    ngx_str_t                    name;
    ngx_str_t                    shown;     /* name, %XX-escaped: logs */
    size_t                       prefix_len;
    int64_t                      caps[NGX_HTTP_TOKENGUARD_CAPS];
    ngx_msec_t                   ttl;

    u_char                       id[1 + TG_ID_LEN + 1];
    ngx_uint_t                   batch;

    /* usd, tokens, requests */
    int64_t                      slice[3];
    int64_t                      flight[3];
    int64_t                      spent[3];
    int64_t                      admitted[3];   /* since the last call */
    int64_t                      keep[3];       /* room the call keeps */
    int64_t                      low[3];        /* room that calls early */
    ngx_http_tokenguard_pairs_t  pairs;
    ngx_http_tokenguard_pairs_t  sent_pairs;
    u_char                       sent_batch[64];

    ngx_uint_t                   inflight;      /* requests admitted */
    ngx_uint_t                   refs;          /* requests pointing here */
    /* each cap (the order of NGX_HTTP_TOKENGUARD_CAPS) as of the last
     * call, and its use by the others (-1: no such cap) */
    int64_t                      limit[NGX_HTTP_TOKENGUARD_CAPS];
    int64_t                      used[NGX_HTTP_TOKENGUARD_CAPS];
    ngx_msec_t                   last_call;
    ngx_msec_t                   last_active;
    ngx_msec_t                   retry_at;
    ngx_msec_t                   wait_since;
    time_t                       indexed;       /* minute, write_index() */
    time_t                       day;           /* of the last call */

    ngx_queue_t                  waiters;       /* of ctx->lease.queue */
    ngx_event_t                  flush;         /* the spend's next call */
    ngx_http_tokenguard_ctx_t   *needy;         /* the call carries its need */

    unsigned                     busy:1;
    unsigned                     retry:1;
    unsigned                     known:1;       /* a reply was seen */
    unsigned                     give:1;        /* recalled: keep none */

    /* a slice per active user: the key prefix takes only its own size */
    u_char                       prefix[];
};


typedef struct {
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  all;
    ngx_uint_t                   count;
    long long                    recalls;       /* tg:recalls, last seen */
    unsigned                     polling:1;
    unsigned                     polled:1;
    ngx_event_t                  tick;
    ngx_http_tokenguard_main_conf_t  *conf;
} ngx_http_tokenguard_leases_t;


static ngx_int_t ngx_http_tokenguard_lease_try(ngx_http_tokenguard_ctx_t *ctx);
static void ngx_http_tokenguard_lease_call(ngx_http_tokenguard_lease_t *l,
    ngx_http_tokenguard_ctx_t *needy, ngx_uint_t mode);
static void ngx_http_tokenguard_lease_lost(ngx_http_tokenguard_lease_t *l);
static void ngx_http_tokenguard_lease_fail_waiters(
    ngx_http_tokenguard_lease_t *l);
static void ngx_http_tokenguard_lease_reset(ngx_http_tokenguard_lease_t *l);
static void ngx_http_tokenguard_lease_tick(ngx_event_t *ev);
static void ngx_http_tokenguard_lease_flush(ngx_event_t *ev);
static void ngx_http_tokenguard_lease_arm(ngx_http_tokenguard_lease_t *l);
static ngx_uint_t ngx_http_tokenguard_lease_spare(
    ngx_http_tokenguard_lease_t *l);
static void ngx_http_tokenguard_lease_recall(void);
static void ngx_http_tokenguard_lease_ignore(
    ngx_http_tokenguard_redis_op_t *op, redisReply *reply);
static void ngx_http_tokenguard_lease_poll(void);


static ngx_http_tokenguard_leases_t  ngx_http_tokenguard_leases;


/* "L" and 128 random bits: slices and their batches never collide */
static ngx_int_t
ngx_http_tokenguard_lease_new_id(ngx_http_tokenguard_lease_t *l)
{
    if (tg_id_new((char *) l->id + 1) != 0) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                      "tokenguard: no random bytes for a lease id");
        return NGX_ERROR;
    }

    l->id[0] = 'L';

    return NGX_OK;
}


/* ---- the spend counters waiting for a flush ---- */


/* at: the field's index, if not NULL */
static ngx_int_t
ngx_http_tokenguard_pairs_add(ngx_http_tokenguard_pairs_t *pairs,
    u_char *name, size_t len, int64_t delta, ngx_uint_t *at)
{
    ngx_uint_t                   i;
    ngx_http_tokenguard_pair_t  *p, *elts;

    for (i = 0; i < pairs->nelts; i++) {
        p = &pairs->elts[i];

        if (p->len == len && ngx_memcmp(p->name, name, len) == 0) {
            p->delta += delta;

            if (at) {
                *at = i;
            }

            return NGX_OK;
        }
    }

    if (pairs->nelts == pairs->nalloc) {
        elts = ngx_alloc((pairs->nalloc ? 2 * pairs->nalloc : 16)
                         * sizeof(ngx_http_tokenguard_pair_t),
                         ngx_cycle->log);
        if (elts == NULL) {
            return NGX_ERROR;
        }

        if (pairs->nelts) {
            ngx_memcpy(elts, pairs->elts,
                       pairs->nelts * sizeof(ngx_http_tokenguard_pair_t));
        }

        ngx_free(pairs->elts);
        pairs->elts = elts;
        pairs->nalloc = pairs->nalloc ? 2 * pairs->nalloc : 16;
    }

    p = &pairs->elts[pairs->nelts];

    p->name = ngx_alloc(len, ngx_cycle->log);
    if (p->name == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p->name, name, len);
    p->len = len;
    p->delta = delta;

    if (at) {
        *at = pairs->nelts;
    }

    pairs->nelts++;

    return NGX_OK;
}


/* the pairs past the first "keep" of "from" go to the end of "to" */
static ngx_int_t
ngx_http_tokenguard_pairs_move(ngx_http_tokenguard_pairs_t *from,
    ngx_uint_t keep, ngx_http_tokenguard_pairs_t *to)
{
    ngx_uint_t                   n, size;
    ngx_http_tokenguard_pair_t  *elts;

    if (from->nelts <= keep) {
        return NGX_OK;
    }

    n = from->nelts - keep;
    from->hinted = 0;

    if (to->nelts + n > to->nalloc) {
        size = ngx_max(2 * to->nalloc, to->nelts + n);

        elts = ngx_alloc(size * sizeof(ngx_http_tokenguard_pair_t),
                         ngx_cycle->log);
        if (elts == NULL) {
            return NGX_ERROR;
        }

        if (to->nelts) {
            ngx_memcpy(elts, to->elts,
                       to->nelts * sizeof(ngx_http_tokenguard_pair_t));
        }

        ngx_free(to->elts);
        to->elts = elts;
        to->nalloc = size;
    }

    /* the names change hands, they are not copied */
    ngx_memcpy(&to->elts[to->nelts], &from->elts[keep],
               n * sizeof(ngx_http_tokenguard_pair_t));
    to->nelts += n;
    from->nelts = keep;

    return NGX_OK;
}


static void
ngx_http_tokenguard_pairs_clear(ngx_http_tokenguard_pairs_t *pairs)
{
    ngx_uint_t  i;

    for (i = 0; i < pairs->nelts; i++) {
        ngx_free(pairs->elts[i].name);
    }

    pairs->nelts = 0;
    pairs->hinted = 0;
}


/* "model:" + model + ":usd", as the SETTLE script names its fields */
#define ngx_http_tokenguard_pairs_field(pairs, head, mid, tail, delta, at)  \
    ngx_http_tokenguard_pairs_field_n(pairs, head, sizeof(head) - 1, mid,   \
                                      tail, sizeof(tail) - 1, delta, at)

static ngx_int_t
ngx_http_tokenguard_pairs_field_n(ngx_http_tokenguard_pairs_t *pairs,
    const char *head, size_t hlen, ngx_str_t *mid, const char *tail,
    size_t tlen, int64_t delta, ngx_uint_t *at)
{
    u_char  *p, buf[NGX_HTTP_TOKENGUARD_FIELD_MAX];

    if (hlen + mid->len + tlen > sizeof(buf)) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "tokenguard: a spend field of %uz bytes is not"
                      " counted", hlen + mid->len + tlen);
        return NGX_ERROR;
    }

    /* on every settle: copies, not a printf */
    p = ngx_cpymem(buf, head, hlen);
    p = ngx_cpymem(p, mid->data, mid->len);
    p = ngx_cpymem(p, tail, tlen);

    return ngx_http_tokenguard_pairs_add(pairs, buf, p - buf, delta, at);
}


/*
 * Whether the hinted fields are this request's: the names are made of
 * fixed heads and tails, so "model:" M ":usd" names the model's three
 * and "cat:" C ":usd" the category's two.
 */
static ngx_uint_t
ngx_http_tokenguard_pairs_hit(ngx_http_tokenguard_pairs_t *pairs,
    ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_str_t                   *s;
    ngx_http_tokenguard_pair_t  *p;

    if (!pairs->hinted) {
        return 0;
    }

    s = &ctx->routing.model;
    p = &pairs->elts[pairs->hint[4]];

    if (p->len != s->len + sizeof("model::usd") - 1
        || ngx_memcmp(p->name + sizeof("model:") - 1, s->data, s->len) != 0)
    {
        return 0;
    }

    s = &ctx->routing.category;
    p = &pairs->elts[pairs->hint[7]];

    return p->len == s->len + sizeof("cat::usd") - 1
           && ngx_memcmp(p->name + sizeof("cat:") - 1, s->data, s->len) == 0;
}


/* what one settled request adds: the fields of the SETTLE script */
static ngx_int_t
ngx_http_tokenguard_pairs_settle(ngx_http_tokenguard_pairs_t *pairs,
    ngx_http_tokenguard_ctx_t *ctx, int64_t usd, int64_t tin, int64_t tout)
{
    u_char                      *p, buf[2 * TG_MODEL_MAX + sizeof("->")];
    int64_t                      v[NGX_HTTP_TOKENGUARD_SETTLE_FIELDS];
    ngx_str_t                    rr;
    ngx_int_t                    rc;
    ngx_uint_t                   i, *at;
    ngx_http_tokenguard_pair_t  *elts;

    /* usd, tokens_in, tokens_out, requests; the model's; the category's */
    v[0] = usd;
    v[1] = tin;
    v[2] = tout;
    v[3] = 1;
    v[4] = usd;
    v[5] = tin;
    v[6] = tout;
    v[7] = usd;
    v[8] = 1;

    if (ngx_http_tokenguard_pairs_hit(pairs, ctx)) {
        elts = pairs->elts;

        for (i = 0; i < NGX_HTTP_TOKENGUARD_SETTLE_FIELDS; i++) {
            elts[pairs->hint[i]].delta += v[i];
        }

        rc = NGX_OK;

    } else {
        at = pairs->hint;
        pairs->hinted = 0;

        rc = ngx_http_tokenguard_pairs_add(pairs, (u_char *) "usd", 3, v[0],
                                           &at[0]);
        rc |= ngx_http_tokenguard_pairs_add(pairs, (u_char *) "tokens_in", 9,
                                            v[1], &at[1]);
        rc |= ngx_http_tokenguard_pairs_add(pairs, (u_char *) "tokens_out",
                                            10, v[2], &at[2]);
        rc |= ngx_http_tokenguard_pairs_add(pairs, (u_char *) "requests", 8,
                                            v[3], &at[3]);

        rc |= ngx_http_tokenguard_pairs_field(pairs, "model:",
                                              &ctx->routing.model, ":usd",
                                              v[4], &at[4]);
        rc |= ngx_http_tokenguard_pairs_field(pairs, "model:",
                                              &ctx->routing.model,
                                              ":tokens_in", v[5], &at[5]);
        rc |= ngx_http_tokenguard_pairs_field(pairs, "model:",
                                              &ctx->routing.model,
                                              ":tokens_out", v[6], &at[6]);
        rc |= ngx_http_tokenguard_pairs_field(pairs, "cat:",
                                              &ctx->routing.category, ":usd",
                                              v[7], &at[7]);
        rc |= ngx_http_tokenguard_pairs_field(pairs, "cat:",
                                              &ctx->routing.category,
                                              ":requests", v[8], &at[8]);

        /* every index is set only when every field was added */
        pairs->hinted = rc == NGX_OK;
    }

    if (ctx->routing.rerouted) {
        rc |= ngx_http_tokenguard_pairs_add(pairs, (u_char *) "rerouted", 8,
                                            1, NULL);

        /* both names are at most TG_MODEL_MAX: this never truncates */
        p = ngx_snprintf(buf, sizeof(buf), "%V->%V", &ctx->in.model_requested,
                         &ctx->routing.model);
        rr.data = buf;
        rr.len = p - buf;

        rc |= ngx_http_tokenguard_pairs_field(pairs, "reroute:", &rr,
                                              ":requests", 1, NULL);
        rc |= ngx_http_tokenguard_pairs_field(pairs, "reroute:", &rr,
                                              ":saved_usd",
                                              ctx->resp.saved_usd, NULL);

        rc |= ngx_http_tokenguard_pairs_add(pairs, (u_char *) "saved_usd", 9,
                                            ctx->resp.saved_usd, NULL);

        rc |= ngx_http_tokenguard_pairs_field(pairs, "route:",
                                              &ctx->routing.tag,
                                              ":requests", 1, NULL);
        rc |= ngx_http_tokenguard_pairs_field(pairs, "route:",
                                              &ctx->routing.tag,
                                              ":saved_usd",
                                              ctx->resp.saved_usd, NULL);
    }

    if (ctx->resp.estimated) {
        rc |= ngx_http_tokenguard_pairs_add(pairs, (u_char *) "estimated", 9,
                                            1, NULL);
    }

    return rc == NGX_OK ? NGX_OK : NGX_ERROR;
}


/* ---- the table of slices ---- */


/* the scope's slice, if any; key (its data is prefix) and hash for more */
static ngx_http_tokenguard_lease_t *
ngx_http_tokenguard_lease_find(char scope, ngx_str_t *name, ngx_str_t *key,
    u_char *prefix, uint32_t *hash)
{
    key->len = tg_key_prefix(scope, (char *) name->data, name->len,
                             (char *) prefix);
    key->data = prefix;

    if (key->len == 0) {
        return NULL;
    }

    *hash = ngx_crc32_short(key->data, key->len);

    return (ngx_http_tokenguard_lease_t *)
               ngx_str_rbtree_lookup(&ngx_http_tokenguard_leases.rbtree, key,
                                     *hash);
}


static ngx_http_tokenguard_lease_t *
ngx_http_tokenguard_lease_new(char scope, ngx_str_t *name, ngx_str_t *key,
    uint32_t hash, ngx_http_tokenguard_loc_conf_t *tlcf)
{
    u_char                        *prefix;
    int64_t                       *caps;
    ngx_http_tokenguard_lease_t   *l;
    ngx_http_tokenguard_leases_t  *ls = &ngx_http_tokenguard_leases;

    prefix = key->data;
    caps = scope == TG_SCOPE_USER ? tlcf->user_caps : tlcf->team_caps;

    if (ls->count >= NGX_HTTP_TOKENGUARD_LEASE_MAX) {
        return NULL;
    }

    l = ngx_calloc(sizeof(ngx_http_tokenguard_lease_t) + key->len,
                   ngx_cycle->log);
    if (l == NULL) {
        return NULL;
    }

    /* the name and, after it, as log lines show it */
    l->name.data = ngx_alloc(4 * name->len, ngx_cycle->log);
    if (l->name.data == NULL) {
        ngx_free(l);
        return NULL;
    }

    ngx_memcpy(l->name.data, name->data, name->len);
    l->name.len = name->len;
    l->shown.data = l->name.data + name->len;
    l->shown.len = tg_key_escape((char *) name->data, name->len,
                                 (char *) l->shown.data);
    l->scope = scope;
    ngx_memcpy(l->prefix, prefix, key->len);
    l->prefix_len = key->len;
    ngx_memcpy(l->caps, caps, sizeof(l->caps));
    l->ttl = tlcf->reservation_ttl;
    l->last_call = ngx_current_msec;
    l->last_active = ngx_current_msec;
    ngx_queue_init(&l->waiters);
    l->flush.handler = ngx_http_tokenguard_lease_flush;
    l->flush.data = l;
    l->flush.log = ngx_cycle->log;
    l->flush.cancelable = 1;

    if (ngx_http_tokenguard_lease_new_id(l) != NGX_OK) {
        /* the request reserves on its own */
        ngx_free(l->name.data);
        ngx_free(l);
        return NULL;
    }

    l->sn.str.data = l->prefix;
    l->sn.str.len = l->prefix_len;
    l->sn.node.key = hash;
    ngx_rbtree_insert(&ls->rbtree, &l->sn.node);
    ngx_queue_insert_tail(&ls->all, &l->queue);
    ls->count++;

    return l;
}


/*
 * The slice of the request's scope i (0 user, 1 team), new if there is
 * none, NULL if this request reserves on its own.  The request keeps a
 * reference (the tick frees no slice a request points to), so the
 * status read and the reservation look the scope up once.
 */
static ngx_http_tokenguard_lease_t *
ngx_http_tokenguard_lease_get(ngx_http_tokenguard_ctx_t *ctx, ngx_uint_t i,
    ngx_http_tokenguard_loc_conf_t *tlcf)
{
    char                          scope;
    int64_t                      *caps;
    uint32_t                      hash;
    ngx_str_t                     key, *name;
    u_char                        prefix[TG_KEY_PREFIX_MAX];
    ngx_http_tokenguard_lease_t  *l;

    scope = i ? TG_SCOPE_TEAM : TG_SCOPE_USER;
    caps = i ? tlcf->team_caps : tlcf->user_caps;
    l = ctx->lease.slice[i];

    if (l == NULL) {
        name = i ? &ctx->caller.team : &ctx->caller.user;

        l = ngx_http_tokenguard_lease_find(scope, name, &key, prefix, &hash);
        if (key.len == 0) {
            return NULL;
        }

        if (l == NULL) {
            l = ngx_http_tokenguard_lease_new(scope, name, &key, hash, tlcf);
            if (l == NULL) {
                return NULL;
            }
        }

        ctx->lease.slice[i] = l;
        l->refs++;
    }

    /* a location with other caps reserves per request */
    return ngx_memcmp(l->caps, caps, sizeof(l->caps)) == 0 ? l : NULL;
}


static void
ngx_http_tokenguard_lease_free(ngx_http_tokenguard_lease_t *l)
{
    ngx_http_tokenguard_leases_t  *ls = &ngx_http_tokenguard_leases;

    if (l->flush.timer_set) {
        ngx_del_timer(&l->flush);
    }

    ngx_rbtree_delete(&ls->rbtree, &l->sn.node);
    ngx_queue_remove(&l->queue);
    ls->count--;

    ngx_http_tokenguard_pairs_clear(&l->pairs);
    ngx_http_tokenguard_pairs_clear(&l->sent_pairs);
    ngx_free(l->pairs.elts);
    ngx_free(l->sent_pairs.elts);
    ngx_free(l->name.data);
    ngx_free(l);
}


/* what the slice has left in dimension d: neither in flight nor spent */
static ngx_inline int64_t
ngx_http_tokenguard_lease_left(ngx_http_tokenguard_lease_t *l, ngx_uint_t d)
{
    return l->slice[d] - l->flight[d] - l->spent[d];
}


static ngx_uint_t
ngx_http_tokenguard_lease_fits(ngx_http_tokenguard_lease_t *l, int64_t *w)
{
    ngx_uint_t  d;

    if (l->retry) {
        return 0;
    }

    /* while a call is out, the slice is the room that call keeps */
    for (d = 0; d < 3; d++) {
        if (w[d] > ngx_http_tokenguard_lease_left(l, d)) {
            return 0;
        }
    }

    return 1;
}


/*
 * The room of dimension d the caps leave this slice by the last reply:
 * at most the slice's own, and none once the others' use and ours reach
 * a cap (one set lower since is known from that reply on)
 */
static int64_t
ngx_http_tokenguard_lease_room(ngx_http_tokenguard_lease_t *l, ngx_uint_t d)
{
    int64_t     room, head;
    ngx_uint_t  k;

    if (!l->known) {
        return 0;
    }

    room = ngx_http_tokenguard_lease_left(l, d);

    for (k = 2 * d; k < 2 * d + 2; k++) {
        if (l->limit[k] < 0) {
            continue;
        }

        head = l->limit[k] - l->used[k] - l->flight[d] - l->spent[d];
        room = ngx_min(room, head);
    }

    return ngx_max(room, 0);
}


/*
 * The slice's room fell below half of what the last reply left: a call
 * now, which admissions need not wait for, likely answers before it is
 * gone.  Near a cap a reply leaves little room, and so calls no sooner.
 */
static ngx_uint_t
ngx_http_tokenguard_lease_low(ngx_http_tokenguard_lease_t *l)
{
    ngx_uint_t  d;

    if (l->retry || !l->known) {
        return 0;
    }

    for (d = 0; d < 3; d++) {
        if (ngx_http_tokenguard_lease_left(l, d) < l->low[d]) {
            return 1;
        }
    }

    return 0;
}


/* ---- admission ---- */


/*
 * NGX_DECLINED: this request reserves on its own (leases off, sandbox, a
 * scope whose slice is held under other caps); NGX_OK: answered now;
 * NGX_AGAIN: it waits for a slice, and ctx->budget.done(ctx) follows.
 */
ngx_int_t
ngx_http_tokenguard_lease_reserve(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_http_tokenguard_lease_t      *user, *team;
    ngx_http_tokenguard_loc_conf_t   *tlcf;
    ngx_http_tokenguard_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tokenguard_module);

    if (!tmcf->lease || ctx->caller.sandbox
        || ngx_http_tokenguard_leases.conf == NULL)
    {
        return NGX_DECLINED;
    }

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);

    user = ngx_http_tokenguard_lease_get(ctx, 0, tlcf);
    if (user == NULL) {
        return NGX_DECLINED;
    }

    team = NULL;

    if (ctx->caller.team.len) {
        team = ngx_http_tokenguard_lease_get(ctx, 1, tlcf);
        if (team == NULL) {
            return NGX_DECLINED;
        }
    }

    ctx->lease.worst[0] = ctx->budget.reserve_usd;
    ctx->lease.worst[1] = ctx->budget.reserve_tokens;
    ctx->lease.worst[2] = 1;

    return ngx_http_tokenguard_lease_try(ctx);
}


/*
 * Admits if every scope's slice has room (NGX_OK), else waits on the
 * first short (NGX_AGAIN); NGX_OK with store_failed when the store is away.
 */
static ngx_int_t
ngx_http_tokenguard_lease_try(ngx_http_tokenguard_ctx_t *ctx)
{
    int64_t                       rem;
    ngx_uint_t                    i, d, k;
    ngx_http_tokenguard_lease_t  *l;

    for (i = 0; i < 2; i++) {
        l = ctx->lease.slice[i];

        if (l == NULL || ngx_http_tokenguard_lease_fits(l, ctx->lease.worst)) {
            continue;
        }

        if (ngx_queue_empty(&l->waiters)) {
            l->wait_since = ngx_current_msec;
        }

        ngx_queue_insert_tail(&l->waiters, &ctx->lease.queue);
        ctx->lease.waiting = 1;

        if (!l->busy && !l->retry) {
            ngx_http_tokenguard_lease_call(l, ctx, 0);

            if (!l->busy) {
                /* the store is away: answered without it */
                ngx_queue_remove(&ctx->lease.queue);
                ctx->lease.waiting = 0;
                ctx->budget.store_failed = 1;
                return NGX_OK;
            }
        }

        /*
         * the team's slice, short too (a new caller's first request),
         * is called for at once rather than after the user's reply;
         * should it refuse, the request is refused while it waits
         */
        l = i == 0 ? ctx->lease.slice[1] : NULL;

        if (l != NULL && !l->busy && !l->retry
            && ngx_queue_empty(&l->waiters)
            && !ngx_http_tokenguard_lease_fits(l, ctx->lease.worst))
        {
            ngx_http_tokenguard_lease_call(l, ctx, 0);
        }

        return NGX_AGAIN;
    }

    ctx->budget.remaining_usd = -1;

    for (i = 0; i < 2; i++) {
        l = ctx->lease.slice[i];

        if (l == NULL) {
            continue;
        }

        for (d = 0; d < 3; d++) {
            l->flight[d] += ctx->lease.worst[d];
            l->admitted[d] += ctx->lease.worst[d];
        }

        l->inflight++;
        l->last_active = ngx_current_msec;

        if (!l->busy && ngx_http_tokenguard_lease_low(l)) {
            /* the next slice is asked for before this one runs out */
            ngx_http_tokenguard_lease_call(l, NULL, 0);
        }

        /* what the caps leave: everyone else's use, and all of ours */
        for (k = 0; k < 2; k++) {
            if (l->limit[k] < 0 || !l->known) {
                continue;
            }

            rem = l->limit[k] - l->used[k] - l->flight[0]
                  - l->spent[0];
            rem = ngx_max(rem, 0);

            if (ctx->budget.remaining_usd < 0
                || rem < ctx->budget.remaining_usd)
            {
                ctx->budget.remaining_usd = rem;
            }
        }
    }

    ctx->lease.leased = 1;
    ctx->budget.reserved_user = 1;
    ctx->budget.reserved_team = ctx->lease.slice[1] != NULL;

    return NGX_OK;
}


/*
 * The slice of the request's scope i, if this worker was granted one
 * lately; one found is kept for the reservation, as lease_get() does
 */
static ngx_http_tokenguard_lease_t *
ngx_http_tokenguard_lease_fresh(ngx_http_tokenguard_main_conf_t *tmcf,
    ngx_http_tokenguard_ctx_t *ctx, ngx_uint_t i)
{
    uint32_t                      hash;
    ngx_str_t                     key;
    u_char                        prefix[TG_KEY_PREFIX_MAX];
    ngx_http_tokenguard_lease_t  *l;

    l = ctx->lease.slice[i];

    if (l == NULL) {
        l = ngx_http_tokenguard_lease_find(i ? TG_SCOPE_TEAM : TG_SCOPE_USER,
                                   i ? &ctx->caller.team : &ctx->caller.user,
                                   &key, prefix, &hash);
        if (l == NULL) {
            return NULL;
        }

        ctx->lease.slice[i] = l;
        l->refs++;
    }

    if (!l->known || ngx_current_msec - l->last_call > 2 * tmcf->lease_flush)
    {
        return NULL;
    }

    return l;
}


/*
 * The budget>= share (the user's tightest USD cap) and the warning's (the
 * tightest cap of either scope, any unit) from the scopes' slices: each
 * cap's use by the others as of the last call, plus all of ours.  A scope
 * without a fresh slice declines: the STATUS script reads it.  A sandbox
 * request is never admitted from a slice, so its allowance is read there.
 */
ngx_int_t
ngx_http_tokenguard_lease_status(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx)
{
    int64_t                           used, pct;
    ngx_uint_t                        i, k, n;
    ngx_http_tokenguard_lease_t      *l[2];
    ngx_http_tokenguard_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tokenguard_module);

    if (!tmcf->lease || ngx_http_tokenguard_leases.conf == NULL
        || ctx->caller.sandbox)
    {
        return NGX_DECLINED;
    }

    n = ctx->caller.team.len ? 2 : 1;

    for (i = 0; i < n; i++) {
        l[i] = ngx_http_tokenguard_lease_fresh(tmcf, ctx, i);
        if (l[i] == NULL) {
            return NGX_DECLINED;
        }
    }

    ctx->budget.pct = -1;
    ctx->budget.warn_pct = -1;

    for (i = 0; i < n; i++) {
        for (k = 0; k < NGX_HTTP_TOKENGUARD_CAPS; k++) {
            if (l[i]->limit[k] < 0) {
                continue;
            }

            used = l[i]->used[k] + l[i]->flight[k / 2] + l[i]->spent[k / 2];
            pct = 100;

            if (l[i]->limit[k] > 0) {
                pct = ngx_min(used * 100 / l[i]->limit[k], 1000000);
            }

            if (i == 0 && k < 2 && pct > ctx->budget.pct) {
                ctx->budget.pct = (int) pct;
                ctx->budget.pct_day = k;
                ctx->budget.pct_limit = l[i]->limit[k];
                ctx->budget.pct_used = used;
            }

            if (pct > ctx->budget.warn_pct) {
                ctx->budget.warn_pct = (int) pct;
                ctx->budget.warn_cap = k;
                ctx->budget.warn_team = i;
                ctx->budget.warn_limit = l[i]->limit[k];
                ctx->budget.warn_used = used;
            }
        }
    }

    return NGX_OK;
}


/* ---- settling ---- */


void
ngx_http_tokenguard_lease_settle(ngx_http_tokenguard_ctx_t *ctx,
    int64_t usd, int64_t tin, int64_t tout)
{
    ngx_uint_t                    i;
    ngx_http_tokenguard_lease_t  *l;

    if (!ctx->lease.leased) {
        return;
    }

    /* the worst case comes back, what was used is spent */
    ngx_http_tokenguard_lease_release(ctx);

    for (i = 0; i < 2; i++) {
        l = ctx->lease.slice[i];

        if (l == NULL) {
            continue;
        }

        l->spent[0] += usd;
        l->spent[1] += tin + tout;
        l->spent[2] += 1;
        l->last_active = ngx_current_msec;

        if (ngx_http_tokenguard_pairs_settle(&l->pairs, ctx, usd, tin, tout)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_CRIT, ngx_cycle->log, 0,
                          "tokenguard: out of memory, a settle of \"%V\" is"
                          " lost", &l->shown);
        }

        ngx_http_tokenguard_lease_arm(l);
    }
}


/* the request did not go or failed upstream: its worst case comes back */
void
ngx_http_tokenguard_lease_release(ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_uint_t                    i, d;
    ngx_http_tokenguard_lease_t  *l;

    if (!ctx->lease.leased) {
        return;
    }

    ctx->lease.leased = 0;

    for (i = 0; i < 2; i++) {
        l = ctx->lease.slice[i];

        if (l == NULL) {
            continue;
        }

        for (d = 0; d < 3; d++) {
            l->flight[d] -= ctx->lease.worst[d];
        }

        l->inflight--;
    }
}


/* the request is going away: out of any queue, its slice part back */
void
ngx_http_tokenguard_lease_detach(ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_uint_t  i;

    if (ctx->lease.waiting) {
        ngx_queue_remove(&ctx->lease.queue);
        ctx->lease.waiting = 0;
    }

    ngx_http_tokenguard_lease_release(ctx);

    for (i = 0; i < 2; i++) {
        if (ctx->lease.slice[i] == NULL) {
            continue;
        }

        if (ctx->lease.slice[i]->needy == ctx) {
            ctx->lease.slice[i]->needy = NULL;
        }

        ctx->lease.slice[i]->refs--;
        ctx->lease.slice[i] = NULL;
    }
}


/* ---- the LEASE call ---- */


static void
ngx_http_tokenguard_lease_wake(ngx_http_tokenguard_lease_t *l)
{
    ngx_queue_t                 waiters, *q;
    ngx_http_tokenguard_ctx_t  *ctx;

    /* each waiter either goes, or queues again (maybe on another slice) */
    ngx_queue_init(&waiters);

    if (!ngx_queue_empty(&l->waiters)) {
        ngx_queue_add(&waiters, &l->waiters);
        ngx_queue_init(&l->waiters);
    }

    while (!ngx_queue_empty(&waiters)) {
        q = ngx_queue_head(&waiters);
        ngx_queue_remove(q);

        ctx = ngx_queue_data(q, ngx_http_tokenguard_ctx_t, lease.queue);
        ctx->lease.waiting = 0;

        if (ngx_http_tokenguard_lease_try(ctx) == NGX_OK) {
            ctx->budget.done(ctx);
        }
    }
}


static void
ngx_http_tokenguard_lease_fail_waiters(ngx_http_tokenguard_lease_t *l)
{
    ngx_queue_t                *q;
    ngx_http_tokenguard_ctx_t  *ctx;

    while (!ngx_queue_empty(&l->waiters)) {
        q = ngx_queue_head(&l->waiters);
        ngx_queue_remove(q);

        ctx = ngx_queue_data(q, ngx_http_tokenguard_ctx_t, lease.queue);
        ctx->lease.waiting = 0;
        ctx->budget.store_failed = 1;

        ctx->budget.done(ctx);
    }
}


static void
ngx_http_tokenguard_lease_handler(ngx_http_tokenguard_redis_op_t *op,
    redisReply *reply)
{
    int64_t                       room;
    ngx_uint_t                    i, status;
    redisReply                   *e;
    ngx_http_tokenguard_ctx_t    *ctx;
    ngx_http_tokenguard_lease_t  *l = op->data;

    if (l == NULL) {
        /* the worker is exiting: its slices are already given back */
        return;
    }

    l->busy = 0;

    /* the spend settled while the call was out */
    ngx_http_tokenguard_lease_arm(l);

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 20)
    {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "tokenguard: redis refused a budget lease: %s",
                          reply->str);

        } else if (reply) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "tokenguard: unexpected reply type %d to a budget"
                          " lease", reply->type);
        }

        ngx_http_tokenguard_lease_lost(l);
        ngx_http_tokenguard_lease_fail_waiters(l);
        return;
    }

    for (i = 0; i < 20; i++) {
        e = reply->element[i];

        if (i != 9 && e->type != REDIS_REPLY_INTEGER) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "tokenguard: unexpected element %ui in the reply"
                          " to a budget lease", i);
            ngx_http_tokenguard_lease_lost(l);
            ngx_http_tokenguard_lease_fail_waiters(l);
            return;
        }
    }

    if (reply->element[1]->integer > 0) {
        ngx_http_tokenguard_counters_store(-1, 0, reply->element[1]->integer);
    }

    status = reply->element[0]->integer;

    for (i = 0; i < 3; i++) {
        l->slice[i] = reply->element[2 + i]->integer;
    }

    for (i = 0; i < NGX_HTTP_TOKENGUARD_CAPS; i++) {
        e = reply->element[i < 2 ? 5 + 2 * i : 8 + 2 * i];
        l->limit[i] = e->integer;
        l->used[i] = reply->element[i < 2 ? 6 + 2 * i : 9 + 2 * i]->integer;
    }
    l->known = 1;

    /*
     * a room the caps no longer leave (one set lower, a kept room past
     * it) is not admitted from, and goes back with the next call; the
     * next call goes early once half of the room is gone
     */
    ctx = l->needy;
    l->needy = NULL;

    for (i = 0; i < 3; i++) {
        room = ngx_http_tokenguard_lease_room(l, i);
        l->slice[i] = l->flight[i] + l->spent[i] + room;

        /* half of what is left once the waiting request is admitted */
        if (ctx != NULL) {
            room = ngx_max(room - ctx->lease.worst[i], 0);
        }

        l->low[i] = room / 2;
    }

    ngx_http_tokenguard_pairs_clear(&l->sent_pairs);

    if (status == 2) {
        /* other workers hold slices: tell them, wait for them */
        l->retry = 1;
        l->retry_at = ngx_current_msec + NGX_HTTP_TOKENGUARD_LEASE_TICK;
        ngx_http_tokenguard_lease_recall();
        return;
    }

    l->retry = 0;

    if (status == 0 && ctx != NULL && ctx->lease.waiting) {
        e = reply->element[9];

        ngx_queue_remove(&ctx->lease.queue);
        ctx->lease.waiting = 0;

        if (e->type == REDIS_REPLY_STRING) {
            ngx_cpystrn((u_char *) ctx->budget.cap_field, (u_char *) e->str,
                        sizeof(ctx->budget.cap_field));
        }

        ctx->budget.cap_limit = reply->element[10]->integer;
        ctx->budget.cap_used = reply->element[11]->integer;
        ctx->budget.refused_scope = l->scope == TG_SCOPE_TEAM;

        ctx->budget.done(ctx);
    }

    ngx_http_tokenguard_lease_wake(l);

    if (l->give && !l->busy && !l->retry) {
        /* recalled while this call was out */
        if (ngx_http_tokenguard_lease_spare(l)) {
            ngx_http_tokenguard_lease_call(l, NULL, 0);

        } else {
            l->give = 0;
        }
    }
}


/*
 * The call failed: its spend goes to the journal, and no request is
 * admitted from the slice until a call says what it is.
 */
static void
ngx_http_tokenguard_lease_lost(ngx_http_tokenguard_lease_t *l)
{
    ngx_uint_t  d;

    if (l->sent_pairs.nelts) {
        ngx_http_tokenguard_lease_call(l, NULL, 3);
    }

    for (d = 0; d < 3; d++) {
        l->slice[d] = 0;
    }

    l->retry = 0;
    l->known = 0;
    l->needy = NULL;
}


/* after a removal: a new id, an empty slice */
static void
ngx_http_tokenguard_lease_reset(ngx_http_tokenguard_lease_t *l)
{
    ngx_uint_t  d;

    /* on no random bytes the old id stays: this worker's, and dropped */
    (void) ngx_http_tokenguard_lease_new_id(l);

    for (d = 0; d < 3; d++) {
        l->slice[d] = 0;
        l->spent[d] = 0;
    }

    l->retry = 0;
    l->known = 0;
}


/* what a call carries: the spend so far, kept until its reply */
static void
ngx_http_tokenguard_lease_carry(ngx_http_tokenguard_lease_t *l)
{
    ngx_http_tokenguard_pairs_t  swap;

    ngx_http_tokenguard_pairs_clear(&l->sent_pairs);
    swap = l->sent_pairs;
    l->sent_pairs = l->pairs;
    l->pairs = swap;

    /* a bounded call: the fields past the bound wait for the next */
    if (ngx_http_tokenguard_pairs_move(&l->sent_pairs,
                                       NGX_HTTP_TOKENGUARD_LEASE_PAIRS,
                                       &l->pairs)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_CRIT, ngx_cycle->log, 0,
                      "tokenguard: out of memory, a budget lease call of"
                      " \"%V\" carries all of its fields at once",
                      &l->shown);
    }

    l->sent_batch[0] = '\0';

    if (l->sent_pairs.nelts) {
        ngx_snprintf(l->sent_batch, sizeof(l->sent_batch), "%s-%ui%Z",
                     l->id, ++l->batch);
    }
}


/* the LEASE script's command (core/tg_scripts.c names its arguments) */
static void
ngx_http_tokenguard_lease_command(ngx_http_tokenguard_lease_t *l,
    ngx_http_tokenguard_ctx_t *needy, ngx_uint_t mode, tg_command_t *c)
{
    char                              month[8], day[11];
    time_t                            today;
    int64_t                           want[3];
    ngx_uint_t                        i, d;
    ngx_msec_t                        elapsed;
    ngx_http_tokenguard_pairs_t      *pairs;
    ngx_http_tokenguard_main_conf_t  *tmcf;

    static const char  *suffix[] = {
        NULL, NULL, "limits", "resv", "resv:exp", "settled", "leases",
        "recall"
    };

    tmcf = ngx_http_tokenguard_leases.conf;
    pairs = &l->sent_pairs;

    ngx_http_tokenguard_redis_evalsha(c, TG_SCRIPT_LEASE, 8);

    tg_period_month(ngx_time(), month);
    tg_period_day(ngx_time(), day);
    suffix[0] = month;
    suffix[1] = day;

    for (i = 0; i < 8; i++) {
        tg_command_key(c, (char *) l->prefix, l->prefix_len, suffix[i]);
    }

    tg_command_int(c, (int64_t) ngx_time() * 1000);
    tg_command_int(c, l->ttl);
    tg_command_str(c, (char *) l->id);
    tg_command_str(c, (char *) l->sent_batch);
    tg_command_str(c, mode == 0 ? "lease" : mode == 1 ? "drop" : "spend");

    /*
     * spare for about two flush intervals at the recent rate (worst
     * cases admitted, or spend when requests cost more than their worst
     * case, per flush interval, measured over a quarter interval at
     * least so that a burst is not taken for a rate), and for a few more
     * requests like the one waiting
     */
    today = ngx_time() / 86400;
    elapsed = ngx_current_msec - l->last_call;
    elapsed = ngx_max(elapsed, tmcf->lease_flush / 4);

    for (d = 0; d < 3; d++) {
        want[d] = 0;
        l->keep[d] = 0;

        if (mode) {
            continue;
        }

        want[d] = 2 * ngx_max(l->admitted[d], l->spent[d]);

        if (elapsed < tmcf->lease_flush) {
            want[d] = ngx_min(want[d], NGX_HTTP_TOKENGUARD_WANT_MAX)
                      * (int64_t) tmcf->lease_flush / (int64_t) elapsed;
        }

        if (needy) {
            want[d] = ngx_max(want[d], 4 * needy->lease.worst[d]);

        } else if (!l->give && l->day == today) {
            /* room priced by the last call's periods: none in new ones */
            l->keep[d] = ngx_min(ngx_http_tokenguard_lease_room(l, d),
                                 want[d]);
        }
    }

    l->give = 0;

    if (!mode) {
        l->day = today;
    }

    /*
     * the slice is set to what is in flight and the room kept, the spent
     * part is spend
     */
    for (d = 0; d < 3; d++) {
        tg_command_int(c, mode ? 0 : l->flight[d] + l->keep[d]);
    }

    for (d = 0; d < 3; d++) {
        tg_command_int(c, needy && !mode ? needy->lease.worst[d] : 0);
    }

    for (d = 0; d < 3; d++) {
        tg_command_int(c, want[d] - l->keep[d]);

        if (mode != 3) {
            l->admitted[d] = 0;
            l->spent[d] = 0;
        }
    }

    for (i = 0; i < NGX_HTTP_TOKENGUARD_CAPS; i++) {
        tg_command_int(c, l->caps[i]);
    }

    tg_command_int(c, tmcf->retention_month);
    tg_command_int(c, tmcf->retention_day);
    tg_command_int(c, NGX_HTTP_TOKENGUARD_REMEMBER_MS);

    /* a request waiting this long is refused for good */
    tg_command_int(c, l->retry && ngx_current_msec - l->wait_since
                                 >= NGX_HTTP_TOKENGUARD_RECALL
                                    + 2 * NGX_HTTP_TOKENGUARD_LEASE_TICK
                     ? 0 : NGX_HTTP_TOKENGUARD_RECALL);

    for (i = 0; i < pairs->nelts; i++) {
        tg_command_arg(c, pairs->elts[i].name, pairs->elts[i].len);
        tg_command_int(c, pairs->elts[i].delta);
    }
}


/*
 * mode: 0 a call whose reply sets the new slice; 1 add the spend and
 * remove the slice (idle, exit); 3 add the spend a failed call carried
 * (sent_pairs).  Modes 1 and 3 never wait for their reply: they are
 * writes, journaled when the store is away.
 */
static void
ngx_http_tokenguard_lease_call(ngx_http_tokenguard_lease_t *l,
    ngx_http_tokenguard_ctx_t *needy, ngx_uint_t mode)
{
    ngx_uint_t                       d;
    tg_command_t                     c;
    ngx_http_tokenguard_redis_op_t  *op;

    if (mode != 3) {
        ngx_http_tokenguard_lease_carry(l);
    }

    ngx_http_tokenguard_lease_command(l, needy, mode, &c);

    if (l->sent_pairs.nelts) {
        ngx_http_tokenguard_write_index(l->scope, &l->name, &l->indexed);
    }

    l->last_call = ngx_current_msec;

    if (mode) {
        ngx_http_tokenguard_write_command(TG_SCRIPT_LEASE, &c);
        ngx_http_tokenguard_pairs_clear(&l->sent_pairs);

        if (mode == 1 && l->pairs.nelts) {
            /* the fields one call could not carry */
            ngx_http_tokenguard_lease_call(l, NULL, 1);
        }

        return;
    }

    op = ngx_http_tokenguard_redis_op(TG_SCRIPT_LEASE, &c, 0,
                                      ngx_http_tokenguard_lease_handler, l);
    if (op == NULL) {
        ngx_log_error(NGX_LOG_CRIT, ngx_cycle->log, 0,
                      "tokenguard: a budget lease call of \"%V\" is lost",
                      &l->shown);
        ngx_http_tokenguard_lease_lost(l);
        return;
    }

    l->needy = needy;

    if (ngx_http_tokenguard_cluster_send(op) != NGX_OK) {
        ngx_http_tokenguard_redis_free(op);

        /* the handler is not called: fail like a lost reply, at once */
        ngx_http_tokenguard_lease_lost(l);
        return;
    }

    l->busy = 1;

    /*
     * until the reply, requests are admitted from the room the call
     * keeps: the new slice has it whatever the reply says, and so does
     * the old one in Redis should the call fail
     */
    for (d = 0; d < 3; d++) {
        l->slice[d] = l->flight[d] + l->keep[d];
    }
}


/* ---- the worker's timer: retries, flushes, renewals, idle slices ---- */


static ngx_uint_t
ngx_http_tokenguard_lease_spare(ngx_http_tokenguard_lease_t *l)
{
    ngx_uint_t  d;

    for (d = 0; d < 3; d++) {
        if (ngx_http_tokenguard_lease_left(l, d) > 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * Each slice's spend is flushed by a timer of its own, one flush
 * interval after its last call: the calls of a thousand scopes are spread
 * over the interval, where a tick's walk sent those due in its period at
 * once (a burst of Lua calls in Redis every tick, and a p99 tail of about
 * a millisecond at a quarter of a plain proxy's peak).
 */
static void
ngx_http_tokenguard_lease_arm(ngx_http_tokenguard_lease_t *l)
{
    ngx_msec_t  elapsed, flush;

    if (l->flush.timer_set || l->pairs.nelts == 0 || ngx_exiting) {
        return;
    }

    flush = ngx_http_tokenguard_leases.conf->lease_flush;
    elapsed = ngx_current_msec - l->last_call;

    ngx_add_timer(&l->flush, elapsed < flush ? flush - elapsed : 1);
}


static void
ngx_http_tokenguard_lease_flush(ngx_event_t *ev)
{
    ngx_http_tokenguard_lease_t  *l = ev->data;

    if (l->pairs.nelts == 0 || ngx_exiting || ngx_terminate) {
        /* sent by another call, or journaled at the exit */
        return;
    }

    if (l->busy || l->retry || !ngx_queue_empty(&l->waiters)) {
        /* a call is out or due (the tick sends it): its reply arms this */
        return;
    }

    if (ngx_current_msec - l->last_call
        < ngx_http_tokenguard_leases.conf->lease_flush)
    {
        /* a call went since this was armed */
        ngx_http_tokenguard_lease_arm(l);
        return;
    }

    ngx_http_tokenguard_lease_call(l, NULL, 0);

    /* the fields one call could not carry */
    ngx_http_tokenguard_lease_arm(l);
}


static void
ngx_http_tokenguard_lease_tick(ngx_event_t *ev)
{
    ngx_msec_t                        now;
    ngx_queue_t                      *q, *next;
    ngx_http_tokenguard_ctx_t        *ctx;
    ngx_http_tokenguard_lease_t      *l;
    ngx_http_tokenguard_leases_t     *ls = &ngx_http_tokenguard_leases;
    ngx_http_tokenguard_main_conf_t  *tmcf = ls->conf;

    now = ngx_current_msec;

    for (q = ngx_queue_head(&ls->all);
         q != ngx_queue_sentinel(&ls->all);
         q = next)
    {
        next = ngx_queue_next(q);
        l = ngx_queue_data(q, ngx_http_tokenguard_lease_t, queue);

        if (l->busy) {
            continue;
        }

        if (l->retry && (ngx_msec_int_t) (now - l->retry_at) < 0) {
            continue;
        }

        if (!ngx_queue_empty(&l->waiters)) {
            ctx = ngx_queue_data(ngx_queue_head(&l->waiters),
                                 ngx_http_tokenguard_ctx_t, lease.queue);
            ngx_http_tokenguard_lease_call(l, ctx, 0);

            if (!l->busy) {
                ngx_http_tokenguard_lease_fail_waiters(l);
            }

            continue;
        }

        l->retry = 0;

        if (l->inflight == 0 && now - l->last_active >= tmcf->lease_idle) {
            if (l->known || l->pairs.nelts) {
                ngx_http_tokenguard_lease_call(l, NULL, 1);
                ngx_http_tokenguard_lease_reset(l);
            }

            if (l->refs == 0) {
                ngx_http_tokenguard_lease_free(l);
            }

            continue;
        }

        if (l->known && now - l->last_call >= l->ttl / 3) {
            ngx_http_tokenguard_lease_call(l, NULL, 0);
        }
    }

    if (ls->count) {
        ngx_http_tokenguard_lease_poll();
    }

    if (!ngx_exiting && !ngx_terminate) {
        ngx_add_timer(ev, NGX_HTTP_TOKENGUARD_LEASE_TICK);
    }
}


void
ngx_http_tokenguard_lease_init_process(ngx_cycle_t *cycle,
    ngx_http_tokenguard_main_conf_t *tmcf)
{
    ngx_http_tokenguard_leases_t  *ls = &ngx_http_tokenguard_leases;

    if (!tmcf->lease) {
        return;
    }

    ngx_rbtree_init(&ls->rbtree, &ls->sentinel, ngx_str_rbtree_insert_value);
    ngx_queue_init(&ls->all);
    ls->conf = tmcf;

    ls->tick.handler = ngx_http_tokenguard_lease_tick;
    ls->tick.log = cycle->log;
    ls->tick.data = cycle;
    ls->tick.cancelable = 1;

    ngx_add_timer(&ls->tick, NGX_HTTP_TOKENGUARD_LEASE_TICK);
}


/* the worker is leaving: its spend and slices go to the journal */
void
ngx_http_tokenguard_lease_exit_process(void)
{
    ngx_queue_t                   *q;
    ngx_http_tokenguard_lease_t   *l;
    ngx_http_tokenguard_leases_t  *ls = &ngx_http_tokenguard_leases;

    if (ls->conf == NULL) {
        return;
    }

    while (!ngx_queue_empty(&ls->all)) {
        q = ngx_queue_head(&ls->all);
        l = ngx_queue_data(q, ngx_http_tokenguard_lease_t, queue);

        /*
         * A call in flight finds no slice when it fails at the store's
         * exit: its spend is sent again now, with its batch id, which
         * counts nothing if the call did land.
         */
        if (l->busy && l->sent_pairs.nelts) {
            ngx_http_tokenguard_lease_call(l, NULL, 3);
        }

        if (l->busy || l->known || l->pairs.nelts) {
            ngx_http_tokenguard_lease_call(l, NULL, 1);
        }

        ngx_http_tokenguard_lease_free(l);
    }
}


/* tokenguard_lease on|off [flush=time] [idle=time] */
char *
ngx_http_tokenguard_lease_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tokenguard_main_conf_t *tmcf = conf;

    ngx_str_t   *value, s;
    ngx_msec_t  *ms;
    ngx_uint_t   i;

    if (tmcf->lease != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        tmcf->lease = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        tmcf->lease = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\" directive, it"
                           " must be \"on\" or \"off\"", &value[1],
                           &value[0]);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "flush=", 6) == 0) {
            ms = &tmcf->lease_flush;
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

        } else if (ngx_strncmp(value[i].data, "idle=", 5) == 0) {
            ms = &tmcf->lease_idle;
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\""
                               " directive", &value[i], &value[0]);
            return NGX_CONF_ERROR;
        }

        *ms = ngx_parse_time(&s, 0);

        if (*ms == (ngx_msec_t) NGX_ERROR || *ms < 100 || *ms > 60000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid time \"%V\" in \"%V\" directive, it"
                               " must be from 100ms to 60s", &value[i],
                               &value[0]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * Recalls: a worker whose request does not fit while others hold slices
 * counts up tg:recalls; every worker reads it each tick, and on a change
 * calls for each slice with spare, which the recalled scope gets back.
 */

static void
ngx_http_tokenguard_lease_recall(void)
{
    tg_command_t                     c;
    ngx_http_tokenguard_redis_op_t  *op;

    tg_command_init(&c, 0);
    tg_command_str(&c, "INCR");
    tg_command_str(&c, "tg:recalls");

    op = ngx_http_tokenguard_redis_op(-1, &c, 0,
                                      ngx_http_tokenguard_lease_ignore, NULL);
    if (op == NULL) {
        return;
    }

    if (ngx_http_tokenguard_cluster_send(op) != NGX_OK) {
        /* the store is away: there is nothing to give back to */
        ngx_http_tokenguard_redis_free(op);
    }
}


/* a recall is a hint for now: one lost, or replayed later, helps no one */
static void
ngx_http_tokenguard_lease_ignore(ngx_http_tokenguard_redis_op_t *op,
    redisReply *reply)
{
}


static void
ngx_http_tokenguard_lease_poll_handler(ngx_http_tokenguard_redis_op_t *op,
    redisReply *reply)
{
    long long                      n;
    ngx_queue_t                   *q;
    ngx_http_tokenguard_lease_t   *l;
    ngx_http_tokenguard_leases_t  *ls = &ngx_http_tokenguard_leases;

    ls->polling = 0;

    if (reply == NULL) {
        return;
    }

    if (reply->type == REDIS_REPLY_STRING) {
        n = strtoll(reply->str, NULL, 10);

    } else if (reply->type == REDIS_REPLY_NIL) {
        n = 0;

    } else {
        return;
    }

    if (ls->polled && n != ls->recalls) {
        for (q = ngx_queue_head(&ls->all);
             q != ngx_queue_sentinel(&ls->all);
             q = ngx_queue_next(q))
        {
            l = ngx_queue_data(q, ngx_http_tokenguard_lease_t, queue);

            if (l->busy) {
                /* its reply may grant spare: that goes back at once */
                l->give = 1;
                continue;
            }

            if (!l->retry && ngx_http_tokenguard_lease_spare(l)) {
                l->give = 1;
                ngx_http_tokenguard_lease_call(l, NULL, 0);
            }
        }
    }

    ls->recalls = n;
    ls->polled = 1;
}


static void
ngx_http_tokenguard_lease_poll(void)
{
    tg_command_t                     c;
    ngx_http_tokenguard_redis_op_t  *op;

    if (ngx_http_tokenguard_leases.polling) {
        return;
    }

    tg_command_init(&c, 0);
    tg_command_str(&c, "GET");
    tg_command_str(&c, "tg:recalls");

    op = ngx_http_tokenguard_redis_op(-1, &c, 0,
                                      ngx_http_tokenguard_lease_poll_handler,
                                      NULL);
    if (op == NULL) {
        return;
    }

    if (ngx_http_tokenguard_cluster_send(op) != NGX_OK) {
        ngx_http_tokenguard_redis_free(op);
        return;
    }

    ngx_http_tokenguard_leases.polling = 1;
}
