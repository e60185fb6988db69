/*
 * Redis Cluster for tokenguardctl (--cluster): the slot map from
 * CLUSTER SLOTS of the seed (-r), a connection per master opened when a
 * key of its first needs it, each command sent to the owner of its key
 * (core/tg_slot.c, as the module routes), MOVED and ASK followed.  The
 * index keys tg:idx:PERIOD:users are keys of their own: their master is
 * found like any other's.  Commands appended for a pipeline are kept and
 * sent one at a time when their reply is read: a CLI can afford the
 * round trips, and a redirect never reorders replies.  A node's
 * connection is made as the seed's (tgc_connect), so --tls and --user
 * hold on every node.
 */

#include <stdlib.h>
#include <string.h>

#include "tgc.h"
#include "tg_slot.h"


#define TGC_CLUSTER_REDIRECTS  5


struct tgc_cluster_s {
    tg_slot_map_t    map;
    char            *names[TG_SLOT_NODES_MAX];       /* "host:port" */
    tgc_t           *node[TG_SLOT_NODES_MAX];        /* [0]: the seed */
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


/*
 * A connection to node i: a tgc_t of its own, connected as the seed was
 * (tgc_connect: TLS with the same settings, AUTH with the same user);
 * NULL reported.
 */
static tgc_t *
tgc_cluster_link(tgc_t *c, int i)
{
    tgc_t          *n;
    tgc_cluster_t  *cl = c->cluster;

    if (cl->node[i]) {
        return cl->node[i];
    }

    n = calloc(1, sizeof(tgc_t) + sizeof(tgc_opts_t));
    if (n == NULL) {
        tgc_error("out of memory");
        return NULL;
    }

    n->opts = (tgc_opts_t *) (n + 1);
    *n->opts = *c->opts;
    n->opts->addr = cl->names[i];
    n->opts->cluster = 0;
    n->opts->db = -1;

    if (tgc_connect(n) != TGC_OK) {
        tgc_disconnect(n);
        free(n);
        return NULL;
    }

    cl->node[i] = n;

    return n;
}


/* a formatted command sent on node n, its reply read; over TLS or not */
static int
tgc_cluster_send(tgc_t *n, const char *cmd, size_t len, void **reply)
{
    if (n->ssl) {
        return tgc_tls_append_formatted(n, cmd, len) == TGC_OK
               ? tgc_tls_reply(n, reply) : TGC_ERROR;
    }

    if (redisAppendFormattedCommand(n->ctx, cmd, len) != REDIS_OK
        || redisGetReply(n->ctx, reply) != REDIS_OK || *reply == NULL)
    {
        tgc_error("Redis cluster node %s: %s", n->opts->addr,
                  n->ctx->errstr[0] ? n->ctx->errstr : "connection lost");
        return TGC_EREDIS;
    }

    return TGC_OK;
}


/* CLUSTER SLOTS of the seed, whose connection c->ctx is */
int
tgc_cluster_connect(tgc_t *c)
{
    int             node, rc;
    void           *p;
    char            name[300];
    size_t          i, n;
    redisReply     *r, *e, *m;
    tgc_cluster_t  *cl;

    static const char  slots[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";

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

    cl->node[0] = c;
    cl->n = 1;

    rc = tgc_cluster_send(c, slots, sizeof(slots) - 1, &p);
    if (rc != TGC_OK) {
        return rc;
    }

    r = p;

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

    /* node[0] is c, disconnected by tgc_disconnect() */
    for (i = 0; i < cl->n; i++) {
        if (i > 0 && cl->node[i]) {
            tgc_disconnect(cl->node[i]);
            free(cl->node[i]);
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
    int             slot, node, ask, i, rc;
    size_t          alen;
    unsigned        s;
    const char     *addr;
    tgc_t          *n;
    redisReply     *r;
    tgc_cluster_t  *cl = c->cluster;
    void           *p;

    static const char  asking[] = "*1\r\n$6\r\nASKING\r\n";

    slot = tg_slot_of_command(cmd, len);
    node = slot >= 0 && cl->map.owner[slot] != TG_SLOT_UNKNOWN
           ? cl->map.owner[slot] : 0;
    ask = 0;

    for (i = 0; i <= TGC_CLUSTER_REDIRECTS; i++) {
        n = tgc_cluster_link(c, node);
        if (n == NULL) {
            return TGC_EREDIS;
        }

        if (ask) {
            rc = tgc_cluster_send(n, asking, sizeof(asking) - 1, &p);
            if (rc != TGC_OK) {
                return rc;
            }
            freeReplyObject(p);
        }

        rc = tgc_cluster_send(n, cmd, len, &p);
        if (rc != TGC_OK) {
            return rc;
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
