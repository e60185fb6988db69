/*
 * The journal: writes (ngx_http_tokenguard_write.c) that could not reach
 * Redis (it was down, or the connection failed with the write in flight)
 * wait in shared memory, shared by all workers and kept across reloads,
 * and are replayed when Redis answers again.  Entries are the commands'
 * own RESP bytes.  Settles carry their reservation id and lease spend its
 * batch id, so a replay of a write that did land after all is ignored by
 * its script.
 */

#include "ngx_http_tokenguard_module.h"


#define NGX_HTTP_TOKENGUARD_REPLAY_EVERY  1000
#define NGX_HTTP_TOKENGUARD_REPLAY_BATCH  64


typedef struct {
    ngx_queue_t      queue;
    ngx_uint_t       count;
    ngx_uint_t       lost;
} ngx_http_tokenguard_journal_sh_t;


typedef struct {
    ngx_queue_t      queue;
    ngx_int_t        script;
    size_t           len;
    u_char           data[1];
} ngx_http_tokenguard_journal_entry_t;


static void ngx_http_tokenguard_journal_replay(ngx_event_t *ev);


static ngx_slab_pool_t                   *ngx_http_tokenguard_journal_pool;
static ngx_http_tokenguard_journal_sh_t  *ngx_http_tokenguard_journal_sh;
static ngx_event_t                        ngx_http_tokenguard_replay_event;


ngx_int_t
ngx_http_tokenguard_journal_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t                   *shpool;
    ngx_http_tokenguard_journal_sh_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    ngx_http_tokenguard_journal_pool = shpool;

    if (data) {
        /* a reload: the entries of the old cycle are still to replay */
        shm_zone->data = data;
        ngx_http_tokenguard_journal_sh = data;
        return NGX_OK;
    }

    sh = ngx_slab_alloc(shpool, sizeof(ngx_http_tokenguard_journal_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_init(&sh->queue);
    sh->count = 0;
    sh->lost = 0;

    shpool->data = sh;
    shm_zone->data = sh;
    ngx_http_tokenguard_journal_sh = sh;

    shpool->log_nomem = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_tokenguard_journal_add(ngx_int_t script, char *cmd, size_t len)
{
    ngx_slab_pool_t                      *shpool;
    ngx_http_tokenguard_journal_sh_t     *sh;
    ngx_http_tokenguard_journal_entry_t  *e;

    shpool = ngx_http_tokenguard_journal_pool;
    sh = ngx_http_tokenguard_journal_sh;

    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&shpool->mutex);

    e = ngx_slab_alloc_locked(shpool,
                        sizeof(ngx_http_tokenguard_journal_entry_t) + len);

    if (e == NULL) {
        sh->lost++;
        ngx_shmtx_unlock(&shpool->mutex);

        ngx_log_error(NGX_LOG_CRIT, ngx_cycle->log, 0,
                      "tokenguard: the journal is full, a ledger write is"
                      " lost; raise tokenguard_journal_size");
        return NGX_ERROR;
    }

    e->script = script;
    e->len = len;
    ngx_memcpy(e->data, cmd, len);

    ngx_queue_insert_tail(&sh->queue, &e->queue);

    if (sh->count++ == 0) {
        /* once an outage, not once a request */
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "tokenguard: ledger writes are journaled until redis"
                      " is back");
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return NGX_OK;
}


ngx_uint_t
ngx_http_tokenguard_journal_pending(void)
{
    return ngx_http_tokenguard_journal_sh
           ? ngx_http_tokenguard_journal_sh->count : 0;
}


void
ngx_http_tokenguard_journal_init_process(ngx_cycle_t *cycle)
{
    ngx_event_t  *ev = &ngx_http_tokenguard_replay_event;

    ev->handler = ngx_http_tokenguard_journal_replay;
    ev->log = cycle->log;
    ev->data = cycle;
    ev->cancelable = 1;

    ngx_add_timer(ev, NGX_HTTP_TOKENGUARD_REPLAY_EVERY);
}


static void ngx_http_tokenguard_journal_replayed(
    ngx_http_tokenguard_redis_op_t *op, redisReply *reply);


static void
ngx_http_tokenguard_journal_replay(ngx_event_t *ev)
{
    ngx_uint_t                            n;
    ngx_queue_t                          *q;
    ngx_slab_pool_t                      *shpool;
    ngx_http_tokenguard_redis_op_t       *ops[NGX_HTTP_TOKENGUARD_REPLAY_BATCH];
    ngx_http_tokenguard_journal_sh_t     *sh;
    ngx_http_tokenguard_journal_entry_t  *e;

    if (ngx_exiting || ngx_terminate) {
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_TOKENGUARD_REPLAY_EVERY);

    shpool = ngx_http_tokenguard_journal_pool;
    sh = ngx_http_tokenguard_journal_sh;

    if (sh == NULL || sh->count == 0) {
        return;
    }

    /* take a batch out under the lock; send it outside */

    n = 0;

    ngx_shmtx_lock(&shpool->mutex);

    while (n < NGX_HTTP_TOKENGUARD_REPLAY_BATCH
           && !ngx_queue_empty(&sh->queue))
    {
        q = ngx_queue_head(&sh->queue);
        e = ngx_queue_data(q, ngx_http_tokenguard_journal_entry_t, queue);

        ops[n] = ngx_http_tokenguard_redis_op_raw(e->script, e->data, e->len,
                                   ngx_http_tokenguard_journal_replayed, NULL);
        if (ops[n] == NULL) {
            break;
        }

        ngx_queue_remove(q);
        sh->count--;
        ngx_slab_free_locked(shpool, e);
        n++;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    while (n) {
        n--;

        if (ngx_http_tokenguard_cluster_send(ops[n]) != NGX_OK) {
            (void) ngx_http_tokenguard_journal_add(ops[n]->script,
                                                   ops[n]->cmd, ops[n]->len);
            ngx_http_tokenguard_redis_free(ops[n]);
        }
    }
}


static void
ngx_http_tokenguard_journal_replayed(ngx_http_tokenguard_redis_op_t *op,
    redisReply *reply)
{
    if (reply == NULL || ngx_http_tokenguard_redis_transient(reply)) {
        (void) ngx_http_tokenguard_journal_add(op->script, op->cmd, op->len);
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "tokenguard: redis refused a journaled write: %s",
                      reply->str);
    }
}
