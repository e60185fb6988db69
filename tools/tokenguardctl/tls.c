/*
 * Redis over TLS for tokenguardctl.  Debian's hiredis (0.14) has no TLS:
 * hiredis still connects the socket (with its timeout) and formats the
 * commands, OpenSSL speaks TLS on that socket, and a redisReader parses
 * what comes back.  The options use the words of the module's
 * directives: --tls, --user, --ssl-trusted-certificate, --ssl-verify,
 * --ssl-name, --ssl-certificate, --ssl-certificate-key.
 */

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tgc.h"


static const char *
tgc_tls_reason(void)
{
    unsigned long  e;
    static char    buf[256];

    e = ERR_peek_last_error();
    if (e == 0) {
        return "connection closed";
    }

    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();

    return buf;
}


/* --tls and its settings: 1 taken, 0 not ours, -1 bad (reported) */
int
tgc_tls_option(tgc_opts_t *o, const char *arg, const char *val)
{
    size_t        i;
    const char  **dst;
    static const struct {
        const char  *name;
        size_t       off;
    } opts[] = {
        { "--user", offsetof(tgc_opts_t, user) },
        { "--ssl-trusted-certificate", offsetof(tgc_opts_t, ssl_ca) },
        { "--ssl-name", offsetof(tgc_opts_t, ssl_name) },
        { "--ssl-certificate", offsetof(tgc_opts_t, ssl_cert) },
        { "--ssl-certificate-key", offsetof(tgc_opts_t, ssl_key) },
    };

    if (strcmp(arg, "--ssl-verify") == 0) {
        if (val == NULL || (strcmp(val, "on") && strcmp(val, "off"))) {
            tgc_usage_error("--ssl-verify needs on or off");
            return -1;
        }
        o->ssl_noverify = (strcmp(val, "off") == 0);
        return 1;
    }

    for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        if (strcmp(arg, opts[i].name) == 0) {
            if (val == NULL || val[0] == '\0') {
                tgc_usage_error("%s needs a value", arg);
                return -1;
            }
            dst = (const char **) ((char *) o + opts[i].off);
            *dst = val;
            return 1;
        }
    }

    return 0;
}


static int
tgc_tls_is_ip(const char *name)
{
    unsigned char  buf[16];

    return inet_pton(AF_INET, name, buf) == 1
           || inet_pton(AF_INET6, name, buf) == 1;
}


static int
tgc_tls_ctx(tgc_t *c)
{
    tgc_opts_t  *o = c->opts;

    c->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (c->ssl_ctx == NULL) {
        tgc_error("TLS: %s", tgc_tls_reason());
        return TGC_ERROR;
    }

    SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION);

    if (!o->ssl_noverify) {
        SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER, NULL);

        /* without a CA file the system's, as for a public CA */
        if ((o->ssl_ca
             ? SSL_CTX_load_verify_locations(c->ssl_ctx, o->ssl_ca, NULL)
             : SSL_CTX_set_default_verify_paths(c->ssl_ctx)) != 1)
        {
            tgc_error("TLS: cannot load the CA \"%s\": %s",
                      o->ssl_ca ? o->ssl_ca : "(system)", tgc_tls_reason());
            return TGC_EUSAGE;
        }
    }

    if ((o->ssl_cert == NULL) != (o->ssl_key == NULL)) {
        return tgc_usage_error("--ssl-certificate and --ssl-certificate-key "
                               "go together");
    }

    if (o->ssl_cert
        && (SSL_CTX_use_certificate_chain_file(c->ssl_ctx, o->ssl_cert) != 1
            || SSL_CTX_use_PrivateKey_file(c->ssl_ctx, o->ssl_key,
                                           SSL_FILETYPE_PEM) != 1))
    {
        tgc_error("TLS: cannot load the certificate \"%s\" and key \"%s\": "
                  "%s", o->ssl_cert, o->ssl_key, tgc_tls_reason());
        return TGC_EUSAGE;
    }

    return TGC_OK;
}


/* TLS on the socket hiredis connected; host: the address's host */
int
tgc_tls_connect(tgc_t *c, const char *host)
{
    int          rc;
    long         v;
    const char  *name;
    tgc_opts_t  *o = c->opts;

    rc = tgc_tls_ctx(c);
    if (rc != TGC_OK) {
        return rc;
    }

    c->ssl = SSL_new(c->ssl_ctx);
    c->reader = redisReaderCreate();

    if (c->ssl == NULL || c->reader == NULL
        || SSL_set_fd(c->ssl, c->ctx->fd) != 1)
    {
        tgc_error("TLS: %s", tgc_tls_reason());
        return TGC_ERROR;
    }

    name = o->ssl_name ? o->ssl_name : host;

    if (!tgc_tls_is_ip(name)) {
        SSL_set_tlsext_host_name(c->ssl, name);
    }

    if (!o->ssl_noverify
        && (tgc_tls_is_ip(name)
            ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name)
            : SSL_set1_host(c->ssl, name)) != 1)
    {
        tgc_error("TLS: bad name \"%s\"", name);
        return TGC_EUSAGE;
    }

    if (SSL_connect(c->ssl) != 1) {
        v = SSL_get_verify_result(c->ssl);

        if (v != X509_V_OK) {
            tgc_error("Redis at %s: TLS: certificate verify failed (%s)",
                      o->addr, X509_verify_cert_error_string(v));
        } else {
            tgc_error("Redis at %s: TLS: handshake failed: %s", o->addr,
                      tgc_tls_reason());
        }

        return TGC_EREDIS;
    }

    return TGC_OK;
}


void
tgc_tls_free(tgc_t *c)
{
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }

    if (c->ssl_ctx) {
        SSL_CTX_free(c->ssl_ctx);
        c->ssl_ctx = NULL;
    }

    if (c->reader) {
        redisReaderFree(c->reader);
        c->reader = NULL;
    }

    free(c->out);
    c->out = NULL;
    c->out_len = 0;
}


/* a command formatted into the output, sent with the next read */
int
tgc_tls_append(tgc_t *c, int argc, const char **argv, const size_t *lens)
{
    int   n, rc;
    char  *cmd;

    n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (n < 0) {
        tgc_error("out of memory");
        return TGC_ERROR;
    }

    rc = tgc_tls_append_formatted(c, cmd, n);
    free(cmd);

    return rc;
}


/* a command formatted already (a cluster's), sent with the next read */
int
tgc_tls_append_formatted(tgc_t *c, const char *cmd, size_t len)
{
    char  *p;

    p = realloc(c->out, c->out_len + len);
    if (p == NULL) {
        tgc_error("out of memory");
        return TGC_ERROR;
    }

    memcpy(p + c->out_len, cmd, len);
    c->out = p;
    c->out_len += len;

    return TGC_OK;
}


static int
tgc_tls_io_error(tgc_t *c, int n, const char *what)
{
    int  e;

    e = SSL_get_error(c->ssl, n);

    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        tgc_error("Redis at %s: %s: no answer within %d seconds",
                  c->opts->addr, what, TGC_TIMEOUT_SEC);
    } else {
        tgc_error("Redis at %s: %s: TLS: %s", c->opts->addr, what,
                  tgc_tls_reason());
    }

    return TGC_EREDIS;
}


/* the next reply, after sending what is waiting; NULL reply: error */
int
tgc_tls_reply(tgc_t *c, void **reply)
{
    int     n;
    size_t  sent;
    char    buf[16384];

    for (sent = 0; sent < c->out_len; sent += n) {
        n = SSL_write(c->ssl, c->out + sent, (int) (c->out_len - sent));
        if (n <= 0) {
            return tgc_tls_io_error(c, n, "sending");
        }
    }

    c->out_len = 0;

    for ( ;; ) {
        if (redisReaderGetReply(c->reader, reply) != REDIS_OK) {
            tgc_error("Redis at %s: protocol error", c->opts->addr);
            return TGC_EREDIS;
        }

        if (*reply) {
            return TGC_OK;
        }

        n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n <= 0) {
            return tgc_tls_io_error(c, n, "reading a reply");
        }

        if (redisReaderFeed(c->reader, buf, n) != REDIS_OK) {
            tgc_error("out of memory");
            return TGC_ERROR;
        }
    }
}
