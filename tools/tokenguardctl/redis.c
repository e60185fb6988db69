/*
 * The Redis connection (hiredis, synchronous, with a connect and command
 * timeout: this is a CLI, not the nginx worker) and the reads of scopes:
 * period hashes, limits hashes and the period indexes, pipelined.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "tgc.h"


/* scopes read per pipeline round trip */
#define TGC_PIPELINE  256


static int
tgc_context_error(tgc_t *c, const char *what)
{
    const char  *msg;

    msg = c->ctx ? c->ctx->errstr : "out of memory";

    if (c->ctx && c->ctx->err == REDIS_ERR_IO
        && (strstr(msg, "temporarily unavailable") != NULL
            || strstr(msg, "timed out") != NULL))
    {
        msg = "no answer within 5 seconds";
    }

    tgc_error("Redis at %s: %s: %s", c->opts->addr, what,
              msg[0] ? msg : "connection lost");

    return TGC_EREDIS;
}


static int tgc_raw(tgc_t *c, redisReply **reply, int argc,
    const char **argv, const size_t *lens);


static int
tgc_reply_error(tgc_t *c, redisReply *r, const char *what)
{
    int  rc;

    if (strncmp(r->str, "NOAUTH", 6) == 0) {
        tgc_error("Redis at %s needs a password: give -a PASSWORD or set "
                  TGC_PASSWORD_ENV " (%s)", c->opts->addr, r->str);
        rc = TGC_EREDIS;

    } else if (strncmp(r->str, "WRONGPASS", 9) == 0
               || strstr(r->str, "invalid password") != NULL
               || strstr(r->str, "invalid username-password") != NULL)
    {
        tgc_error("Redis at %s refused the password (%s)", c->opts->addr,
                  r->str);
        rc = TGC_EREDIS;

    } else {
        tgc_error("Redis at %s: %s: %s", c->opts->addr, what, r->str);
        rc = TGC_ERROR;
    }

    freeReplyObject(r);

    return rc;
}


int
tgc_connect(tgc_t *c)
{
    int              rc, n;
    long             port;
    char            *host, *p, *end;
    const char      *addr, *argv[3];
    size_t           lens[3];
    redisReply      *r;
    struct timeval   tv;
    char             db[16];

    if (c->ctx) {
        return TGC_OK;
    }

    addr = c->opts->addr;
    tv.tv_sec = TGC_TIMEOUT_SEC;
    tv.tv_usec = 0;

    if (strncmp(addr, "unix:", 5) == 0) {
        if (addr[5] == '\0') {
            return tgc_usage_error("bad Redis address \"%s\": unix:/path",
                                   addr);
        }

        if (c->opts->tls) {
            return tgc_usage_error("--tls needs a host:port address");
        }

        c->ctx = redisConnectUnixWithTimeout(addr + 5, tv);

    } else {
        host = strdup(addr);
        if (host == NULL) {
            tgc_error("out of memory");
            return TGC_ERROR;
        }

        port = 6379;

        if (host[0] == '[') {
            /* [::1]:6379 */
            p = strchr(host, ']');
            if (p == NULL || (p[1] != '\0' && p[1] != ':')) {
                free(host);
                return tgc_usage_error("bad Redis address \"%s\": use "
                                       "host:port or unix:/path", addr);
            }
            *p++ = '\0';
            memmove(host, host + 1, strlen(host + 1) + 1);
            p = (*p == ':') ? p : NULL;

        } else {
            p = strrchr(host, ':');
        }

        if (p) {
            *p++ = '\0';
            errno = 0;
            port = strtol(p, &end, 10);

            if (*p == '\0' || *end != '\0' || errno || port < 1
                || port > 65535)
            {
                free(host);
                return tgc_usage_error("bad Redis address \"%s\": use "
                                       "host:port or unix:/path", addr);
            }
        }

        if (host[0] == '\0') {
            free(host);
            return tgc_usage_error("bad Redis address \"%s\": use "
                                   "host:port or unix:/path", addr);
        }

        c->ctx = redisConnectWithTimeout(host, (int) port, tv);

        if (c->opts->tls && c->ctx && !c->ctx->err) {
            /* the timeout holds for the handshake too */
            rc = redisSetTimeout(c->ctx, tv) == REDIS_OK
                 ? tgc_tls_connect(c, host)
                 : tgc_context_error(c, "setting the timeout");

            if (rc != TGC_OK) {
                free(host);
                return rc;
            }
        }

        free(host);
    }

    if (c->ctx == NULL || c->ctx->err) {
        tgc_error("cannot connect to Redis at %s: %s", addr,
                  c->ctx ? c->ctx->errstr : "out of memory");
        return TGC_EREDIS;
    }

    if (redisSetTimeout(c->ctx, tv) != REDIS_OK) {
        return tgc_context_error(c, "setting the timeout");
    }

    if (c->opts->password) {
        n = 0;
        argv[n] = "AUTH";
        lens[n++] = 4;

        if (c->opts->user) {
            argv[n] = c->opts->user;
            lens[n++] = strlen(c->opts->user);
        }

        argv[n] = c->opts->password;
        lens[n++] = strlen(c->opts->password);

        rc = tgc_raw(c, &r, n, argv, lens);
        if (rc != TGC_OK) {
            return rc;
        }

        if (r->type == REDIS_REPLY_ERROR) {
            if (strstr(r->str, "without any password") == NULL) {
                tgc_error("Redis at %s refused the password (%s)", addr,
                          r->str);
                freeReplyObject(r);
                return TGC_EREDIS;
            }
            /* a password given to a Redis that has none: go on */
        }

        freeReplyObject(r);
    }

    if (c->opts->db >= 0) {
        argv[0] = "SELECT";
        lens[0] = 6;
        argv[1] = db;
        lens[1] = snprintf(db, sizeof(db), "%d", c->opts->db);

        rc = tgc_command(c, &r, 2, argv, lens);
        if (rc != TGC_OK) {
            return rc;
        }

        freeReplyObject(r);
    }

    if (c->opts->cluster) {
        return tgc_cluster_connect(c);
    }

    return TGC_OK;
}


void
tgc_disconnect(tgc_t *c)
{
    tgc_cluster_free(c);
    tgc_tls_free(c);

    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
}


/* a command and its reply, error replies too; over TLS or not */
static int
tgc_raw(tgc_t *c, redisReply **reply, int argc, const char **argv,
    const size_t *lens)
{
    int  rc;

    if (c->ssl) {
        rc = tgc_tls_append(c, argc, argv, lens);
        return rc == TGC_OK ? tgc_tls_reply(c, (void **) reply) : rc;
    }

    *reply = redisCommandArgv(c->ctx, argc, argv, lens);

    return *reply ? TGC_OK : tgc_context_error(c, argv[0]);
}


/* a command and its reply; an error reply is reported and not returned */
int
tgc_command(tgc_t *c, redisReply **reply, int argc, const char **argv,
    const size_t *lens)
{
    int          rc;
    char        *cmd;
    long         n;
    redisReply  *r;

    if (c->cluster) {
        n = redisFormatCommandArgv(&cmd, argc, argv, lens);
        if (n < 0) {
            tgc_error("out of memory");
            return TGC_ERROR;
        }

        rc = tgc_cluster_run(c, cmd, n, &r);
        free(cmd);

        if (rc != TGC_OK) {
            return rc;
        }

    } else {
        rc = tgc_raw(c, &r, argc, argv, lens);
        if (rc != TGC_OK) {
            return rc;
        }
    }

    if (r->type == REDIS_REPLY_ERROR) {
        return tgc_reply_error(c, r, argv[0]);
    }

    *reply = r;

    return TGC_OK;
}


int
tgc_append(tgc_t *c, int argc, const char **argv, const size_t *lens)
{
    if (c->cluster) {
        return tgc_cluster_append(c, argc, argv, lens);
    }

    if (c->ssl) {
        return tgc_tls_append(c, argc, argv, lens);
    }

    if (redisAppendCommandArgv(c->ctx, argc, argv, lens) != REDIS_OK) {
        return tgc_context_error(c, argv[0]);
    }

    return TGC_OK;
}


/* the next reply of a pipeline */
int
tgc_reply(tgc_t *c, redisReply **reply)
{
    int    rc;
    void  *r;

    if (c->cluster) {
        rc = tgc_cluster_reply(c, (redisReply **) &r);
        if (rc != TGC_OK) {
            return rc;
        }

    } else if (c->ssl) {
        rc = tgc_tls_reply(c, &r);
        if (rc != TGC_OK) {
            return rc;
        }

    } else if (redisGetReply(c->ctx, &r) != REDIS_OK || r == NULL) {
        return tgc_context_error(c, "reading a reply");
    }

    if (((redisReply *) r)->type == REDIS_REPLY_ERROR) {
        return tgc_reply_error(c, r, "a pipelined command");
    }

    *reply = r;

    return TGC_OK;
}


/*
 * "tg:{u:NAME}" + suffix, NAME escaped by core/tg_keys.c as the module
 * does; -1 when the name is empty or longer than 256 bytes (the module
 * refuses such names, so no key has it).
 */
int
tgc_key(char scope, const char *name, size_t len, const char *suffix,
    char *out, size_t size, size_t *outlen)
{
    size_t  n, s;

    if (size < TG_KEY_PREFIX_MAX + 1) {
        return -1;
    }

    if (len == 0) {
        /* a dry run counts callers without an identity under "" */
        n = (size_t) sprintf(out, "tg:{%c:}", scope);

    } else {
        n = tg_key_prefix(scope, name, len, out);
        if (n == 0) {
            return -1;
        }
    }

    s = strlen(suffix);
    if (n + s + 1 > size) {
        return -1;
    }

    memcpy(out + n, suffix, s + 1);
    *outlen = n + s;

    return 0;
}


/* the members of tg:idx:PERIOD:users (or :teams) */
int
tgc_index_read(tgc_t *c, const char *period, char scope, tgc_list_t *names)
{
    int          rc;
    char         key[64];
    size_t       i, lens[2];
    const char  *argv[2];
    redisReply  *r, *e;

    argv[0] = "SMEMBERS";
    lens[0] = 8;
    argv[1] = key;
    lens[1] = snprintf(key, sizeof(key), "tg:idx:%s:%s", period,
                       scope == TG_SCOPE_USER ? "users" : "teams");

    rc = tgc_command(c, &r, 2, argv, lens);
    if (rc != TGC_OK) {
        return rc;
    }

    if (r->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < r->elements; i++) {
            e = r->element[i];

            if (e->type == REDIS_REPLY_STRING
                && tgc_list_push(names, e->str, e->len) == NULL)
            {
                freeReplyObject(r);
                tgc_error("out of memory");
                return TGC_ERROR;
            }
        }
    }

    freeReplyObject(r);

    return TGC_OK;
}


static int
tgc_hgetall_append(tgc_t *c, char scope, const char *name, size_t len,
    const char *suffix)
{
    char         key[TG_KEY_PREFIX_MAX + 32];
    size_t       lens[2];
    const char  *argv[2];

    argv[0] = "HGETALL";
    lens[0] = 7;
    argv[1] = key;

    if (tgc_key(scope, name, len, suffix, key, sizeof(key), &lens[1]) != 0) {
        /* a name no key can have: read a key that cannot exist */
        memcpy(key, "tg:idx:", 8);
        lens[1] = 7;
    }

    return tgc_append(c, 2, argv, lens);
}


/* the period hash and the limits hash of one scope, in one round trip */
int
tgc_scope_read(tgc_t *c, char scope, const char *name, size_t len,
    const char *period, tgc_period_t *p, tgc_limits_t *lim)
{
    int          rc;
    char         suffix[16];
    redisReply  *r;

    snprintf(suffix, sizeof(suffix), ":%s", period);

    rc = tgc_hgetall_append(c, scope, name, len, suffix);
    if (rc == TGC_OK) {
        rc = tgc_hgetall_append(c, scope, name, len, ":limits");
    }

    if (rc != TGC_OK) {
        return rc;
    }

    rc = tgc_reply(c, &r);
    if (rc != TGC_OK) {
        return rc;
    }

    tgc_period_parse(r, p);
    freeReplyObject(r);

    rc = tgc_reply(c, &r);
    if (rc != TGC_OK) {
        return rc;
    }

    tgc_limits_parse(r, lim);
    freeReplyObject(r);

    return TGC_OK;
}


/* tgc_scope_read() for every name, TGC_PIPELINE names per round trip */
int
tgc_scopes_read(tgc_t *c, char scope, tgc_list_t *names, const char *period,
    tgc_period_t *p, tgc_limits_t *lim)
{
    int          rc;
    char         suffix[16];
    size_t       i, j, end;
    redisReply  *r;

    snprintf(suffix, sizeof(suffix), ":%s", period);

    for (i = 0; i < names->n; i = end) {
        end = i + TGC_PIPELINE < names->n ? i + TGC_PIPELINE : names->n;

        for (j = i; j < end; j++) {
            rc = tgc_hgetall_append(c, scope, names->items[j].name,
                                    names->items[j].len, suffix);
            if (rc == TGC_OK) {
                rc = tgc_hgetall_append(c, scope, names->items[j].name,
                                        names->items[j].len, ":limits");
            }

            if (rc != TGC_OK) {
                return rc;
            }
        }

        for (j = i; j < end; j++) {
            rc = tgc_reply(c, &r);
            if (rc != TGC_OK) {
                return rc;
            }

            tgc_period_parse(r, &p[j]);
            freeReplyObject(r);

            rc = tgc_reply(c, &r);
            if (rc != TGC_OK) {
                return rc;
            }

            tgc_limits_parse(r, &lim[j]);
            freeReplyObject(r);
        }
    }

    return TGC_OK;
}
