/*
 * TLS for a Redis connection: one step of a connection's life, between
 * the TCP connect and the first command (connect -> TLS handshake ->
 * AUTH/SELECT -> ready).  nginx's OpenSSL on nginx's event loop: the
 * handshake never blocks, its end is reported through a continuation.
 * The caller keeps one ngx_http_tokenguard_redis_tls_t per server it
 * connects to (the session is reused across reconnects).
 */

#ifndef _NGX_HTTP_TOKENGUARD_REDIS_TLS_H_INCLUDED_
#define _NGX_HTTP_TOKENGUARD_REDIS_TLS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>


typedef struct {
    ngx_flag_t                     enable;       /* the "tls" parameter */
    ngx_flag_t                     verify;
    ngx_str_t                      trusted_certificate;
    ngx_str_t                      name;
    ngx_str_t                      certificate;
    ngx_str_t                      certificate_key;
#if (NGX_SSL)
    ngx_ssl_t                     *ssl;
#endif
} ngx_http_tokenguard_redis_tls_conf_t;


typedef struct ngx_http_tokenguard_redis_tls_s
    ngx_http_tokenguard_redis_tls_t;

/* the handshake ended: rc NGX_OK (ready) or NGX_ERROR (logged, close c) */
typedef void (*ngx_http_tokenguard_redis_tls_pt)(ngx_connection_t *c,
    ngx_int_t rc);


struct ngx_http_tokenguard_redis_tls_s {
    ngx_http_tokenguard_redis_tls_conf_t  *conf;
    ngx_str_t                             *addr;     /* for the log line */
    ngx_str_t                              host;     /* default name */
    ngx_msec_t                             timeout;
    ngx_http_tokenguard_redis_tls_pt       handler;
#if (NGX_SSL)
    ngx_ssl_session_t                     *session;  /* for the next one */
#endif
    ngx_log_t                              log;      /* catches nginx's */
    ngx_uint_t                             handshaking;
    size_t                                 reason_len;
    u_char                                 reason[256];
};


/* at configuration, once the directives are read: checks, loads files */
char *ngx_http_tokenguard_redis_tls_init_conf(ngx_conf_t *cf,
    ngx_http_tokenguard_redis_tls_conf_t *conf);

/*
 * Starts TLS on the TCP-connected c.  NGX_OK: done, c is ready.
 * NGX_AGAIN: t->handler(c, rc) is called when it ends (c's read and
 * write handlers are the handshake's until then: the caller sets its own
 * again in the handler).  NGX_ERROR: failed, logged.
 */
ngx_int_t ngx_http_tokenguard_redis_tls_start(
    ngx_http_tokenguard_redis_tls_t *t, ngx_connection_t *c);

/*
 * After the handshake an I/O error of c (NGX_ERROR from c->recv or
 * c->send) has been logged here already, as one line.
 */

/* before ngx_close_connection(c): frees c's TLS state without waiting */
void ngx_http_tokenguard_redis_tls_close(ngx_connection_t *c);

/* the worker exits: drops the saved session */
void ngx_http_tokenguard_redis_tls_free(ngx_http_tokenguard_redis_tls_t *t);


#endif /* _NGX_HTTP_TOKENGUARD_REDIS_TLS_H_INCLUDED_ */
