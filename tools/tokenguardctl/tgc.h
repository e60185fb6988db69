/*
 * tokenguardctl: the ops CLI of tokenguard.  It reads and writes the
 * ledger in Redis (DESIGN.md "Redis layout") with hiredis's synchronous
 * API; it never talks to nginx.
 *
 * Shared declarations of every file of the tool.
 */

#ifndef TGC_H
#define TGC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "tg_keys.h"


/* exit codes */
#define TGC_OK             0
#define TGC_ERROR          1    /* a Redis error reply, a file not written */
#define TGC_EUSAGE         2    /* bad command line */
#define TGC_EREDIS         3    /* Redis unreachable, timed out, auth */

#define TGC_DEFAULT_ADDR   "127.0.0.1:6379"
#define TGC_PASSWORD_ENV   "TOKENGUARD_REDIS_PASSWORD"
#define TGC_TIMEOUT_SEC    5
#define TGC_WATCH_SEC      2

#define TGC_MONEY_LEN      32   /* "-$9,223,372,036,854.78" fits */
#define TGC_NUM_LEN        32


/* the command line */

typedef struct {
    const char     *addr;
    const char     *password;
    const char     *user;           /* AUTH user password (ACL) */
    int             db;             /* -1: no SELECT */
    int             cluster;        /* --cluster: -r is a seed */
    int             tls;            /* --tls; tls.c has the rest */
    int             ssl_noverify;   /* --ssl-verify off */
    const char     *ssl_ca;
    const char     *ssl_name;
    const char     *ssl_cert;
    const char     *ssl_key;
    int             json;
    const char     *period_arg;     /* --period as given, or NULL */
    char            period[11];     /* YYYY-MM or YYYY-MM-DD */
    int             period_day;     /* period is a day */
    const char     *by;             /* top --by */
    const char     *sort;           /* top --sort spend|share, or NULL */
    long            n;              /* -n, 0: the command's default */
    int             watch;
    const char     *html;           /* report --html FILE */
    char          **args;           /* words after the command */
    int             nargs;
    unsigned        given;          /* TGC_OPT_* that appeared */
} tgc_opts_t;

#define TGC_OPT_PERIOD     0x01
#define TGC_OPT_BY         0x02
#define TGC_OPT_N          0x04
#define TGC_OPT_WATCH      0x08
#define TGC_OPT_HTML       0x10
#define TGC_OPT_SORT       0x20


/* the Redis connection */

typedef struct tgc_cluster_s  tgc_cluster_t;

typedef struct {
    redisContext        *ctx;
    tgc_opts_t          *opts;
    struct ssl_ctx_st   *ssl_ctx;     /* --tls: OpenSSL on ctx's socket, */
    struct ssl_st       *ssl;         /* hiredis's reader for the replies */
    redisReader         *reader;
    struct tgc_cluster_s *cluster;    /* --cluster: the nodes, slots */
    char                *out;         /* commands not sent yet */
    size_t               out_len;
} tgc_t;


/* the ops overrides tg:{u:NAME}:limits */

typedef enum {
    TGC_LIM_USD_MONTH = 0,
    TGC_LIM_USD_DAY,
    TGC_LIM_TOKENS_MONTH,
    TGC_LIM_TOKENS_DAY,
    TGC_LIM_REQUESTS_MONTH,
    TGC_LIM_REQUESTS_DAY,
    TGC_LIM_SANDBOX_USD_MONTH,
    TGC_LIM_SANDBOX_USD_DAY,
    TGC_LIM_N
} tgc_limit_e;

typedef struct {
    int64_t         value[TGC_LIM_N];   /* < 0: "no cap" */
    unsigned char   set[TGC_LIM_N];     /* the field exists */
} tgc_limits_t;

/* a named counter set: a model, a category, a reroute pair, a scope */

typedef struct {
    char           *name;
    size_t          len;
    int64_t         usd;
    int64_t         tokens_in;
    int64_t         tokens_out;
    int64_t         requests;
    int64_t         saved_usd;
    int64_t         sandbox_usd;
    int64_t         reserved_usd;
    int64_t         used_pct;       /* of the USD cap, -1: no override */
    int64_t         cap_usd;        /* -1: no override */
    const char     *field;          /* the cap's limits field */
    const char     *cap_source;     /* "nginx.conf" or "override" */
    int64_t         dry[5];         /* dry_denied, :identity, :policy,
                                       :budget, :sandbox */
    int64_t         dry_requests;   /* a route's, in dry-run */
    int64_t         dry_saved_usd;
    char            scope;          /* TG_SCOPE_USER or TG_SCOPE_TEAM */
    tgc_limits_t    lim;            /* a scope's overrides */
} tgc_item_t;

typedef struct {
    tgc_item_t     *items;
    size_t          n;
    size_t          cap;
} tgc_list_t;


/* one period hash tg:{u:NAME}:PERIOD; missing fields are 0 */

typedef struct {
    int64_t         usd;
    int64_t         tokens_in;
    int64_t         tokens_out;
    int64_t         requests;
    int64_t         reserved_usd;
    int64_t         reserved_tokens;
    int64_t         reserved_requests;
    int64_t         sandbox_usd;
    int64_t         sandbox_reserved_usd;
    int64_t         sandbox_tokens_in;
    int64_t         sandbox_tokens_out;
    int64_t         denied;
    int64_t         rerouted;
    int64_t         estimated;
    int64_t         saved_usd;
    int64_t         dry[5];         /* as tgc_item_t's */
    int64_t         dry_saved_usd;
    int64_t         conf[4];        /* conf_usd, conf_tokens, conf_requests,
                                       conf_sandbox_usd: nginx.conf's caps */
    unsigned char   conf_set[4];
    tgc_list_t      models;         /* usd, tokens_in, tokens_out */
    tgc_list_t      cats;           /* usd, requests */
    tgc_list_t      reroutes;       /* "A->B": requests, saved_usd */
    tgc_list_t      routes;         /* by tag: requests, saved_usd,
                                       dry_requests, dry_saved_usd */
} tgc_period_t;

#define TGC_DRY_KINDS  5
extern const char  *tgc_dry_kinds[TGC_DRY_KINDS];


extern const char  *tgc_limit_names[TGC_LIM_N];


/* main.c */
void tgc_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int tgc_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
int tgc_scope_arg(tgc_opts_t *o, const char *what, char *scope);

/* period.c */
int tgc_period_check(const char *s, int *is_day);
void tgc_period_current(int day, char out[11]);
const char *tgc_period_kind(const tgc_opts_t *o);

/* redis.c */
int tgc_connect(tgc_t *c);
void tgc_disconnect(tgc_t *c);
int tgc_command(tgc_t *c, redisReply **reply, int argc, const char **argv,
    const size_t *lens);
int tgc_append(tgc_t *c, int argc, const char **argv, const size_t *lens);
int tgc_reply(tgc_t *c, redisReply **reply);
int tgc_key(char scope, const char *name, size_t len, const char *suffix,
    char *out, size_t size, size_t *outlen);
int tgc_index_read(tgc_t *c, const char *period, char scope,
    tgc_list_t *names);
int tgc_scope_read(tgc_t *c, char scope, const char *name, size_t len,
    const char *period, tgc_period_t *p, tgc_limits_t *lim);
int tgc_scopes_read(tgc_t *c, char scope, tgc_list_t *names,
    const char *period, tgc_period_t *p, tgc_limits_t *lim);

/* cluster.c */
int tgc_cluster_connect(tgc_t *c);
void tgc_cluster_free(tgc_t *c);
int tgc_cluster_run(tgc_t *c, const char *cmd, size_t len,
    redisReply **reply);
int tgc_cluster_append(tgc_t *c, int argc, const char **argv,
    const size_t *lens);
int tgc_cluster_reply(tgc_t *c, redisReply **reply);
/* tls.c */
int tgc_tls_option(tgc_opts_t *o, const char *arg, const char *val);
int tgc_tls_connect(tgc_t *c, const char *host);
void tgc_tls_free(tgc_t *c);
int tgc_tls_append(tgc_t *c, int argc, const char **argv,
    const size_t *lens);
int tgc_tls_append_formatted(tgc_t *c, const char *cmd, size_t len);
int tgc_tls_reply(tgc_t *c, void **reply);

/* scope.c */
void tgc_period_init(tgc_period_t *p);
void tgc_period_free(tgc_period_t *p);
void tgc_period_parse(const redisReply *r, tgc_period_t *p);
void tgc_period_merge(tgc_period_t *dst, const tgc_period_t *src);
void tgc_limits_parse(const redisReply *r, tgc_limits_t *lim);
int tgc_limit_field(const char *s);
int tgc_limit_is_usd(int field);
tgc_item_t *tgc_list_get(tgc_list_t *l, const char *name, size_t len);
tgc_item_t *tgc_list_push(tgc_list_t *l, const char *name, size_t len);
void tgc_list_sort_usd(tgc_list_t *l);
void tgc_list_free(tgc_list_t *l);
int tgc_category_agentic(const char *name, size_t len);

/* fmt.c */
char *tgc_money(int64_t micro, char *buf);
char *tgc_num(int64_t v, char *buf);
char *tgc_pct(int64_t part, int64_t whole, char *buf);
int64_t tgc_used_pct(int64_t used, int64_t cap);
int tgc_money_parse(const char *s, int64_t *micro);
int tgc_int_parse(const char *s, int64_t *v);
char *tgc_name_tty(const char *name, size_t len);
char *tgc_name_utf8(const char *name, size_t len);
json_t *tgc_json_usd(int64_t micro);
json_t *tgc_json_name(const char *name, size_t len);
void tgc_json_set_name(json_t *obj, const char *name, size_t len,
    json_t *value);
int tgc_json_print(json_t *v);
void tgc_html_escape(FILE *f, const char *s, size_t len);

typedef struct {
    size_t          ncols;
    const char    **head;
    const char     *align;          /* 'l' or 'r' per column */
    char          **cells;
    size_t          nrows;
    size_t          cap;
} tgc_table_t;

void tgc_table_init(tgc_table_t *t, size_t ncols, const char **head,
    const char *align);
void tgc_table_row(tgc_table_t *t, ...);
void tgc_table_print(tgc_table_t *t, FILE *f, const char *indent);
void tgc_table_free(tgc_table_t *t);

/* the commands */
int tgc_cmd_usage(tgc_t *c);
int tgc_cmd_top(tgc_t *c);
int tgc_cmd_limit(tgc_t *c);
int tgc_cmd_sandbox(tgc_t *c);
int tgc_cmd_report(tgc_t *c);

/* limit.c */
int tgc_limit_write(tgc_t *c, char scope, const char *name, int field,
    int64_t value);
int tgc_limit_value(int field, const char *s, int64_t *v);

/* top.c: what top and report aggregate */
typedef struct {
    tgc_list_t      users;          /* name: usd, sandbox_usd, ... */
    tgc_list_t      teams;
    tgc_period_t    total;          /* the users' hashes summed */
    tgc_period_t    team_total;     /* the teams' hashes summed */
} tgc_agg_t;

#define TGC_AGG_USERS  1
#define TGC_AGG_TEAMS  2

int tgc_aggregate(tgc_t *c, int what, tgc_agg_t *a);
void tgc_aggregate_free(tgc_agg_t *a);

/* report.c, report_html.c, svg.c */

#define TGC_NEAR_PCT  80            /* "at or near the cap" */

typedef struct {
    tgc_opts_t     *opts;
    char            generated[32];  /* "YYYY-MM-DD HH:MM UTC" */
    size_t          top_n;
    tgc_agg_t       agg;            /* users and teams, biggest first */
    int64_t         spent_usd;      /* what the caps see: sandbox apart */
    int64_t         sandbox_usd;
    int64_t         total_usd;      /* spent + sandbox */
    int64_t         routine_usd;    /* by category: every one but agentic */
    int64_t         agentic_usd;
    int64_t         no_team_usd;    /* spent by users outside any team */
    int64_t         team_base_usd;  /* what teams' shares divide: theirs
                                       and no team's, from one pass */
    tgc_list_t      sandbox;        /* users: sandbox_usd, cap_usd */
    tgc_list_t      near;           /* scopes at >= TGC_NEAR_PCT of a cap */
    tgc_list_t      dry;            /* scopes dry-run would have refused */
} tgc_report_t;

int tgc_cap_effective(const tgc_limits_t *lim, const tgc_period_t *p,
    int field, int64_t *value, const char **source);

int tgc_report_html(tgc_report_t *r, const char *file);

typedef struct {
    const char     *label;
    size_t          len;
    int64_t         value;          /* micro-USD */
    const char     *color;
} tgc_bar_t;

void tgc_svg_bars(FILE *f, const char *title, const tgc_bar_t *bars,
    size_t n, int64_t total);
void tgc_svg_split(FILE *f, const char *title, const tgc_bar_t *parts,
    size_t n);

#endif /* TGC_H */
