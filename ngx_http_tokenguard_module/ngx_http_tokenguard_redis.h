/*
 * A Redis client on nginx's event loop: nginx owns the socket (connect,
 * timers, reconnect), hiredis only formats commands and parses replies.
 * One connection per node per worker (one node without a cluster,
 * ngx_http_tokenguard_cluster.c picks the node); every command is
 * pipelined on its node's connection and replies are matched to commands
 * in order.  Its life is one sequence per connection: connect, the
 * handshake (AUTH, SELECT, SCRIPT LOAD) pipelined ahead, ready.
 */

#ifndef _NGX_HTTP_TOKENGUARD_REDIS_H_INCLUDED_
#define _NGX_HTTP_TOKENGUARD_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include <hiredis/hiredis.h>

#include "tg_command.h"
#include "tg_scripts.h"
#include "tg_slot.h"
#include "ngx_http_tokenguard_redis_tls.h"


typedef struct ngx_http_tokenguard_redis_op_s  ngx_http_tokenguard_redis_op_t;
typedef struct ngx_http_tokenguard_redis_node_s
    ngx_http_tokenguard_redis_node_t;

/*
 * Called once per op: reply is NULL when the store failed (connection
 * lost, timeout, an error reply from the handshake).  op->data is NULL
 * when the request that sent it is gone.
 */
typedef void (*ngx_http_tokenguard_redis_pt)(
    ngx_http_tokenguard_redis_op_t *op, redisReply *reply);


struct ngx_http_tokenguard_redis_op_s {
    ngx_queue_t                    queue;
    ngx_http_tokenguard_redis_pt   handler;
    void                          *data;
    ngx_int_t                      script;      /* for NOSCRIPT, or -1 */
    char                          *cmd;         /* RESP, malloc()ed */
    size_t                         len;
    ngx_msec_int_t                 start_us;   /* when it was queued */
    ngx_int_t                      slot;       /* cluster: its keys' slot */
    ngx_uint_t                     tries;      /* cluster: redirects, retries */
    unsigned                       asking:1;   /* send ASKING ahead of it */
    unsigned                       asking_reply:1;
    u_char                         payload[];   /* the handler's own */
};


/*
 * An error reply on a node, before the op's handler sees it: NGX_OK if
 * the filter took the op (resent it elsewhere, or answered and freed it).
 */
typedef ngx_int_t (*ngx_http_tokenguard_redis_filter_pt)(
    ngx_http_tokenguard_redis_node_t *node,
    ngx_http_tokenguard_redis_op_t *op, redisReply *reply);


typedef struct {
    ngx_addr_t                    *addr;       /* the first seed */
    ngx_str_t                      name;
    ngx_array_t                   *seeds;      /* of .._redis_seed_t */
    ngx_str_t                      host;        /* of ADDR, null-terminated */
    ngx_str_t                      user;        /* the ACL user, or empty */
    ngx_str_t                      password;
    ngx_int_t                      db;
    ngx_msec_t                     timeout;
    ngx_flag_t                     cluster;
    ngx_http_tokenguard_redis_tls_conf_t  tls;
} ngx_http_tokenguard_redis_conf_t;


typedef struct {
    ngx_addr_t                    *addr;
    ngx_str_t                      name;
} ngx_http_tokenguard_redis_seed_t;


/*
 * A new op with "size" bytes of payload, the command c built (the
 * builder is emptied); NULL, logged, if c failed or memory ran out.
 */
ngx_http_tokenguard_redis_op_t *ngx_http_tokenguard_redis_op(
    ngx_int_t script, tg_command_t *c, size_t size,
    ngx_http_tokenguard_redis_pt handler, void *data);

/* one connection to one Redis node, per worker; NULL: out of memory */
ngx_http_tokenguard_redis_node_t *ngx_http_tokenguard_redis_node(
    ngx_http_tokenguard_redis_conf_t *conf, ngx_addr_t *addr,
    ngx_str_t *name);
void ngx_http_tokenguard_redis_node_filter(
    ngx_http_tokenguard_redis_node_t *node,
    ngx_http_tokenguard_redis_filter_pt filter, void *data);
ngx_uint_t ngx_http_tokenguard_redis_node_index(
    ngx_http_tokenguard_redis_node_t *node);
void ngx_http_tokenguard_redis_node_set_index(
    ngx_http_tokenguard_redis_node_t *node, ngx_uint_t index);
ngx_str_t *ngx_http_tokenguard_redis_node_name(
    ngx_http_tokenguard_redis_node_t *node);
/* connected, or may try to connect now (no backoff pending) */
ngx_uint_t ngx_http_tokenguard_redis_node_up(
    ngx_http_tokenguard_redis_node_t *node);
void ngx_http_tokenguard_redis_node_close(
    ngx_http_tokenguard_redis_node_t *node);

/*
 * NGX_OK: queued, the handler will be called exactly once, never from
 * inside this call.  NGX_ERROR: the node is unavailable now; the handler
 * is not called and the op is still the caller's to free.
 */
ngx_int_t ngx_http_tokenguard_redis_node_send(
    ngx_http_tokenguard_redis_node_t *node,
    ngx_http_tokenguard_redis_op_t *op);

void ngx_http_tokenguard_redis_free(ngx_http_tokenguard_redis_op_t *op);

/* an error reply worth a retry later (OOM, READONLY, LOADING ...) */
ngx_uint_t ngx_http_tokenguard_redis_transient(redisReply *reply);

/* an op from RESP bytes already formatted (a journaled command) */
ngx_http_tokenguard_redis_op_t *ngx_http_tokenguard_redis_op_raw(
    ngx_int_t script, u_char *cmd, size_t len,
    ngx_http_tokenguard_redis_pt handler, void *data);

/* "EVALSHA sha nkeys": the start of a script's command */
void ngx_http_tokenguard_redis_evalsha(tg_command_t *c, ngx_int_t script,
    int nkeys);

/* the SHA1 of each script, hex, for EVALSHA */
extern u_char  ngx_http_tokenguard_script_sha[TG_SCRIPT_N][41];


/* the cluster's routing (ngx_http_tokenguard_cluster.c) */
ngx_int_t ngx_http_tokenguard_cluster_init_process(ngx_cycle_t *cycle,
    ngx_http_tokenguard_redis_conf_t *conf);
void ngx_http_tokenguard_cluster_exit_process(void);

/*
 * NGX_OK: queued on the node of op's keys, the handler will be called
 * exactly once, never from inside this call.  NGX_ERROR: the store is
 * unavailable now; the handler is not called and the op is still the
 * caller's to free.
 */
ngx_int_t ngx_http_tokenguard_cluster_send(ngx_http_tokenguard_redis_op_t *op);

char *ngx_http_tokenguard_redis_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
void ngx_http_tokenguard_scripts_init(void);


#endif /* _NGX_HTTP_TOKENGUARD_REDIS_H_INCLUDED_ */
