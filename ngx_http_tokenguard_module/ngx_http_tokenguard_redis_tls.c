/*
 * TLS for a Redis connection.  See ngx_http_tokenguard_redis_tls.h.
 *
 * As nginx's upstreams do it: the certificate is verified after the
 * handshake (SSL_get_verify_result, then the name), so a wrong CA or a
 * wrong name is one line that says which.  The connection logs into
 * t->log, whose writer turns nginx's own messages into our lines: while
 * the handshake runs it keeps the first (an alert from the server, a
 * closed connection) as the reason of the one failure line; after it,
 * each (a TLS 1.3 server refusing our certificate only on the first
 * read, an SSL_read error) becomes one "tokenguard: redis ADDR TLS:"
 * line at the error level, and redis.c adds none of its own.
 */

#include "ngx_http_tokenguard_module.h"
#include "ngx_http_tokenguard_redis_tls.h"


#if (NGX_SSL)

static void ngx_http_tokenguard_redis_tls_handshake(ngx_connection_t *c);
static ngx_int_t ngx_http_tokenguard_redis_tls_done(
    ngx_http_tokenguard_redis_tls_t *t, ngx_connection_t *c);
static ngx_int_t ngx_http_tokenguard_redis_tls_verify(
    ngx_http_tokenguard_redis_tls_t *t, ngx_connection_t *c);
static void ngx_http_tokenguard_redis_tls_save_session(ngx_connection_t *c);
static void ngx_http_tokenguard_redis_tls_writer(ngx_log_t *log,
    ngx_uint_t level, u_char *buf, size_t len);
static void ngx_http_tokenguard_redis_tls_error(
    ngx_http_tokenguard_redis_tls_t *t, const char *fmt, ...);
static ngx_uint_t ngx_http_tokenguard_redis_tls_is_ip(ngx_str_t *name);

#endif


char *
ngx_http_tokenguard_redis_tls_init_conf(ngx_conf_t *cf,
    ngx_http_tokenguard_redis_tls_conf_t *conf)
{
#if (NGX_SSL)
    ngx_pool_cleanup_t  *cln;
#endif

    if (!conf->enable) {
        if (conf->trusted_certificate.len || conf->name.len
            || conf->certificate.len || conf->certificate_key.len
            || conf->verify != NGX_CONF_UNSET)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"tokenguard_redis_ssl_*\" is set but "
                               "\"tokenguard_redis\" has no \"tls\"");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

#if (NGX_SSL)

    ngx_conf_init_value(conf->verify, 1);

    if (conf->verify && conf->trusted_certificate.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tokenguard_redis\" has \"tls\" with "
                           "verification on but no "
                           "\"tokenguard_redis_ssl_trusted_certificate\" "
                           "(the CA that signed the server's certificate; "
                           "or \"tokenguard_redis_ssl_verify off\")");
        return NGX_CONF_ERROR;
    }

    if ((conf->certificate.len == 0) != (conf->certificate_key.len == 0)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tokenguard_redis_ssl_certificate\" and "
                           "\"tokenguard_redis_ssl_certificate_key\" go "
                           "together: one is set without the other");
        return NGX_CONF_ERROR;
    }

    conf->ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (conf->ssl == NULL) {
        return NGX_CONF_ERROR;
    }

    conf->ssl->log = cf->log;

    if (ngx_ssl_create(conf->ssl, NGX_SSL_TLSv1_2 | NGX_SSL_TLSv1_3, NULL)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(conf->ssl);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = conf->ssl;

    if (conf->certificate.len
        && ngx_ssl_certificate(cf, conf->ssl, &conf->certificate,
                               &conf->certificate_key, NULL)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->verify
        && ngx_ssl_trusted_certificate(cf, conf->ssl,
                                       &conf->trusted_certificate, 4)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* sessions come back through save_session, also TLS 1.3 tickets */
    if (ngx_ssl_client_session_cache(cf, conf->ssl, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

#else

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"tokenguard_redis\" has \"tls\" but this nginx "
                       "is built without SSL (--with-http_ssl_module)");
    return NGX_CONF_ERROR;

#endif
}


#if (NGX_SSL)

ngx_int_t
ngx_http_tokenguard_redis_tls_start(ngx_http_tokenguard_redis_tls_t *t,
    ngx_connection_t *c)
{
    ngx_int_t   rc;
    ngx_str_t  *name;

    /* nginx's TLS state lives in c->pool: a peer connection has none */
    c->pool = ngx_create_pool(1024, ngx_cycle->log);
    if (c->pool == NULL) {
        return NGX_ERROR;
    }

    /* c logs into t->log until the handshake is over (t is its wdata) */
    t->log = *ngx_cycle->log;
    t->log.log_level = NGX_LOG_INFO;
    t->log.connection = 0;
    t->log.handler = NULL;
    t->log.action = NULL;
    t->log.writer = ngx_http_tokenguard_redis_tls_writer;
    t->log.wdata = t;
    t->log.next = NULL;
    t->reason_len = 0;
    t->handshaking = 1;

    c->log = &t->log;
    c->read->log = c->log;
    c->write->log = c->log;
    c->pool->log = ngx_cycle->log;

    if (ngx_ssl_create_connection(t->conf->ssl, c, NGX_SSL_CLIENT)
        != NGX_OK)
    {
        ngx_http_tokenguard_redis_tls_error(t, "cannot start");
        return NGX_ERROR;
    }

    name = t->conf->name.len ? &t->conf->name : &t->host;

    /* RFC 6066: no literal address as a server name */
    if (name->len && !ngx_http_tokenguard_redis_tls_is_ip(name)
        && SSL_set_tlsext_host_name(c->ssl->connection, (char *) name->data)
           == 0)
    {
        ngx_http_tokenguard_redis_tls_error(t, "cannot set the name \"%V\"",
                                            name);
        return NGX_ERROR;
    }

    c->ssl->save_session = ngx_http_tokenguard_redis_tls_save_session;

    if (t->session && ngx_ssl_set_session(c, t->session) != NGX_OK) {
        ngx_http_tokenguard_redis_tls_error(t, "cannot reuse the session");
        return NGX_ERROR;
    }

    rc = ngx_ssl_handshake(c);

    if (rc == NGX_AGAIN) {
        if (!c->write->timer_set) {
            ngx_add_timer(c->write, t->timeout);
        }

        c->ssl->handler = ngx_http_tokenguard_redis_tls_handshake;
        return NGX_AGAIN;
    }

    return ngx_http_tokenguard_redis_tls_done(t, c);
}


static void
ngx_http_tokenguard_redis_tls_handshake(ngx_connection_t *c)
{
    ngx_http_tokenguard_redis_tls_t  *t;

    t = c->log->wdata;

    t->handler(c, ngx_http_tokenguard_redis_tls_done(t, c));
}


static ngx_int_t
ngx_http_tokenguard_redis_tls_done(ngx_http_tokenguard_redis_tls_t *t,
    ngx_connection_t *c)
{
    if (c->read->timedout || c->write->timedout) {
        ngx_http_tokenguard_redis_tls_error(t, "handshake timed out");
        return NGX_ERROR;
    }

    if (!c->ssl->handshaked) {
        ngx_http_tokenguard_redis_tls_error(t, "handshake failed: %*s",
                                            t->reason_len, t->reason);
        return NGX_ERROR;
    }

    if (t->conf->verify
        && ngx_http_tokenguard_redis_tls_verify(t, c) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    t->handshaking = 0;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "tokenguard: redis TLS session reused: %d (%V)",
                   SSL_session_reused(c->ssl->connection), t->addr);

    return NGX_OK;
}


static ngx_int_t
ngx_http_tokenguard_redis_tls_verify(ngx_http_tokenguard_redis_tls_t *t,
    ngx_connection_t *c)
{
    long        rc;
    X509       *cert;
    ngx_str_t  *name;
    ngx_int_t   ok;

    rc = SSL_get_verify_result(c->ssl->connection);

    if (rc != X509_V_OK) {
        ngx_http_tokenguard_redis_tls_error(t,
                                    "certificate verify failed (%s)",
                                    X509_verify_cert_error_string(rc));
        return NGX_ERROR;
    }

    name = t->conf->name.len ? &t->conf->name : &t->host;

    if (name->len == 0) {
        return NGX_OK;
    }

    if (!ngx_http_tokenguard_redis_tls_is_ip(name)) {
        ok = (ngx_ssl_check_host(c, name) == NGX_OK);

    } else {
        /* an address is checked against the certificate's IP entries */
        cert = SSL_get_peer_certificate(c->ssl->connection);
        ok = cert != NULL
             && X509_check_ip_asc(cert, (char *) name->data, 0) == 1;
        X509_free(cert);
    }

    if (!ok) {
        ngx_http_tokenguard_redis_tls_error(t,
                                    "certificate does not match \"%V\"",
                                    name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_tokenguard_redis_tls_save_session(ngx_connection_t *c)
{
    ngx_ssl_session_t                *session;
    ngx_http_tokenguard_redis_tls_t  *t;

    t = c->log->wdata;

    session = ngx_ssl_get_session(c);
    if (session == NULL) {
        return;
    }

    if (t->session) {
        ngx_ssl_free_session(t->session);
    }

    t->session = session;
}


void
ngx_http_tokenguard_redis_tls_close(ngx_connection_t *c)
{
    if (c->ssl) {
        /* a failed or finished connection: no close_notify to wait for */
        c->ssl->no_wait_shutdown = 1;
        c->ssl->no_send_shutdown = 1;
        (void) ngx_ssl_shutdown(c);
    }

    if (c->pool) {
        ngx_destroy_pool(c->pool);
        c->pool = NULL;
    }

    c->log = ngx_cycle->log;
    c->read->log = c->log;
    c->write->log = c->log;
}


void
ngx_http_tokenguard_redis_tls_free(ngx_http_tokenguard_redis_tls_t *t)
{
    if (t->session) {
        ngx_ssl_free_session(t->session);
        t->session = NULL;
    }
}


/* nginx's message about the connection: the reason, or our line */

static void
ngx_http_tokenguard_redis_tls_writer(ngx_log_t *log, ngx_uint_t level,
    u_char *buf, size_t len)
{
    u_char                           *p, *end;
    ngx_http_tokenguard_redis_tls_t  *t;

    t = log->wdata;

    if (t->handshaking && t->reason_len) {
        return;
    }

    /* "TIME [LEVEL] PID#TID: message\n" */
    end = buf + len;

    while (end > buf && (end[-1] == '\n' || end[-1] == '\r')) {
        end--;
    }

    p = ngx_strlchr(buf, end, '#');
    p = p ? ngx_strlcasestrn(p, end, (u_char *) ": ", 2 - 1) : NULL;
    p = p ? p + 2 : buf;

    if (!t->handshaking) {
        ngx_http_tokenguard_redis_tls_error(t, "%*s", end - p, p);
        return;
    }

    t->reason_len = ngx_min((size_t) (end - p), sizeof(t->reason));
    ngx_memcpy(t->reason, p, t->reason_len);
}


static void
ngx_http_tokenguard_redis_tls_error(ngx_http_tokenguard_redis_tls_t *t,
    const char *fmt, ...)
{
    u_char   *p, buf[512];
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "tokenguard: redis %V TLS: %*s", t->addr, p - buf, buf);
}


static ngx_uint_t
ngx_http_tokenguard_redis_tls_is_ip(ngx_str_t *name)
{
    if (ngx_inet_addr(name->data, name->len) != INADDR_NONE) {
        return 1;
    }

    return ngx_strlchr(name->data, name->data + name->len, ':') != NULL;
}


#else


ngx_int_t
ngx_http_tokenguard_redis_tls_start(ngx_http_tokenguard_redis_tls_t *t,
    ngx_connection_t *c)
{
    return NGX_ERROR;
}


void
ngx_http_tokenguard_redis_tls_close(ngx_connection_t *c)
{
}


void
ngx_http_tokenguard_redis_tls_free(ngx_http_tokenguard_redis_tls_t *t)
{
}


#endif
