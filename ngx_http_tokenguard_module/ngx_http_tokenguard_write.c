/*
 * Writes nobody waits for: settles, releases, counters, lease spend and
 * the index of who was seen.  Each is sent, or journaled in shared memory
 * when the store is away (ngx_http_tokenguard_journal.c replays it).
 * Settles carry the reservation id and lease spend its batch id, and the
 * scripts ignore an id they have already counted, so that a replay never
 * counts twice.
 */

#include "ngx_http_tokenguard_module.h"
#include "tg_keys.h"


static void
ngx_http_tokenguard_write_handler(ngx_http_tokenguard_redis_op_t *op,
    redisReply *reply)
{
    if (reply == NULL || ngx_http_tokenguard_redis_transient(reply)) {
        if (reply) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "tokenguard: redis refused a ledger write for now,"
                          " journaled: %s", reply->str);
        }

        (void) ngx_http_tokenguard_journal_add(op->script, op->cmd, op->len);
        return;
    }

    /* a script's reply: {status, reservations it found expired, ...} */
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2
        && reply->element[1]->type == REDIS_REPLY_INTEGER
        && reply->element[1]->integer > 0)
    {
        ngx_http_tokenguard_counters_store(-1, 0,
                                           reply->element[1]->integer);
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* not journaled: the same command would fail the same way again */
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "tokenguard: redis refused a ledger write: %s",
                      reply->str);
    }
}


/* sends op, or journals its command; op is NULL when it could not be made */
static void
ngx_http_tokenguard_write(ngx_http_tokenguard_redis_op_t *op)
{
    if (op == NULL) {
        ngx_log_error(NGX_LOG_CRIT, ngx_cycle->log, 0,
                      "tokenguard: out of memory, a ledger write is lost");
        return;
    }

    if (ngx_http_tokenguard_cluster_send(op) != NGX_OK) {
        (void) ngx_http_tokenguard_journal_add(op->script, op->cmd, op->len);
        ngx_http_tokenguard_redis_free(op);
    }
}


/* script: a TG_SCRIPT_* the command runs, or -1 for a plain command */
void
ngx_http_tokenguard_write_command(ngx_int_t script, tg_command_t *c)
{
    ngx_http_tokenguard_redis_op_t  *op;

    op = ngx_http_tokenguard_redis_op(script, c, 0,
                                      ngx_http_tokenguard_write_handler, NULL);

    ngx_http_tokenguard_write(op);
}


/* a command built earlier (a release kept for an orphaned reservation) */
void
ngx_http_tokenguard_write_raw(ngx_int_t script, u_char *cmd, size_t len)
{
    ngx_http_tokenguard_redis_op_t  *op;

    op = ngx_http_tokenguard_redis_op_raw(script, cmd, len,
                                          ngx_http_tokenguard_write_handler,
                                          NULL);

    ngx_http_tokenguard_write(op);
}


/*
 * "who was seen in the period", for tokenguardctl: plain commands, each
 * key its own slot; a worker writes them once a minute per name at most.
 * The minute of the last write is kept in *last, the caller's own (a
 * lease's), or with last NULL in a table by hash, where names that share
 * a slot write more often.
 */
void
ngx_http_tokenguard_write_index(char scope, ngx_str_t *name, time_t *last)
{
    char                              period[11];
    u_char                            key[sizeof("tg:idx:YYYY-MM-DD")];
    size_t                            len;
    uint32_t                          hash;
    ngx_uint_t                        i;
    const char                       *set;
    tg_command_t                      c;
    ngx_http_tokenguard_main_conf_t  *tmcf;

    static struct {
        uint32_t                      hash;
        time_t                        minute;
    }                                 seen[1024];

    if (last) {
        if (*last == ngx_time() / 60) {
            return;
        }

        *last = ngx_time() / 60;

    } else {
        hash = ngx_crc32_short(name->data, name->len) ^ (uint32_t) scope;
        i = hash % 1024;

        if (seen[i].hash == hash && seen[i].minute == ngx_time() / 60) {
            return;
        }

        seen[i].hash = hash;
        seen[i].minute = ngx_time() / 60;
    }

    tmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_tokenguard_module);

    set = scope == TG_SCOPE_USER ? "users" : "teams";

    for (i = 0; i < 2; i++) {
        if (i == 0) {
            tg_period_month(ngx_time(), period);
        } else {
            tg_period_day(ngx_time(), period);
        }

        len = ngx_snprintf(key, sizeof(key), "tg:idx:%s", period) - key;

        tg_command_init(&c, 0);
        tg_command_str(&c, "SADD");
        tg_command_key(&c, (char *) key, len, set);
        tg_command_arg(&c, name->data, name->len);
        ngx_http_tokenguard_write_command(-1, &c);

        tg_command_init(&c, 0);
        tg_command_str(&c, "EXPIRE");
        tg_command_key(&c, (char *) key, len, set);
        tg_command_int(&c, i == 0 ? tmcf->retention_month
                                   : tmcf->retention_day);
        ngx_http_tokenguard_write_command(-1, &c);
    }
}
