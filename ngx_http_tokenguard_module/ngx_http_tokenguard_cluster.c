/*
 * Redis Cluster routing, between the store's users (ledger, lease,
 * writes, journal) and the node connections of redis.c.
 *
 * Every op goes to the node that owns its keys' slot (tg_slot.c reads
 * the slot from the RESP, so a journaled command finds its owner when it
 * is replayed).  The map comes from CLUSTER SLOTS, asked of one node at a
 * time, at start, every NGX_HTTP_TOKENGUARD_CLUSTER_REFRESH ms, and after
 * a redirect or a failed node.  The errors that say a command did not
 * run are followed here, so the users never see them: MOVED (the map is
 * updated, the op resent to the new owner), ASK (resent once on the
 * importing node behind ASKING), TRYAGAIN and CLUSTERDOWN (resent after
 * a backoff).  A lost reply (a node gone with the command sent) is not:
 * the command may have run, so the op's handler gets NULL, as without
 * a cluster, and its owner decides (writes are journaled and replayed,
 * which the scripts make idempotent by reservation id; a reservation is
 * refused or let through unreserved, never resent).
 *
 * Without "cluster" there is one node and no filter: this file only
 * passes the op on.
 */

#include "ngx_http_tokenguard_module.h"
#include "ngx_http_tokenguard_redis.h"


/* how often the map is read again, and no more often than MIN */
#define NGX_HTTP_TOKENGUARD_CLUSTER_REFRESH      10000
#define NGX_HTTP_TOKENGUARD_CLUSTER_REFRESH_MIN  100

/* redirects and retries of one op before its handler gets the error */
#define NGX_HTTP_TOKENGUARD_CLUSTER_TRIES        8

/* ops waiting for a TRYAGAIN/CLUSTERDOWN retry */
#define NGX_HTTP_TOKENGUARD_CLUSTER_WAITING_MAX  4096


typedef struct {
    ngx_http_tokenguard_redis_conf_t  *conf;
    ngx_http_tokenguard_redis_node_t  *nodes[TG_SLOT_NODES_MAX];
    ngx_uint_t                         nnodes;
    ngx_uint_t                         next;        /* who answers a refresh */
    tg_slot_map_t                      map;

    ngx_event_t                        refresh;
    ngx_msec_t                         refreshed;   /* the last one asked */
    unsigned                           refreshing:1;

    ngx_queue_t                        waiting;     /* ops to retry */
    ngx_uint_t                         nwaiting;
    ngx_event_t                        retry;
} ngx_http_tokenguard_cluster_t;


static ngx_http_tokenguard_redis_node_t *ngx_http_tokenguard_cluster_node(
    u_char *addr, size_t len);
static ngx_int_t ngx_http_tokenguard_cluster_filter(
    ngx_http_tokenguard_redis_node_t *node,
    ngx_http_tokenguard_redis_op_t *op, redisReply *reply);
static void ngx_http_tokenguard_cluster_refresh(ngx_uint_t soon);
static void ngx_http_tokenguard_cluster_refresh_handler(ngx_event_t *ev);
static void ngx_http_tokenguard_cluster_slots(
    ngx_http_tokenguard_redis_op_t *op, redisReply *reply);
static void ngx_http_tokenguard_cluster_retry_handler(ngx_event_t *ev);
static void ngx_http_tokenguard_cluster_give_up(
    ngx_http_tokenguard_redis_op_t *op);


static ngx_http_tokenguard_cluster_t  ngx_http_tokenguard_cluster;


ngx_int_t
ngx_http_tokenguard_cluster_init_process(ngx_cycle_t *cycle,
    ngx_http_tokenguard_redis_conf_t *conf)
{
    ngx_uint_t                         i;
    ngx_http_tokenguard_cluster_t     *cl = &ngx_http_tokenguard_cluster;
    ngx_http_tokenguard_redis_seed_t  *seed;

    ngx_memzero(cl, sizeof(ngx_http_tokenguard_cluster_t));

    cl->conf = conf;
    tg_slot_map_init(&cl->map);
    ngx_queue_init(&cl->waiting);

    seed = conf->seeds->elts;

    for (i = 0; i < conf->seeds->nelts; i++) {
        cl->nodes[i] = ngx_http_tokenguard_redis_node(conf, seed[i].addr,
                                                      &seed[i].name);
        if (cl->nodes[i] == NULL) {
            return NGX_ERROR;
        }

        ngx_http_tokenguard_redis_node_set_index(cl->nodes[i], i);
        cl->nnodes++;

        if (conf->cluster) {
            ngx_http_tokenguard_redis_node_filter(cl->nodes[i],
                                           ngx_http_tokenguard_cluster_filter,
                                           cl);
        }
    }

    if (!conf->cluster) {
        return NGX_OK;
    }

    cl->refresh.handler = ngx_http_tokenguard_cluster_refresh_handler;
    cl->refresh.data = cl;
    cl->refresh.log = cycle->log;
    cl->refresh.cancelable = 1;

    cl->retry.handler = ngx_http_tokenguard_cluster_retry_handler;
    cl->retry.data = cl;
    cl->retry.log = cycle->log;
    cl->retry.cancelable = 1;

    /* the first map is asked for at once, not at the first request */
    ngx_add_timer(&cl->refresh, 1);

    return NGX_OK;
}


void
ngx_http_tokenguard_cluster_exit_process(void)
{
    ngx_uint_t                       i;
    ngx_queue_t                     *q;
    ngx_http_tokenguard_cluster_t   *cl = &ngx_http_tokenguard_cluster;
    ngx_http_tokenguard_redis_op_t  *op;

    if (cl->conf == NULL) {
        return;
    }

    if (cl->refresh.timer_set) {
        ngx_del_timer(&cl->refresh);
    }

    if (cl->retry.timer_set) {
        ngx_del_timer(&cl->retry);
    }

    /* what waits for a retry is failed, as a node's queue is */
    while (!ngx_queue_empty(&cl->waiting)) {
        q = ngx_queue_head(&cl->waiting);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_http_tokenguard_redis_op_t, queue);
        op->data = NULL;
        op->handler(op, NULL);
        ngx_http_tokenguard_redis_free(op);
    }

    for (i = 0; i < cl->nnodes; i++) {
        ngx_http_tokenguard_redis_node_close(cl->nodes[i]);
        ngx_free(cl->nodes[i]);
    }

    cl->nnodes = 0;
    cl->conf = NULL;
}


/*
 * The node for op: the owner of its slot, else (no map yet, a keyless
 * command) the first node that is up; a wrong guess is MOVED on.
 */
static ngx_http_tokenguard_redis_node_t *
ngx_http_tokenguard_cluster_pick(ngx_http_tokenguard_redis_op_t *op)
{
    ngx_uint_t                      i, n;
    ngx_http_tokenguard_cluster_t  *cl = &ngx_http_tokenguard_cluster;

    if (op->slot >= 0 && cl->map.owner[op->slot] != TG_SLOT_UNKNOWN) {
        return cl->nodes[cl->map.owner[op->slot]];
    }

    for (i = 0; i < cl->nnodes; i++) {
        n = (cl->next + i) % cl->nnodes;

        if (ngx_http_tokenguard_redis_node_up(cl->nodes[n])) {
            return cl->nodes[n];
        }
    }

    return cl->nodes[cl->next % cl->nnodes];
}


/* as ngx_http_tokenguard_redis_node_send(), to the node of op's keys */

ngx_int_t
ngx_http_tokenguard_cluster_send(ngx_http_tokenguard_redis_op_t *op)
{
    ngx_http_tokenguard_cluster_t  *cl = &ngx_http_tokenguard_cluster;

    if (cl->nnodes == 0) {
        return NGX_ERROR;
    }

    if (!cl->conf->cluster) {
        return ngx_http_tokenguard_redis_node_send(cl->nodes[0], op);
    }

    op->slot = tg_slot_of_command(op->cmd, op->len);

    if (op->slot == TG_SLOT_CROSS || op->slot == TG_SLOT_INVALID) {
        /* every command tokenguard builds has one scope's keys */
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "tokenguard: a redis command %s is not sent",
                      op->slot == TG_SLOT_CROSS ? "over several slots"
                                                : "without a readable key");
        return NGX_ERROR;
    }

    if (op->slot >= 0 && cl->map.owner[op->slot] == TG_SLOT_UNKNOWN) {
        ngx_http_tokenguard_cluster_refresh(1);
    }

    if (ngx_http_tokenguard_redis_node_send(
            ngx_http_tokenguard_cluster_pick(op), op)
        != NGX_OK)
    {
        /* that node is down: its slots may have moved to a replica */
        ngx_http_tokenguard_cluster_refresh(1);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * An error reply: a redirect or a "not now" is followed; anything else
 * is the op's handler's.
 */

static ngx_int_t
ngx_http_tokenguard_cluster_filter(ngx_http_tokenguard_redis_node_t *node,
    ngx_http_tokenguard_redis_op_t *op, redisReply *reply)
{
    int                                ask;
    size_t                             alen;
    unsigned                           slot;
    ngx_msec_t                         delay;
    const char                        *addr;
    ngx_http_tokenguard_cluster_t     *cl = &ngx_http_tokenguard_cluster;
    ngx_http_tokenguard_redis_node_t  *to;

    if (tg_slot_redirect(reply->str, reply->len, &ask, &slot, &addr, &alen)
        == 0)
    {
        if (++op->tries > NGX_HTTP_TOKENGUARD_CLUSTER_TRIES) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "tokenguard: redis cluster redirects a command"
                          " too often: %s", reply->str);
            ngx_http_tokenguard_cluster_give_up(op);
            return NGX_OK;
        }

        to = ngx_http_tokenguard_cluster_node((u_char *) addr, alen);
        if (to == NULL) {
            ngx_http_tokenguard_cluster_give_up(op);
            return NGX_OK;
        }

        if (!ask) {
            /* the slot has a new owner: learn it now, the rest later */
            cl->map.owner[slot] = (uint8_t) (ngx_uint_t)
                ngx_http_tokenguard_redis_node_index(to);
            ngx_http_tokenguard_cluster_refresh(1);
        }

        op->asking = ask;

        if (ngx_http_tokenguard_redis_node_send(to, op) != NGX_OK) {
            ngx_http_tokenguard_cluster_give_up(op);
        }

        op->asking = 0;

        return NGX_OK;
    }

    if (ngx_strncmp(reply->str, "TRYAGAIN", 8) != 0
        && ngx_strncmp(reply->str, "CLUSTERDOWN", 11) != 0)
    {
        return NGX_DECLINED;
    }

    /* the command did not run: once more after a pause, a few times */

    if (op->tries >= NGX_HTTP_TOKENGUARD_CLUSTER_TRIES
        || cl->nwaiting >= NGX_HTTP_TOKENGUARD_CLUSTER_WAITING_MAX)
    {
        return NGX_DECLINED;
    }

    op->tries++;
    ngx_queue_insert_tail(&cl->waiting, &op->queue);
    cl->nwaiting++;

    ngx_http_tokenguard_cluster_refresh(1);

    if (!cl->retry.timer_set) {
        delay = ngx_min(50 << ngx_min(op->tries, 5), 1000);
        ngx_add_timer(&cl->retry, delay);
    }

    return NGX_OK;
}


/* an op that cannot be resent: a failed store for its handler */

static void
ngx_http_tokenguard_cluster_give_up(ngx_http_tokenguard_redis_op_t *op)
{
    op->handler(op, NULL);
    ngx_http_tokenguard_redis_free(op);
}


static void
ngx_http_tokenguard_cluster_retry_handler(ngx_event_t *ev)
{
    ngx_queue_t                      ops, *q;
    ngx_http_tokenguard_cluster_t   *cl = ev->data;
    ngx_http_tokenguard_redis_op_t  *op;

    if (ngx_queue_empty(&cl->waiting)) {
        return;
    }

    ops = cl->waiting;
    ops.next->prev = &ops;
    ops.prev->next = &ops;
    ngx_queue_init(&cl->waiting);
    cl->nwaiting = 0;

    while (!ngx_queue_empty(&ops)) {
        q = ngx_queue_head(&ops);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_http_tokenguard_redis_op_t, queue);

        if (ngx_http_tokenguard_redis_node_send(
                ngx_http_tokenguard_cluster_pick(op), op)
            != NGX_OK)
        {
            ngx_http_tokenguard_cluster_give_up(op);
        }
    }
}


/*
 * The node at "ip:port" (a MOVED target, a CLUSTER SLOTS entry), known
 * or new; NULL if the address is no numeric one or the bound is reached.
 */

static ngx_http_tokenguard_redis_node_t *
ngx_http_tokenguard_cluster_node(u_char *addr, size_t len)
{
    u_char                             buf[NGX_SOCKADDR_STRLEN + 8], *colon;
    ngx_str_t                          name, *known;
    ngx_uint_t                         i;
    ngx_addr_t                         a;
    ngx_pool_t                        *pool;
    ngx_http_tokenguard_cluster_t     *cl = &ngx_http_tokenguard_cluster;
    ngx_http_tokenguard_redis_node_t  *node;

    /*
     * Redis writes an IPv6 node unbracketed ("fd00::5:6379", in MOVED and
     * ASK too), which ngx_parse_addr_port() would read as one address
     * with no port: the port is after the last colon, and the name is
     * kept bracketed, as a seed is written
     */
    if (len > 0 && addr[0] != '[' && len < NGX_SOCKADDR_STRLEN
        && ngx_strlchr(addr, addr + len, ':') != NULL)
    {
        for (colon = addr + len - 1; *colon != ':'; colon--) { /* void */ }

        if (ngx_strlchr(addr, colon, ':') != NULL) {
            len = ngx_snprintf(buf, sizeof(buf), "[%*s]%*s",
                               (size_t) (colon - addr), addr,
                               (size_t) (addr + len - colon), colon)
                  - buf;
            addr = buf;
        }
    }

    name.data = addr;
    name.len = len;

    for (i = 0; i < cl->nnodes; i++) {
        known = ngx_http_tokenguard_redis_node_name(cl->nodes[i]);

        if (known->len == len && ngx_strncmp(known->data, addr, len) == 0) {
            return cl->nodes[i];
        }
    }

    if (cl->nnodes == TG_SLOT_NODES_MAX) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "tokenguard: redis cluster names more than %d nodes,"
                      " \"%V\" is not used", TG_SLOT_NODES_MAX, &name);
        return NULL;
    }

    pool = ngx_create_pool(512, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    /* numeric only: a worker never resolves a name */
    if (ngx_parse_addr_port(pool, &a, addr, len) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "tokenguard: redis cluster node \"%V\" is not"
                      " an ip:port", &name);
        ngx_destroy_pool(pool);
        return NULL;
    }

    node = ngx_http_tokenguard_redis_node(cl->conf, &a, &name);
    ngx_destroy_pool(pool);

    if (node == NULL) {
        return NULL;
    }

    ngx_http_tokenguard_redis_node_filter(node,
                                          ngx_http_tokenguard_cluster_filter,
                                          cl);
    ngx_http_tokenguard_redis_node_set_index(node, cl->nnodes);
    cl->nodes[cl->nnodes++] = node;

    return node;
}


/* reads the map again: now (soon) or at the next period */

static void
ngx_http_tokenguard_cluster_refresh(ngx_uint_t soon)
{
    ngx_msec_t                      wait;
    ngx_http_tokenguard_cluster_t  *cl = &ngx_http_tokenguard_cluster;

    if (cl->refreshing || ngx_exiting || ngx_terminate) {
        return;
    }

    wait = soon ? NGX_HTTP_TOKENGUARD_CLUSTER_REFRESH_MIN
                : NGX_HTTP_TOKENGUARD_CLUSTER_REFRESH;

    if (cl->refresh.timer_set) {
        if (!soon) {
            return;
        }

        ngx_del_timer(&cl->refresh);
    }

    ngx_add_timer(&cl->refresh, wait);
}


static void
ngx_http_tokenguard_cluster_refresh_handler(ngx_event_t *ev)
{
    tg_command_t                       c;
    ngx_uint_t                         i;
    ngx_http_tokenguard_cluster_t     *cl = ev->data;
    ngx_http_tokenguard_redis_op_t    *op;
    ngx_http_tokenguard_redis_node_t  *node;

    if (cl->refreshing) {
        return;
    }

    /* each refresh asks the next node: a dead one is not asked twice */
    for (i = 0; i < cl->nnodes; i++) {
        node = cl->nodes[cl->next++ % cl->nnodes];

        if (!ngx_http_tokenguard_redis_node_up(node)) {
            continue;
        }

        tg_command_init(&c, 0);
        tg_command_str(&c, "CLUSTER");
        tg_command_str(&c, "SLOTS");

        op = ngx_http_tokenguard_redis_op(-1, &c, sizeof(void *),
                                          ngx_http_tokenguard_cluster_slots,
                                          cl);
        if (op == NULL) {
            break;
        }

        ngx_memcpy(op->payload, &node, sizeof(void *));
        op->slot = TG_SLOT_NONE;

        if (ngx_http_tokenguard_redis_node_send(node, op) == NGX_OK) {
            cl->refreshing = 1;
            cl->refreshed = ngx_current_msec;
            return;
        }

        ngx_http_tokenguard_redis_free(op);
    }

    ngx_http_tokenguard_cluster_refresh(1);
}


/*
 * CLUSTER SLOTS: [[start, end, [host, port, id ...], replica ...] ...];
 * only the master of each range is used.  A reply that does not read is
 * dropped whole: the old map stays.
 */

static void
ngx_http_tokenguard_cluster_slots(ngx_http_tokenguard_redis_op_t *op,
    redisReply *reply)
{
    u_char                             buf[NGX_SOCKADDR_STRLEN + 8], *p;
    size_t                             i, hlen;
    redisReply                        *r, *m;
    tg_slot_map_t                      map;
    ngx_str_t                         *from_name;
    ngx_http_tokenguard_cluster_t     *cl = &ngx_http_tokenguard_cluster;
    ngx_http_tokenguard_redis_node_t  *node, *from;

    cl->refreshing = 0;

    if (op->data == NULL) {
        return;
    }

    ngx_http_tokenguard_cluster_refresh(reply == NULL
                                        || reply->type != REDIS_REPLY_ARRAY);

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return;
    }

    ngx_memcpy(&from, op->payload, sizeof(void *));
    from_name = ngx_http_tokenguard_redis_node_name(from);

    tg_slot_map_init(&map);

    for (i = 0; i < reply->elements; i++) {
        r = reply->element[i];

        if (r->type != REDIS_REPLY_ARRAY || r->elements < 3
            || r->element[0]->type != REDIS_REPLY_INTEGER
            || r->element[1]->type != REDIS_REPLY_INTEGER
            || r->element[2]->type != REDIS_REPLY_ARRAY
            || r->element[2]->elements < 2
            || r->element[2]->element[0]->type != REDIS_REPLY_STRING
            || r->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
        {
            goto invalid;
        }

        m = r->element[2];
        hlen = m->element[0]->len;

        if (hlen == 0 || (hlen == 1 && m->element[0]->str[0] == '?')) {
            /* the answering node's own host */
            /* the port is after the last colon ("[::1]:7001") */
            for (hlen = from_name->len;
                 hlen > 0 && from_name->data[hlen - 1] != ':';
                 hlen--)
            { /* void */ }

            hlen = hlen ? hlen - 1 : 0;
            p = ngx_snprintf(buf, sizeof(buf), "%*s:%i", hlen,
                             from_name->data, m->element[1]->integer);

        } else {
            if (hlen > NGX_SOCKADDR_STRLEN) {
                goto invalid;
            }

            p = ngx_snprintf(buf, sizeof(buf), "%*s:%i", hlen,
                             m->element[0]->str, m->element[1]->integer);
        }

        node = ngx_http_tokenguard_cluster_node(buf, p - buf);
        if (node == NULL) {
            continue;
        }

        if (tg_slot_map_set(&map, r->element[0]->integer,
                            r->element[1]->integer,
                            ngx_http_tokenguard_redis_node_index(node))
            != 0)
        {
            goto invalid;
        }
    }

    ngx_memcpy(&cl->map, &map, sizeof(tg_slot_map_t));

    return;

invalid:

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "tokenguard: redis at \"%V\" sent a CLUSTER SLOTS reply"
                  " that does not read; the slot map is kept", from_name);
}
