/*
 * A worker's connection to one Redis node.  See
 * ngx_http_tokenguard_redis.h.
 *
 * Commands are appended to one output buffer in the order they are
 * queued; Redis answers in the same order, so the head of the queue owns
 * the next reply.  A connection starts with its handshake (AUTH, SELECT,
 * SCRIPT LOAD) pipelined ahead of whatever is waiting: nothing waits for
 * a round trip before it is written.  Any failure (connect, I/O, timeout,
 * protocol) fails every queued op with a NULL reply and closes the
 * connection; the next op reconnects, no sooner than a backoff allows.
 */

#include "ngx_http_tokenguard_module.h"
#include "ngx_http_tokenguard_redis.h"

#include <ngx_sha1.h>


#define NGX_HTTP_TOKENGUARD_BACKOFF_MIN  100
#define NGX_HTTP_TOKENGUARD_BACKOFF_MAX  5000


struct ngx_http_tokenguard_redis_node_s {
    ngx_http_tokenguard_redis_conf_t  *conf;
    ngx_addr_t                         addr;
    ngx_str_t                          name;        /* host:port */
    ngx_uint_t                         index;       /* in the cluster's list */
    ngx_http_tokenguard_redis_filter_pt  filter;
    void                              *data;
    ngx_peer_connection_t              peer;
    ngx_connection_t                  *c;
    redisReader                       *reader;
    ngx_queue_t                        ops;        /* in write order */

    u_char                            *out;        /* unsent bytes */
    size_t                             out_pos;
    size_t                             out_len;
    size_t                             out_size;

    ngx_http_tokenguard_redis_tls_t    tls;        /* when conf->tls */

    ngx_msec_t                         backoff;
    ngx_msec_t                         retry_at;    /* no connect before */
    unsigned                           connected:1;
    unsigned                           logged_down:1;
    unsigned                           closing:1;     /* the worker exits */
};


typedef ngx_http_tokenguard_redis_node_t  ngx_http_tokenguard_redis_t;


static void ngx_http_tokenguard_redis_read_handler(ngx_event_t *rev);
static void ngx_http_tokenguard_redis_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_http_tokenguard_redis_connect(
    ngx_http_tokenguard_redis_t *rd);
static ngx_int_t ngx_http_tokenguard_redis_append(
    ngx_http_tokenguard_redis_t *rd, char *cmd, size_t len);
static ngx_int_t ngx_http_tokenguard_redis_flush(
    ngx_http_tokenguard_redis_t *rd);
static void ngx_http_tokenguard_redis_fail(ngx_http_tokenguard_redis_t *rd,
    const char *why);
static void ngx_http_tokenguard_redis_lost(ngx_http_tokenguard_redis_t *rd,
    ssize_t n);
static void ngx_http_tokenguard_redis_ready(ngx_connection_t *c);
static void ngx_http_tokenguard_redis_tls_handler(ngx_connection_t *c,
    ngx_int_t rc);
static void ngx_http_tokenguard_redis_handshake(
    ngx_http_tokenguard_redis_op_t *op, redisReply *reply);
static ngx_int_t ngx_http_tokenguard_redis_queue_handshake(
    ngx_http_tokenguard_redis_t *rd);
static void ngx_http_tokenguard_redis_dispatch(ngx_http_tokenguard_redis_t *rd,
    redisReply *reply);
static ngx_int_t ngx_http_tokenguard_redis_as_eval(
    ngx_http_tokenguard_redis_op_t *op);
static void ngx_http_tokenguard_redis_arm_timer(
    ngx_http_tokenguard_redis_t *rd, ngx_uint_t progress);


u_char  ngx_http_tokenguard_script_sha[TG_SCRIPT_N][41];


/* a monotonic clock in microseconds, for round-trip times */
static ngx_msec_int_t
ngx_http_tokenguard_now_us(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (ngx_msec_int_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


void
ngx_http_tokenguard_scripts_init(void)
{
    u_char      digest[20];
    ngx_uint_t  i;
    ngx_sha1_t  sha1;

    for (i = 0; i < TG_SCRIPT_N; i++) {
        ngx_sha1_init(&sha1);
        ngx_sha1_update(&sha1, tg_scripts[i], ngx_strlen(tg_scripts[i]));
        ngx_sha1_final(digest, &sha1);

        ngx_hex_dump(ngx_http_tokenguard_script_sha[i], digest, 20);
        ngx_http_tokenguard_script_sha[i][40] = '\0';
    }
}


ngx_http_tokenguard_redis_node_t *
ngx_http_tokenguard_redis_node(ngx_http_tokenguard_redis_conf_t *conf,
    ngx_addr_t *addr, ngx_str_t *name)
{
    ngx_http_tokenguard_redis_t  *rd;

    rd = ngx_calloc(sizeof(ngx_http_tokenguard_redis_t) + addr->socklen
                    + name->len, ngx_cycle->log);
    if (rd == NULL) {
        return NULL;
    }

    rd->conf = conf;
    rd->addr.sockaddr = (struct sockaddr *) (rd + 1);
    rd->addr.socklen = addr->socklen;
    ngx_memcpy(rd->addr.sockaddr, addr->sockaddr, addr->socklen);
    rd->name.data = (u_char *) rd->addr.sockaddr + addr->socklen;
    rd->name.len = name->len;
    ngx_memcpy(rd->name.data, name->data, name->len);

    rd->backoff = NGX_HTTP_TOKENGUARD_BACKOFF_MIN;
    ngx_queue_init(&rd->ops);

    /* every node is verified against the configured name (a cluster's
     * nodes share one certificate name) */
    rd->tls.conf = &conf->tls;
    rd->tls.addr = &rd->name;
    rd->tls.host = conf->host;
    rd->tls.timeout = conf->timeout;
    rd->tls.handler = ngx_http_tokenguard_redis_tls_handler;

    return rd;
}


void
ngx_http_tokenguard_redis_node_filter(ngx_http_tokenguard_redis_node_t *rd,
    ngx_http_tokenguard_redis_filter_pt filter, void *data)
{
    rd->filter = filter;
    rd->data = data;
}


ngx_uint_t
ngx_http_tokenguard_redis_node_index(ngx_http_tokenguard_redis_node_t *rd)
{
    return rd->index;
}


void
ngx_http_tokenguard_redis_node_set_index(ngx_http_tokenguard_redis_node_t *rd,
    ngx_uint_t index)
{
    rd->index = index;
}


ngx_str_t *
ngx_http_tokenguard_redis_node_name(ngx_http_tokenguard_redis_node_t *rd)
{
    return &rd->name;
}


ngx_uint_t
ngx_http_tokenguard_redis_node_up(ngx_http_tokenguard_redis_node_t *rd)
{
    return rd->c != NULL || rd->retry_at == 0
           || (ngx_msec_int_t) (rd->retry_at - ngx_current_msec) <= 0;
}


/* the worker exits: fails what is queued, without resuming requests */

void
ngx_http_tokenguard_redis_node_close(ngx_http_tokenguard_redis_node_t *rd)
{
    ngx_queue_t                     *q;
    ngx_http_tokenguard_redis_op_t  *op;

    rd->closing = 1;

    for (q = ngx_queue_head(&rd->ops);
         q != ngx_queue_sentinel(&rd->ops);
         q = ngx_queue_next(q))
    {
        op = ngx_queue_data(q, ngx_http_tokenguard_redis_op_t, queue);

        if (op->handler != ngx_http_tokenguard_redis_handshake) {
            op->data = NULL;
        }
    }

    ngx_http_tokenguard_redis_fail(rd, NULL);

    ngx_free(rd->out);
    rd->out = NULL;

    ngx_http_tokenguard_redis_tls_free(&rd->tls);
}


/*
 * An error reply that says "not now" rather than "never": the write is
 * worth keeping in the journal (the scripts fail on their first write,
 * so a replay cannot count twice).
 */
ngx_uint_t
ngx_http_tokenguard_redis_transient(redisReply *reply)
{
    ngx_uint_t          i;
    static const char  *transient[] = {
        "OOM", "READONLY", "LOADING", "MASTERDOWN", "BUSY", "TRYAGAIN",
        "CLUSTERDOWN", "NOSCRIPT", NULL
    };

    if (reply == NULL || reply->type != REDIS_REPLY_ERROR) {
        return 0;
    }

    for (i = 0; transient[i]; i++) {
        if (ngx_strncmp(reply->str, transient[i],
                        ngx_strlen(transient[i])) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* "EVALSHA sha nkeys": the start of a script's command */
void
ngx_http_tokenguard_redis_evalsha(tg_command_t *c, ngx_int_t script,
    int nkeys)
{
    tg_command_init(c, 0);
    tg_command_str(c, "EVALSHA");
    tg_command_arg(c, ngx_http_tokenguard_script_sha[script], 40);
    tg_command_int(c, nkeys);
}


ngx_http_tokenguard_redis_op_t *
ngx_http_tokenguard_redis_op(ngx_int_t script, tg_command_t *c, size_t size,
    ngx_http_tokenguard_redis_pt handler, void *data)
{
    long                             n;
    ngx_http_tokenguard_redis_op_t  *op;

    op = ngx_calloc(sizeof(ngx_http_tokenguard_redis_op_t) + size,
                    ngx_cycle->log);
    if (op == NULL) {
        tg_command_free(c);
        return NULL;
    }

    n = tg_command_finish(c, &op->cmd);
    if (n < 0) {
        /* out of memory, or past a bound no legal command reaches */
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "tokenguard: a redis command is not sent: %s",
                      tg_command_strerror(c->error));
        ngx_free(op);
        return NULL;
    }

    op->len = n;
    op->script = script;
    op->handler = handler;
    op->data = data;

    return op;
}


ngx_http_tokenguard_redis_op_t *
ngx_http_tokenguard_redis_op_raw(ngx_int_t script, u_char *cmd, size_t len,
    ngx_http_tokenguard_redis_pt handler, void *data)
{
    ngx_http_tokenguard_redis_op_t  *op;

    op = ngx_calloc(sizeof(ngx_http_tokenguard_redis_op_t), ngx_cycle->log);
    if (op == NULL) {
        return NULL;
    }

    /* freed by redisFreeCommand(), which is free() */
    op->cmd = ngx_alloc(len, ngx_cycle->log);
    if (op->cmd == NULL) {
        ngx_free(op);
        return NULL;
    }

    ngx_memcpy(op->cmd, cmd, len);
    op->len = len;
    op->script = script;
    op->handler = handler;
    op->data = data;

    return op;
}


void
ngx_http_tokenguard_redis_free(ngx_http_tokenguard_redis_op_t *op)
{
    redisFreeCommand(op->cmd);
    ngx_free(op);
}


ngx_int_t
ngx_http_tokenguard_redis_node_send(ngx_http_tokenguard_redis_node_t *rd,
    ngx_http_tokenguard_redis_op_t *op)
{
    size_t       pending;
    static char  asking[] = "*1\r\n$6\r\nASKING\r\n";


    if (rd->c == NULL && ngx_http_tokenguard_redis_connect(rd) != NGX_OK) {
        return NGX_ERROR;
    }

    /* ASK: this one command is served by the node importing its slot;
     * its +OK goes to the op's own reply count (see dispatch) */
    pending = rd->out_len - rd->out_pos;

    if (op->asking) {
        if (ngx_http_tokenguard_redis_append(rd, asking, sizeof(asking) - 1)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        op->asking_reply = 1;
    }

    if (ngx_http_tokenguard_redis_append(rd, op->cmd, op->len) != NGX_OK) {
        if (op->asking) {
            /* an ASKING without its command would answer the next op */
            rd->out_len = rd->out_pos + pending;
            op->asking_reply = 0;
        }

        return NGX_ERROR;
    }

    op->start_us = ngx_http_tokenguard_now_us();
    ngx_queue_insert_tail(&rd->ops, &op->queue);

    ngx_http_tokenguard_redis_arm_timer(rd, 0);

    /*
     * The bytes go out from the event loop, once per iteration: what the
     * iteration's requests and timers send shares one write (a lease call
     * and its index writes were five), and a failed write fails the queue,
     * this op included, outside the caller's own request.
     */
    if (rd->connected && !rd->c->write->posted) {
        ngx_post_event(rd->c->write, &ngx_posted_events);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tokenguard_redis_append(ngx_http_tokenguard_redis_t *rd, char *cmd,
    size_t len)
{
    u_char                       *p;
    size_t                        size;

    if (rd->out_pos == rd->out_len) {
        rd->out_pos = 0;
        rd->out_len = 0;
    }

    if (rd->out_len + len > rd->out_size) {
        size = ngx_max(rd->out_size * 2, 16384);

        while (size < rd->out_len - rd->out_pos + len) {
            size *= 2;
        }

        p = ngx_alloc(size, ngx_cycle->log);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (rd->out) {
            ngx_memcpy(p, rd->out + rd->out_pos, rd->out_len - rd->out_pos);
            ngx_free(rd->out);
        }

        rd->out = p;
        rd->out_len -= rd->out_pos;
        rd->out_pos = 0;
        rd->out_size = size;
    }

    ngx_memcpy(rd->out + rd->out_len, cmd, len);
    rd->out_len += len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tokenguard_redis_connect(ngx_http_tokenguard_redis_t *rd)
{
    ngx_int_t                     rc;
    ngx_connection_t             *c;

    /* an exiting worker still serves requests: it reconnects, until its
     * exit_process, when what is left goes to the journal */
    if (rd->conf == NULL || rd->closing || ngx_terminate) {
        return NGX_ERROR;
    }

    if (rd->retry_at && (ngx_msec_int_t) (rd->retry_at - ngx_current_msec)
                        > 0)
    {
        return NGX_ERROR;
    }

    ngx_memzero(&rd->peer, sizeof(ngx_peer_connection_t));

    rd->peer.sockaddr = rd->addr.sockaddr;
    rd->peer.socklen = rd->addr.socklen;
    rd->peer.name = &rd->name;
    rd->peer.get = ngx_event_get_peer;
    rd->peer.log = ngx_cycle->log;
    rd->peer.log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(&rd->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        if (rd->peer.connection) {
            ngx_close_connection(rd->peer.connection);
        }

        rd->retry_at = ngx_current_msec + rd->backoff;
        rd->backoff = ngx_min(rd->backoff * 2,
                              NGX_HTTP_TOKENGUARD_BACKOFF_MAX);

        if (!rd->logged_down) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "tokenguard: cannot connect to redis at \"%V\"",
                          &rd->name);
            rd->logged_down = 1;
        }

        ngx_http_tokenguard_counters_store(-1, 1, 0);

        return NGX_ERROR;
    }

    c = rd->peer.connection;
    c->data = rd;
    c->log = ngx_cycle->log;
    c->read->log = c->log;
    c->write->log = c->log;
    c->read->handler = ngx_http_tokenguard_redis_read_handler;
    c->write->handler = ngx_http_tokenguard_redis_write_handler;

    rd->c = c;
    rd->reader = redisReaderCreate();

    if (rd->reader == NULL) {
        ngx_http_tokenguard_redis_fail(rd, "out of memory");
        return NGX_ERROR;
    }

    if (ngx_http_tokenguard_redis_queue_handshake(rd) != NGX_OK) {
        ngx_http_tokenguard_redis_fail(rd, "out of memory");
        return NGX_ERROR;
    }

    if (rc == NGX_AGAIN) {
        ngx_add_timer(c->write, rd->conf->timeout);
        return NGX_OK;
    }

    /* connected at once (a unix socket): no handler may run from here */
    ngx_post_event(c->write, &ngx_posted_events);

    return NGX_OK;
}


/* AUTH, SELECT and SCRIPT LOAD go first on every new connection */

static ngx_int_t
ngx_http_tokenguard_redis_queue_handshake(ngx_http_tokenguard_redis_t *rd)
{
    ngx_uint_t                       i;
    const char                      *name;
    tg_command_t                     c;
    ngx_http_tokenguard_redis_op_t  *op;

    for (i = 0; i < 2 + TG_SCRIPT_N; i++) {

        tg_command_init(&c, 0);

        if (i == 0) {
            if (rd->conf->password.len == 0) {
                continue;
            }

            name = "AUTH";
            tg_command_str(&c, name);

            if (rd->conf->user.len) {
                tg_command_arg(&c, rd->conf->user.data, rd->conf->user.len);
            }
            tg_command_arg(&c, rd->conf->password.data,
                           rd->conf->password.len);

        } else if (i == 1) {
            if (rd->conf->db == 0) {
                continue;
            }

            name = "SELECT";
            tg_command_str(&c, name);
            tg_command_int(&c, rd->conf->db);

        } else {
            name = "SCRIPT";
            tg_command_str(&c, name);
            tg_command_str(&c, "LOAD");
            tg_command_str(&c, tg_scripts[i - 2]);
        }

        op = ngx_http_tokenguard_redis_op(-1, &c, sizeof(const char *),
                                          ngx_http_tokenguard_redis_handshake,
                                          rd);
        if (op == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(op->payload, &name, sizeof(const char *));

        if (ngx_http_tokenguard_redis_append(rd, op->cmd, op->len) != NGX_OK) {
            ngx_http_tokenguard_redis_free(op);
            return NGX_ERROR;
        }

        op->start_us = ngx_http_tokenguard_now_us();
        ngx_queue_insert_tail(&rd->ops, &op->queue);
    }

    return NGX_OK;
}


static void
ngx_http_tokenguard_redis_handshake(ngx_http_tokenguard_redis_op_t *op,
    redisReply *reply)
{
    const char                   *name;
    ngx_http_tokenguard_redis_t  *rd;

    if (reply == NULL) {
        return;
    }

    rd = op->data;

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_memcpy(&name, op->payload, sizeof(const char *));
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "tokenguard: redis at \"%V\" refused %s: %s",
                      &rd->name, name, reply->str);

        /* after this reply is freed: fail everything and back off */
        rd->retry_at = ngx_current_msec + rd->backoff;
        rd->backoff = ngx_min(rd->backoff * 2,
                              NGX_HTTP_TOKENGUARD_BACKOFF_MAX);
        rd->c->read->error = 1;
        return;
    }

    if (rd->logged_down) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "tokenguard: connected to redis at \"%V\"",
                      &rd->name);
        rd->logged_down = 0;
    }

    rd->backoff = NGX_HTTP_TOKENGUARD_BACKOFF_MIN;
}


static ngx_int_t
ngx_http_tokenguard_redis_flush(ngx_http_tokenguard_redis_t *rd)
{
    ssize_t                       n;
    ngx_connection_t             *c;

    c = rd->c;

    while (rd->out_pos < rd->out_len) {
        n = c->send(c, rd->out + rd->out_pos, rd->out_len - rd->out_pos);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR || n == 0) {
            if (c->ssl == NULL) {   /* TLS said why already */
                ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                              "tokenguard: cannot write to redis at \"%V\"",
                              &rd->name);
            }

            return NGX_ERROR;
        }

        rd->out_pos += n;
    }

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_tokenguard_redis_write_handler(ngx_event_t *wev)
{
    int                           err;
    socklen_t                     len;
    ngx_connection_t             *c;
    ngx_http_tokenguard_redis_t  *rd;

    c = wev->data;
    rd = c->data;

    if (!rd->connected) {
        if (wev->timedout) {
            ngx_http_tokenguard_redis_fail(rd, "connect timed out");
            return;
        }

        err = 0;
        len = sizeof(int);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
            == -1)
        {
            err = ngx_socket_errno;
        }

        if (err) {
            ngx_http_tokenguard_redis_fail(rd, "cannot connect");
            return;
        }

        if (wev->timer_set) {
            ngx_del_timer(wev);
        }

        if (rd->conf->tls.enable) {
            switch (ngx_http_tokenguard_redis_tls_start(&rd->tls, c)) {
            case NGX_AGAIN:
                return;
            case NGX_OK:
                break;
            default:
                ngx_http_tokenguard_redis_tls_handler(c, NGX_ERROR);
                return;
            }
        }

        ngx_http_tokenguard_redis_ready(c);
        return;
    }

    if (ngx_http_tokenguard_redis_flush(rd) != NGX_OK) {
        ngx_http_tokenguard_redis_fail(rd, NULL);
    }
}


/* the TLS handshake ended (tls.c logged a failure) */

static void
ngx_http_tokenguard_redis_tls_handler(ngx_connection_t *c, ngx_int_t rc)
{
    ngx_http_tokenguard_redis_t  *rd = c->data;

    c->read->handler = ngx_http_tokenguard_redis_read_handler;
    c->write->handler = ngx_http_tokenguard_redis_write_handler;

    if (rc != NGX_OK) {
        rd->logged_down = 1;
        ngx_http_tokenguard_counters_store(-1, 1, 0);
        ngx_http_tokenguard_redis_fail(rd, NULL);
        return;
    }

    ngx_http_tokenguard_redis_ready(c);
}


/* connected (and TLS done): the handshake and what waits go out */

static void
ngx_http_tokenguard_redis_ready(ngx_connection_t *c)
{
    ngx_http_tokenguard_redis_t  *rd = c->data;

    rd->connected = 1;

    if (ngx_http_tokenguard_redis_flush(rd) != NGX_OK) {
        ngx_http_tokenguard_redis_fail(rd, NULL);
        return;
    }

    /* TLS may hold bytes already read: not every reply waits for epoll */
    if (c->read->ready) {
        ngx_post_event(c->read, &ngx_posted_events);
    }
}


static void
ngx_http_tokenguard_redis_read_handler(ngx_event_t *rev)
{
    void                         *reply;
    ssize_t                       n;
    ngx_connection_t             *c;
    ngx_http_tokenguard_redis_t  *rd;
    u_char                        buf[16384];

    c = rev->data;
    rd = c->data;

    if (rev->timedout) {
        ngx_http_tokenguard_redis_fail(rd, "timed out");
        return;
    }

    if (rev->error || c->close) {
        /*
         * c->close: nginx is shutting down and closes idle connections;
         * not a failure, the requests still served may connect again
         */
        n = c->close;

        ngx_http_tokenguard_redis_fail(rd, NULL);

        if (n) {
            rd->retry_at = 0;
            rd->backoff = NGX_HTTP_TOKENGUARD_BACKOFF_MIN;
        }

        return;
    }

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_http_tokenguard_redis_lost(rd, n);
            return;
        }

        if (redisReaderFeed(rd->reader, (char *) buf, n) != REDIS_OK) {
            ngx_http_tokenguard_redis_fail(rd, "protocol error");
            return;
        }

        for ( ;; ) {
            if (redisReaderGetReply(rd->reader, &reply) != REDIS_OK) {
                ngx_http_tokenguard_redis_fail(rd, "protocol error");
                return;
            }

            if (reply == NULL) {
                break;
            }

            ngx_http_tokenguard_redis_dispatch(rd, reply);
            freeReplyObject(reply);

            if (rd->c == NULL || rd->c->read->error) {
                /* a handler failed the connection */
                if (rd->c) {
                    ngx_http_tokenguard_redis_fail(rd, NULL);
                }

                return;
            }
        }
    }

    if (rd->c == NULL) {
        return;
    }

    ngx_http_tokenguard_redis_arm_timer(rd, 1);

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_tokenguard_redis_fail(rd, "cannot read");
    }
}


static void
ngx_http_tokenguard_redis_dispatch(ngx_http_tokenguard_redis_t *rd,
    redisReply *reply)
{
    ngx_queue_t                     *q;
    ngx_http_tokenguard_redis_op_t  *op;

    if (ngx_queue_empty(&rd->ops)) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "tokenguard: a redis reply no command waits for");
        rd->c->read->error = 1;
        return;
    }

    q = ngx_queue_head(&rd->ops);
    op = ngx_queue_data(q, ngx_http_tokenguard_redis_op_t, queue);

    if (op->asking_reply) {
        /* ASKING's own +OK (an error there shows in the command's) */
        op->asking_reply = 0;
        return;
    }

    ngx_queue_remove(q);

    if (reply->type == REDIS_REPLY_ERROR && op->script >= 0
        && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0)
    {
        /*
         * The server lost its scripts (SCRIPT FLUSH, a restart).  The op
         * is sent once more as EVAL with the script's text, which no
         * later flush can fail, and which caches the script again for
         * the EVALSHAs behind it.
         */

        if (ngx_http_tokenguard_redis_as_eval(op) == NGX_OK
            && ngx_http_tokenguard_redis_append(rd, op->cmd, op->len) == NGX_OK)
        {
            ngx_queue_insert_tail(&rd->ops, &op->queue);

            if (ngx_http_tokenguard_redis_flush(rd) != NGX_OK) {
                rd->c->read->error = 1;
            }

            return;
        }
    }

    ngx_http_tokenguard_counters_store(
        ngx_http_tokenguard_now_us() - op->start_us,
        reply->type == REDIS_REPLY_ERROR, 0);

    /* a cluster redirect: the filter owns the op from here */
    if (rd->filter && reply->type == REDIS_REPLY_ERROR
        && rd->filter(rd, op, reply) == NGX_OK)
    {
        return;
    }

    op->handler(op, reply);
    ngx_http_tokenguard_redis_free(op);
}


/*
 * Rewrites "*N $7 EVALSHA $40 <sha> args..." as "*N $4 EVAL $len <text>
 * args...": the same arguments, the script carried in the command.
 */

static ngx_int_t
ngx_http_tokenguard_redis_as_eval(ngx_http_tokenguard_redis_op_t *op)
{
    u_char      *p, *end, *cmd, *q;
    size_t       text_len, head_len, rest_len;
    const char  *text;

    static const char  sha_head[] = "$7\r\nEVALSHA\r\n$40\r\n";

    p = (u_char *) op->cmd;
    end = p + op->len;

    q = ngx_strlchr(p, end, '\n');
    if (q == NULL) {
        return NGX_ERROR;
    }

    head_len = q + 1 - p;
    q++;

    if ((size_t) (end - q) < sizeof(sha_head) - 1 + 40 + 2
        || ngx_memcmp(q, sha_head, sizeof(sha_head) - 1) != 0)
    {
        return NGX_ERROR;
    }

    q += sizeof(sha_head) - 1 + 40 + 2;
    rest_len = end - q;

    text = tg_scripts[op->script];
    text_len = ngx_strlen(text);

    /* freed by redisFreeCommand(), which is free() */
    cmd = ngx_alloc(head_len + sizeof("$4\r\nEVAL\r\n$\r\n") - 1
                    + NGX_SIZE_T_LEN + text_len + 2 + rest_len,
                    ngx_cycle->log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(cmd, op->cmd, head_len);
    p = ngx_sprintf(p, "$4\r\nEVAL\r\n$%uz\r\n", text_len);
    p = ngx_cpymem(p, text, text_len);
    *p++ = '\r';
    *p++ = '\n';
    p = ngx_cpymem(p, q, rest_len);

    redisFreeCommand(op->cmd);
    op->cmd = (char *) cmd;
    op->len = p - cmd;
    op->script = -1;

    return NGX_OK;
}


/* while replies are owed, the connection may be silent "timeout" at most */

static void
ngx_http_tokenguard_redis_arm_timer(ngx_http_tokenguard_redis_t *rd,
    ngx_uint_t progress)
{

    if (rd->c == NULL) {
        return;
    }

    if (ngx_queue_empty(&rd->ops)) {
        if (rd->c->read->timer_set) {
            ngx_del_timer(rd->c->read);
        }

        rd->c->idle = 1;
        return;
    }

    rd->c->idle = 0;

    /*
     * The timeout runs from the oldest command without an answer: a new
     * command must not push it back, or steady traffic to a stalled
     * Redis would never time out.
     */
    if (progress || !rd->c->read->timer_set) {
        ngx_add_timer(rd->c->read, rd->conf->timeout);
    }
}


/* a read returned n, 0 or NGX_ERROR: a TLS error has its line already */

static void
ngx_http_tokenguard_redis_lost(ngx_http_tokenguard_redis_t *rd, ssize_t n)
{
    if (n == 0) {
        ngx_http_tokenguard_redis_fail(rd, "closed the connection");
        return;
    }

    if (rd->c->ssl == NULL) {
        ngx_http_tokenguard_redis_fail(rd, "cannot read");
        return;
    }

    rd->logged_down = 1;
    ngx_http_tokenguard_counters_store(-1, 1, 0);
    ngx_http_tokenguard_redis_fail(rd, NULL);
}


/* closes the connection and fails every queued op (why NULL: no log) */

static void
ngx_http_tokenguard_redis_fail(ngx_http_tokenguard_redis_t *rd,
    const char *why)
{
    ngx_queue_t                      ops, *q;
    ngx_http_tokenguard_redis_op_t  *op;

    if (why) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "tokenguard: redis at \"%V\" %s%s", &rd->name,
                      why, ngx_queue_empty(&rd->ops) ? ""
                           : "; failing the commands in flight");
        rd->logged_down = 1;
        ngx_http_tokenguard_counters_store(-1, 1, 0);
    }

    if (rd->c) {
        ngx_http_tokenguard_redis_tls_close(rd->c);
        ngx_close_connection(rd->c);
        rd->c = NULL;
    }

    if (rd->reader) {
        redisReaderFree(rd->reader);
        rd->reader = NULL;
    }

    rd->connected = 0;
    rd->out_pos = 0;
    rd->out_len = 0;

    if (rd->retry_at == 0
        || (ngx_msec_int_t) (rd->retry_at - ngx_current_msec) <= 0)
    {
        rd->retry_at = ngx_current_msec + rd->backoff;
        rd->backoff = ngx_min(rd->backoff * 2,
                              NGX_HTTP_TOKENGUARD_BACKOFF_MAX);
    }

    /* handlers may queue new ops (on a new connection): detach the old */

    if (ngx_queue_empty(&rd->ops)) {
        return;
    }

    ops = rd->ops;
    ops.next->prev = &ops;
    ops.prev->next = &ops;
    ngx_queue_init(&rd->ops);

    while (!ngx_queue_empty(&ops)) {
        q = ngx_queue_head(&ops);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_http_tokenguard_redis_op_t, queue);

        op->handler(op, NULL);
        ngx_http_tokenguard_redis_free(op);
    }
}


/* the default TLS name of the first address, null-terminated for
 * SSL_set_tlsext_host_name */

static ngx_int_t
ngx_http_tokenguard_redis_host(ngx_conf_t *cf,
    ngx_http_tokenguard_redis_conf_t *rc, ngx_url_t *u)
{
    ngx_str_t  s;

    s = u->host;

    if (s.len > 2 && s.data[0] == '[') {     /* [::1]: the address alone */
        s.data++;
        s.len -= 2;
    }

    rc->host.len = u->family == AF_UNIX ? 0 : s.len;
    rc->host.data = ngx_pnalloc(cf->pool, rc->host.len + 1);
    if (rc->host.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(rc->host.data, s.data, rc->host.len);
    rc->host.data[rc->host.len] = '\0';

    return NGX_OK;
}


/* the options that do not go together */

static ngx_int_t
ngx_http_tokenguard_redis_check(ngx_conf_t *cf,
    ngx_http_tokenguard_redis_conf_t *rc, ngx_str_t *name)
{
    if (rc->user.len && rc->password.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" has \"user=\" without \"password=\"",
                           name);
        return NGX_ERROR;
    }

    if (!rc->cluster && rc->seeds->nelts > 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "several addresses in \"%V\" directive are"
                           " cluster seeds: add \"cluster\"", name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * tokenguard_redis ADDR [ADDR ...] [cluster] [tls] [user=NAME]
 * [password=S] [db=N] [timeout=T]: each option its own branch of the loop
 */

char *
ngx_http_tokenguard_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tokenguard_redis_conf_t  *rc;

    ngx_url_t                          u;
    ngx_str_t                         *value, s;
    ngx_uint_t                         i;
    ngx_http_tokenguard_redis_seed_t  *seed;

    rc = (ngx_http_tokenguard_redis_conf_t *) ((char *) conf + cmd->offset);

    if (rc->addr != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rc->seeds = ngx_array_create(cf->pool, 4,
                                 sizeof(ngx_http_tokenguard_redis_seed_t));
    if (rc->seeds == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "cluster") == 0) {
            rc->cluster = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "tls") == 0) {
            rc->tls.enable = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "user=", 5) == 0) {
            rc->user.data = value[i].data + 5;
            rc->user.len = value[i].len - 5;
            if (rc->user.len == 0) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            rc->password.data = value[i].data + 9;
            rc->password.len = value[i].len - 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            rc->db = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (rc->db == NGX_ERROR || rc->db > 1000000) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;
            rc->timeout = ngx_parse_time(&s, 0);
            if (rc->timeout == (ngx_msec_t) NGX_ERROR || rc->timeout == 0) {
                goto invalid;
            }
            continue;
        }

        /* a seed after the first has its port: a word is an option */
        if (ngx_strlchr(value[i].data, value[i].data + value[i].len, '=')
            || (i > 1 && ngx_strlchr(value[i].data,
                                     value[i].data + value[i].len, ':')
                         == NULL))
        {
            goto invalid;
        }

        /* an address: resolved here, at configuration time, never in a
         * worker */

        ngx_memzero(&u, sizeof(ngx_url_t));
        u.url = value[i];
        u.default_port = 6379;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid address \"%V\" in \"%V\" directive"
                               "%s%s", &value[i], &value[0],
                               u.err ? ": " : "", u.err ? u.err : "");
            return NGX_CONF_ERROR;
        }

        if (rc->seeds->nelts == TG_SLOT_NODES_MAX) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "more than %d addresses in \"%V\" directive",
                               TG_SLOT_NODES_MAX, &value[0]);
            return NGX_CONF_ERROR;
        }

        seed = ngx_array_push(rc->seeds);
        if (seed == NULL) {
            return NGX_CONF_ERROR;
        }

        seed->addr = &u.addrs[0];
        seed->name = value[i];

        if (rc->seeds->nelts == 1
            && ngx_http_tokenguard_redis_host(cf, rc, &u) != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (rc->seeds->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no address in \"%V\" directive", &value[0]);
        return NGX_CONF_ERROR;
    }

    seed = rc->seeds->elts;
    rc->addr = seed[0].addr;
    rc->name = seed[0].name;

    if (rc->cluster && rc->db != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"db=\" cannot be used with \"cluster\" in"
                           " \"%V\" directive: Redis Cluster has db 0 only",
                           &value[0]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_tokenguard_redis_check(cf, rc, &value[0]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\" directive,"
                       " expected \"tls\", \"user=NAME\", \"password=\","
                       " \"db=N\", \"timeout=TIME\", \"cluster\" or an"
                       " address",
                       &value[i], &value[0]);
    return NGX_CONF_ERROR;
}
