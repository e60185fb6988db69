/*
 * Redis Cluster for tokenguardctl (--cluster): the slot map from
 * CLUSTER SLOTS of the seed (-r), a connection per master opened when a
 * key of its first needs it, each command sent to the owner of its key
 * (core/tg_slot.c, as the module routes), MOVED and ASK followed.  The
 * index keys tg:idx:PERIOD:users are keys of their own: their master is
 * found like any other's.  Commands appended for a pipeline are kept and
 * sent one at a time when their reply is read: a CLI can afford the
 * round trips, and a redirect never reorders replies.
 */

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "tgc.h"
#include "tg_slot.h"


#define TGC_CLUSTER_REDIRECTS  5


struct tgc_cluster_s {
    tg_slot_map_t    map;
    char            *names[TG_SLOT_NODES_MAX];       /* "host:port" */
    redisContext    *ctx[TG_SLOT_NODES_MAX];
    int              n;

    char           **pending;                        /* formatted commands */
    size_t          *pending_len;
    size_t           npending, first, cap;
};


static int
tgc_cluster_node(tgc_cluster_t *cl, const char *name, size_t len)
{
    int  i;

    for (i = 0; i < cl->n; i++) {
        if (strlen(cl->names[i]) == len
            && memcmp(cl->names[i], name, len) == 0)
        {
            return i;
        }
    }

    if (cl->n == TG_SLOT_NODES_MAX) {
        return -1;
    }

    cl->names[cl->n] = strndup(name, len);
    if (cl->names[cl->n] == NULL) {
        return -1;
    }

    return cl->n++;
}


/* a connection to node i, with the password; NULL reported */
static redisContext *
tgc_cluster_ctx(tgc_t *c, int i)
{
    char            *host, *colon;
    redisContext    *ctx;
    redisReply      *r;
    struct timeval   tv;
    tgc_cluster_t   *cl = c->cluster;

    if (cl->ctx[i]) {
        return cl->ctx[i];
    }

    host = strdup(cl->names[i]);
    if (host == NULL) {
        tgc_error("out of memory");
        return NULL;
    }

    colon = strrchr(host, ':');
    if (colon == NULL) {
        tgc_error("Redis cluster node \"%s\" is no host:port", host);
        free(host);
        return NULL;
    }

    *colon = '\0';
    tv.tv_sec = TGC_TIMEOUT_SEC;
    tv.tv_usec = 0;

    ctx = redisConnectWithTimeout(host, atoi(colon + 1), tv);
    free(host);

    if (ctx == NULL || ctx->err) {
        tgc_error("cannot connect to Redis cluster node %s: %s",
                  cl->names[i], ctx ? ctx->errstr : "out of memory");
        if (ctx) {
            redisFree(ctx);
        }
        return NULL;
    }

    (void) redisSetTimeout(ctx, tv);

    if (c->opts->password) {
        r = c->opts->user
            ? redisCommand(ctx, "AUTH %s %s", c->opts->user, c->opts->password)
            : redisCommand(ctx, "AUTH %s", c->opts->password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            tgc_error("Redis cluster node %s refused the password",
                      cl->names[i]);
            if (r) {
                freeReplyObject(r);
            }
            redisFree(ctx);
            return NULL;
        }
        freeReplyObject(r);
    }

    cl->ctx[i] = ctx;

    return ctx;
}


/* CLUSTER SLOTS of the seed, whose connection c->ctx is */
int
tgc_cluster_connect(tgc_t *c)
{
    int             node;
    char            name[300];
    size_t          i, n;
    redisReply     *r, *e, *m;
    tgc_cluster_t  *cl;

    cl = calloc(1, sizeof(tgc_cluster_t));
    if (cl == NULL) {
        tgc_error("out of memory");
        return TGC_ERROR;
    }

    c->cluster = cl;
    tg_slot_map_init(&cl->map);

    cl->names[0] = strdup(c->opts->addr);
    if (cl->names[0] == NULL) {
        tgc_error("out of memory");
        return TGC_ERROR;
    }

    cl->ctx[0] = c->ctx;
    cl->n = 1;

    r = redisCommand(c->ctx, "CLUSTER SLOTS");
    if (r == NULL) {
        tgc_error("Redis at %s: CLUSTER SLOTS: %s", c->opts->addr,
                  c->ctx->errstr);
        return TGC_EREDIS;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        tgc_error("Redis at %s is no cluster node (CLUSTER SLOTS: %s)",
                  c->opts->addr, r->type == REDIS_REPLY_ERROR ? r->str
                                                            : "no array");
        freeReplyObject(r);
        return TGC_ERROR;
    }

    for (i = 0; i < r->elements; i++) {
        e = r->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3
            || e->element[2]->type != REDIS_REPLY_ARRAY
            || e->element[2]->elements < 2
            || e->element[2]->element[0]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        m = e->element[2];
        n = (size_t) snprintf(name, sizeof(name), "%.*s:%lld",
                              (int) m->element[0]->len, m->element[0]->str,
                              (long long) m->element[1]->integer);

        node = n < sizeof(name) ? tgc_cluster_node(cl, name, n) : -1;

        if (node < 0
            || tg_slot_map_set(&cl->map, e->element[0]->integer,
                               e->element[1]->integer, node) != 0)
        {
            tgc_error("Redis at %s: a CLUSTER SLOTS entry that does not "
                      "read", c->opts->addr);
            freeReplyObject(r);
            return TGC_ERROR;
        }
    }

    freeReplyObject(r);

    return TGC_OK;
}


void
tgc_cluster_free(tgc_t *c)
{
    int             i;
    size_t          j;
    tgc_cluster_t  *cl = c->cluster;

    if (cl == NULL) {
        return;
    }

    /* ctx[0] is c->ctx, freed by tgc_disconnect() */
    for (i = 0; i < cl->n; i++) {
        if (i > 0 && cl->ctx[i]) {
            redisFree(cl->ctx[i]);
        }
        free(cl->names[i]);
    }

    for (j = cl->first; j < cl->npending; j++) {
        free(cl->pending[j]);
    }

    free(cl->pending);
    free(cl->pending_len);
    free(cl);
    c->cluster = NULL;
}


/*
 * One formatted command on the owner of its key, redirects followed;
 * the reply (an error reply too) into *reply, or NULL reported.
 */
int
tgc_cluster_run(tgc_t *c, const char *cmd, size_t len, redisReply **reply)
{
    int             slot, node, ask, i;
    size_t          alen;
    unsigned        s;
    const char     *addr;
    redisReply     *r;
    redisContext   *ctx;
    tgc_cluster_t  *cl = c->cluster;
    void           *p;

    slot = tg_slot_of_command(cmd, len);
    node = slot >= 0 && cl->map.owner[slot] != TG_SLOT_UNKNOWN
           ? cl->map.owner[slot] : 0;
    ask = 0;

    for (i = 0; i <= TGC_CLUSTER_REDIRECTS; i++) {
        ctx = tgc_cluster_ctx(c, node);
        if (ctx == NULL) {
            return TGC_EREDIS;
        }

        if ((ask && redisAppendCommand(ctx, "ASKING") != REDIS_OK)
            || redisAppendFormattedCommand(ctx, cmd, len) != REDIS_OK)
        {
            tgc_error("Redis cluster node %s: %s", cl->names[node],
                      ctx->errstr);
            return TGC_EREDIS;
        }

        if (ask) {
            if (redisGetReply(ctx, &p) != REDIS_OK) {
                goto lost;
            }
            freeReplyObject(p);
        }

        if (redisGetReply(ctx, &p) != REDIS_OK || p == NULL) {
            goto lost;
        }

        r = p;

        if (r->type != REDIS_REPLY_ERROR
            || tg_slot_redirect(r->str, r->len, &ask, &s, &addr, &alen) != 0)
        {
            *reply = r;
            return TGC_OK;
        }

        node = tgc_cluster_node(cl, addr, alen);
        freeReplyObject(r);

        if (node < 0) {
            tgc_error("Redis cluster: too many nodes");
            return TGC_ERROR;
        }

        if (!ask) {
            cl->map.owner[s] = (uint8_t) node;
        }
    }

    tgc_error("Redis cluster: a command redirected more than %d times",
              TGC_CLUSTER_REDIRECTS);

    return TGC_ERROR;

lost:

    tgc_error("Redis cluster node %s: %s", cl->names[node],
              ctx->errstr[0] ? ctx->errstr : "connection lost");

    return TGC_EREDIS;
}


int
tgc_cluster_append(tgc_t *c, int argc, const char **argv, const size_t *lens)
{
    long            n;
    char           *cmd, **pp;
    size_t         *pl;
    tgc_cluster_t  *cl = c->cluster;

    n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (n < 0) {
        tgc_error("out of memory");
        return TGC_ERROR;
    }

    if (cl->npending == cl->cap) {
        cl->cap = cl->cap ? cl->cap * 2 : 64;
        pp = realloc(cl->pending, cl->cap * sizeof(char *));
        pl = pp ? realloc(cl->pending_len, cl->cap * sizeof(size_t)) : NULL;

        if (pp) {
            cl->pending = pp;
        }

        if (pl == NULL) {
            free(cmd);
            tgc_error("out of memory");
            return TGC_ERROR;
        }

        cl->pending_len = pl;
    }

    cl->pending[cl->npending] = cmd;
    cl->pending_len[cl->npending++] = n;

    return TGC_OK;
}


/* the reply of the oldest appended command: it is sent now */
int
tgc_cluster_reply(tgc_t *c, redisReply **reply)
{
    int             rc;
    tgc_cluster_t  *cl = c->cluster;

    if (cl->first == cl->npending) {
        tgc_error("a reply no command waits for");
        return TGC_ERROR;
    }

    rc = tgc_cluster_run(c, cl->pending[cl->first],
                         cl->pending_len[cl->first], reply);

    free(cl->pending[cl->first]);
    cl->first++;

    if (cl->first == cl->npending) {
        cl->first = 0;
        cl->npending = 0;
    }

    return rc;
}
