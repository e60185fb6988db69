/*
 * Shared types of ngx_http_tokenguard_module: configuration, the
 * per-request context, and each file's entry points.
 */

#ifndef _NGX_HTTP_TOKENGUARD_MODULE_H_INCLUDED_
#define _NGX_HTTP_TOKENGUARD_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tokenguard_redis.h"
#include "tg_endpoint.h"
#include "tg_id.h"
#include "tg_json_edit.h"
#include "tg_limit.h"
#include "tg_prices.h"
#include "tg_refusal.h"
#include "tg_request.h"
#include "tg_route_cond.h"
#include "tg_sse.h"
#include "tg_template.h"
#include "tg_usage.h"


#define NGX_HTTP_TOKENGUARD_MAX_CAPTURES  10

/* PCRE2 limits per start position: backtracking steps and depth */
#define NGX_HTTP_TOKENGUARD_MATCH_LIMIT   100000
#define NGX_HTTP_TOKENGUARD_MATCH_DEPTH   10000


typedef struct ngx_http_tokenguard_lease_s  ngx_http_tokenguard_lease_t;
typedef struct ngx_http_tokenguard_ctx_s    ngx_http_tokenguard_ctx_t;

/* how a lower layer answers the one that called it */
typedef void (*ngx_http_tokenguard_done_pt)(ngx_http_tokenguard_ctx_t *ctx);


typedef struct {
    ngx_regex_t                *regex;
    ngx_str_t                   source;
    ngx_int_t                   captures;
    /*
     * PCRE2: whether its JIT code may run directly, learnt at a worker's
     * first match (nginx JIT-compiles after the configuration is read)
     */
    unsigned                    jit_known:1;
    unsigned                    jit:1;
} ngx_http_tokenguard_regex_t;


typedef struct {
    ngx_http_tokenguard_regex_t  regex;
    ngx_str_t                    name;
} ngx_http_tokenguard_deny_t;


typedef struct {
    tg_cond_t                    cond;
    ngx_http_tokenguard_regex_t  regex;         /* prompt~ only */
} ngx_http_tokenguard_cond_t;


typedef struct {
    ngx_http_tokenguard_regex_t  match;         /* on the model */
    tg_template_t                target;
    ngx_array_t                 *conds;         /* of .._cond_t, or NULL */
    ngx_str_t                    tag;
} ngx_http_tokenguard_route_t;


typedef struct {
    ngx_http_tokenguard_regex_t  regex;
    ngx_str_t                    category;
} ngx_http_tokenguard_class_t;


/* caps: index TG_CAP(kind, period), usd_month usd_day tokens_month ... */
#define NGX_HTTP_TOKENGUARD_CAPS  6
#define TG_CAP(kind, period)      ((kind) * 2 + (period))

#define NGX_HTTP_TOKENGUARD_STORE_CLOSED  0
#define NGX_HTTP_TOKENGUARD_STORE_OPEN    1


typedef struct {
    ngx_http_tokenguard_redis_conf_t  redis;
    ngx_array_t                 *prices_files;      /* of ngx_str_t */
    tg_prices_t                 *prices;
    time_t                       retention_month;   /* seconds */
    time_t                       retention_day;
    size_t                       journal_size;
    ngx_shm_zone_t              *journal;
    ngx_shm_zone_t              *metrics;
    ngx_flag_t                   lease;             /* budget leases */
    ngx_msec_t                   lease_flush;
    ngx_msec_t                   lease_idle;
    ngx_flag_t                   used;              /* tokenguard on anywhere */
    u_char                       warn_set[101];     /* budget_warn's PCTs */
} ngx_http_tokenguard_main_conf_t;


typedef struct {
    ngx_flag_t                   enable;
    ngx_uint_t                   provider;      /* tg_provider_e */

    ngx_http_complex_value_t    *user;
    ngx_http_complex_value_t    *team;
    ngx_http_complex_value_t    *sandbox;

    ngx_http_tokenguard_regex_t *allow_models;
    ngx_array_t                 *deny_prompts;  /* of .._deny_t */
    ngx_array_t                 *routes;        /* of .._route_t */
    ngx_array_t                 *classes;       /* of .._class_t */
    ngx_array_t                 *passthrough;   /* of .._passthrough_t */

    ngx_int_t                    max_tokens_default;
    ngx_int_t                    stored_input_tokens;
    ngx_int_t                    regex_match_limit;
    size_t                       max_body;
    ngx_flag_t                   include_usage;
    ngx_flag_t                   headers;

    ngx_uint_t                   on_store_error;
    ngx_msec_t                   reservation_ttl;

    /* -1: no cap; set[] says a level named any, for inheritance */
    int64_t                      user_caps[NGX_HTTP_TOKENGUARD_CAPS];
    int64_t                      team_caps[NGX_HTTP_TOKENGUARD_CAPS];
    int64_t                      sandbox_caps[2];
    ngx_flag_t                   caps_set;
    ngx_flag_t                   sandbox_set;
    ngx_flag_t                   need_budget;   /* budget>= or budget_warn */
    ngx_flag_t                   dry_run;
    ngx_array_t                 *budget_warn;   /* of ngx_uint_t, ascending */
} ngx_http_tokenguard_loc_conf_t;


typedef enum {
    NGX_HTTP_TOKENGUARD_NEW = 0,
    NGX_HTTP_TOKENGUARD_READING_BODY,
    NGX_HTTP_TOKENGUARD_WAIT_STORE,     /* the budget answers later */
    NGX_HTTP_TOKENGUARD_REFUSE,         /* refusal decided, not yet sent */
    NGX_HTTP_TOKENGUARD_DONE            /* decided; let the request go */
} ngx_http_tokenguard_state_e;


/*
 * The request context, in one part per concern; each part is written by
 * the file its comment names and read by whoever needs it.
 */

/* who calls: ngx_http_tokenguard_identity.c */
typedef struct {
    ngx_str_t                    user;
    ngx_str_t                    team;
    ngx_str_t                    user_shown;    /* %XX-escaped: messages, */
    ngx_str_t                    team_shown;    /* logs, headers */
    unsigned                     sandbox:1;
} ngx_http_tokenguard_caller_t;


/* what came in: the endpoint (endpoint.c), the body and its reading */
typedef struct {
    tg_endpoint_t                ep;
    tg_request_t                 rq;            /* freed by pool cleanup */
    ngx_str_t                    model_requested;
    ngx_str_t                    body;          /* as the client sent it */
    ngx_uint_t                   body_temporary;  /* a copy to free */
    unsigned                     inspected:1;   /* rq holds a request */
} ngx_http_tokenguard_in_t;


/* where it goes: ngx_http_tokenguard_route.c */
typedef struct {
    ngx_str_t                    model;         /* what goes upstream */
    ngx_str_t                    tag;           /* of the rule used */
    ngx_str_t                    category;
    const tg_price_t            *dry_price;     /* dry run: the target's */
    unsigned                     rerouted:1;    /* never in a dry run */
} ngx_http_tokenguard_routing_t;


/* the budget's answer: ngx_http_tokenguard_budget.c, ledger.c, lease.c */
typedef struct {
    ngx_http_tokenguard_done_pt  done;          /* the caller's continuation */
    int                          pct;           /* budget>=; -1: unknown */
    int64_t                      pct_limit;     /* the cap pct is of */
    int64_t                      pct_used;
    unsigned                     pct_day:1;     /* a daily cap */
    /* the tightest of every cap that applies: budget_warn, budget_pct */
    int                          warn_pct;      /* -1: unknown, no cap */
    int64_t                      warn_limit;
    int64_t                      warn_used;
    unsigned                     warn_cap:3;    /* as the STATUS script */
    unsigned                     warn_team:1;
    int64_t                      reserve_usd;   /* worst case, micro-USD */
    int64_t                      reserve_tokens;
    int64_t                      reserve_input; /* of them, the input */
    int64_t                      remaining_usd; /* -1: no USD cap */
    u_char                       id[TG_ID_LEN + 1];  /* reservation id */
    unsigned                     reserved_user:1;
    unsigned                     reserved_team:1;
    unsigned                     store_failed:1;
    unsigned                     refused_scope:1;   /* 1: the team's cap */
    char                         cap_field[24]; /* the cap that refused */
    int64_t                      cap_limit;
    int64_t                      cap_used;
} ngx_http_tokenguard_budget_t;


/* a reservation by script: ngx_http_tokenguard_ledger.c */
typedef struct {
    ngx_uint_t                       waiting;   /* replies still owed */
    ngx_http_tokenguard_redis_op_t  *ops[2];    /* in flight, to detach */
    unsigned                         status_failed:1;   /* a scope unread */
} ngx_http_tokenguard_ledger_t;


/* admitted from this worker's slices: ngx_http_tokenguard_lease.c */
typedef struct {
    ngx_http_tokenguard_lease_t  *slice[2];     /* user, team */
    int64_t                       worst[3];     /* usd, tokens, requests */
    ngx_queue_t                   queue;        /* waiting for a slice */
    unsigned                      leased:1;
    unsigned                      waiting:1;
} ngx_http_tokenguard_leased_t;


/* what the provider answered and what it cost: ngx_http_tokenguard_usage.c */
typedef struct {
    ngx_uint_t                   status;        /* the provider's */
    unsigned                     counting:1;
    unsigned                     count_failed:1;
    unsigned                     sse_on:1;
    unsigned                     answered:1;    /* the provider's headers */
    unsigned                     estimated:1;   /* usage not reported */
    unsigned                     charge_reserved:1; /* the worst case */
    tg_sse_t                     sse;
    tg_usage_scan_t             *scan;          /* the body, or each event */
    off_t                        relayed;       /* body bytes passed on */
    tg_usage_t                   usage;
    ngx_str_t                    usage_source;  /* provider | estimate */
    int64_t                      cost_usd;      /* settled, micro-USD */
    int64_t                      saved_usd;     /* by the reroute */
    int64_t                      dry_saved_usd; /* had the route applied */
} ngx_http_tokenguard_resp_t;


/* the pipeline's own (ngx_http_tokenguard_access.c, refuse.c) */
struct ngx_http_tokenguard_ctx_s {
    ngx_http_tokenguard_state_e    state;
    ngx_http_tokenguard_done_pt    cleanup;     /* the request's end */
    ngx_http_request_t            *request;
    time_t                         now;         /* periods are fixed here */
    const tg_price_t              *price;       /* of routing.model */

    ngx_str_t                      decision;
    ngx_str_t                      dry;         /* would-be refusal's */
    const char                    *dry_kind;    /* "budget", "policy" ... */
    tg_refusal_e                   refusal;
    ngx_str_t                      message;     /* for the refusal body */
    time_t                         retry_after; /* budget refusals, or 0 */
    unsigned                       open:1;      /* charged, no reservation */
    unsigned                       settled:1;
    unsigned                       enforce:1;   /* refused in dry run too */

    ngx_http_tokenguard_caller_t   caller;
    ngx_http_tokenguard_in_t       in;
    ngx_http_tokenguard_routing_t  routing;
    ngx_http_tokenguard_budget_t   budget;
    ngx_http_tokenguard_ledger_t   ledger;
    ngx_http_tokenguard_leased_t   lease;
    ngx_http_tokenguard_resp_t     resp;
};


extern ngx_module_t  ngx_http_tokenguard_module;


/* after a refusal: NGX_DECLINED, or NGX_OK when a dry run let it go on */
#define ngx_http_tokenguard_refused(ctx)                                     \
    ((ctx)->state == NGX_HTTP_TOKENGUARD_REFUSE ? NGX_DECLINED : NGX_OK)


/*
 * Each file's entry points, in the layers of README's Layout: a file
 * calls only those below it.  ngx_http_tokenguard_module.c has none;
 * redis.c's are in ngx_http_tokenguard_redis.h, the counters' zone in
 * ngx_http_tokenguard_counters.h.
 */

/* ngx_http_tokenguard_access.c */
ngx_int_t ngx_http_tokenguard_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_tokenguard_log_handler(ngx_http_request_t *r);

/* ngx_http_tokenguard_metrics.c */
char *ngx_http_tokenguard_metrics_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

/* ngx_http_tokenguard_variables.c */
ngx_int_t ngx_http_tokenguard_add_variables(ngx_conf_t *cf);


/* ngx_http_tokenguard_identity.c */
ngx_int_t ngx_http_tokenguard_shown(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *shown);
ngx_int_t ngx_http_tokenguard_identify(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx);

/* ngx_http_tokenguard_strip.c */
ngx_int_t ngx_http_tokenguard_strip_headers(ngx_http_request_t *r);

/* ngx_http_tokenguard_endpoint.c */
void ngx_http_tokenguard_endpoint_classify(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx);
ngx_int_t ngx_http_tokenguard_endpoint_check(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx);
ngx_int_t ngx_http_tokenguard_endpoint_free(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx);
char *ngx_http_tokenguard_passthrough(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_tokenguard_policy.c */
ngx_int_t ngx_http_tokenguard_check_prompt(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx);
ngx_int_t ngx_http_tokenguard_check_model(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx);
char *ngx_http_tokenguard_allow_models(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_tokenguard_deny_prompt(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_tokenguard_route.c */
ngx_int_t ngx_http_tokenguard_classify(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx);
ngx_int_t ngx_http_tokenguard_route(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx);
char *ngx_http_tokenguard_route_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_tokenguard_classify_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

/* ngx_http_tokenguard_body.c */
ngx_int_t ngx_http_tokenguard_body_readable(ngx_http_request_t *r);
ngx_int_t ngx_http_tokenguard_body_get(ngx_http_request_t *r,
    ngx_str_t *body, ngx_uint_t *temporary);
void ngx_http_tokenguard_body_release(ngx_http_request_t *r,
    ngx_str_t *body, ngx_uint_t *temporary);
ngx_int_t ngx_http_tokenguard_body_splice(ngx_http_request_t *r,
    ngx_str_t *body, tg_json_edit_t *edits, ngx_uint_t n);
void ngx_http_tokenguard_body_identity(ngx_http_request_t *r);

/* ngx_http_tokenguard_refuse.c */
void ngx_http_tokenguard_refuse(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, tg_refusal_e refusal,
    const char *fmt, ...);
ngx_int_t ngx_http_tokenguard_send_refusal(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx);
void ngx_http_tokenguard_refuse_budget(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx);

/* ngx_http_tokenguard_headers.c */
ngx_int_t ngx_http_tokenguard_headers_init(ngx_conf_t *cf);
char *ngx_http_tokenguard_budget_warn(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_tokenguard_usage.c */
void ngx_http_tokenguard_usage_header(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx);
void ngx_http_tokenguard_usage_settle(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx);
void ngx_http_tokenguard_usage_cleanup(ngx_http_tokenguard_ctx_t *ctx);
ngx_int_t ngx_http_tokenguard_usage_init(ngx_conf_t *cf);

/* ngx_http_tokenguard_budget.c: the budget's interface */
ngx_int_t ngx_http_tokenguard_budget_status(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, ngx_http_tokenguard_done_pt done);
ngx_int_t ngx_http_tokenguard_budget_reserve(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, ngx_http_tokenguard_done_pt done);
void ngx_http_tokenguard_budget_settle(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, int64_t usd, int64_t input,
    int64_t output);
void ngx_http_tokenguard_budget_release(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx);
void ngx_http_tokenguard_budget_count(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, const char *field, const char *kind);
void ngx_http_tokenguard_budget_detach(ngx_http_tokenguard_ctx_t *ctx);

/* ngx_http_tokenguard_lease.c: the budget by leased slices */
ngx_int_t ngx_http_tokenguard_lease_status(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx);
ngx_int_t ngx_http_tokenguard_lease_reserve(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx);
void ngx_http_tokenguard_lease_settle(ngx_http_tokenguard_ctx_t *ctx,
    int64_t usd, int64_t tin, int64_t tout);
void ngx_http_tokenguard_lease_release(ngx_http_tokenguard_ctx_t *ctx);
void ngx_http_tokenguard_lease_detach(ngx_http_tokenguard_ctx_t *ctx);
void ngx_http_tokenguard_lease_init_process(ngx_cycle_t *cycle,
    ngx_http_tokenguard_main_conf_t *tmcf);
void ngx_http_tokenguard_lease_exit_process(void);
char *ngx_http_tokenguard_lease_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_tokenguard_ledger.c: the budget by a script per request */
ngx_int_t ngx_http_tokenguard_ledger_status(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx);
ngx_int_t ngx_http_tokenguard_ledger_reserve(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx);
void ngx_http_tokenguard_ledger_settle(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, int64_t usd, int64_t input,
    int64_t output);
void ngx_http_tokenguard_ledger_release(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx);
void ngx_http_tokenguard_ledger_count(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, const char *field, const char *kind);
void ngx_http_tokenguard_ledger_detach(ngx_http_tokenguard_ctx_t *ctx);
char *ngx_http_tokenguard_cap_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_tokenguard_allowance_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

/* ngx_http_tokenguard_write.c */
void ngx_http_tokenguard_write_command(ngx_int_t script, tg_command_t *c);
void ngx_http_tokenguard_write_raw(ngx_int_t script, u_char *cmd,
    size_t len);
void ngx_http_tokenguard_write_index(char scope, ngx_str_t *name,
    time_t *last);

/* ngx_http_tokenguard_journal.c */
ngx_int_t ngx_http_tokenguard_journal_add(ngx_int_t script, char *cmd,
    size_t len);
ngx_int_t ngx_http_tokenguard_journal_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
void ngx_http_tokenguard_journal_init_process(ngx_cycle_t *cycle);
ngx_uint_t ngx_http_tokenguard_journal_pending(void);

/* ngx_http_tokenguard_counters.c */
ngx_int_t ngx_http_tokenguard_counters_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
void ngx_http_tokenguard_counters_request(ngx_http_tokenguard_ctx_t *ctx);
void ngx_http_tokenguard_counters_usage(ngx_http_tokenguard_ctx_t *ctx,
    int64_t input, int64_t output, int64_t cost);
void ngx_http_tokenguard_counters_saved(ngx_http_tokenguard_ctx_t *ctx);
void ngx_http_tokenguard_counters_warning(ngx_uint_t threshold);
void ngx_http_tokenguard_counters_store(ngx_msec_int_t us, ngx_uint_t error,
    ngx_uint_t expired);

/* ngx_http_tokenguard_util.c */
ngx_int_t ngx_http_tokenguard_regex_init_process(ngx_cycle_t *cycle);
void ngx_http_tokenguard_regex_exit_process(void);
ngx_http_tokenguard_ctx_t *ngx_http_tokenguard_get_ctx(ngx_http_request_t *r);
ngx_http_tokenguard_ctx_t *ngx_http_tokenguard_create_ctx(
    ngx_http_request_t *r);
char *ngx_http_tokenguard_compile(ngx_conf_t *cf, ngx_str_t *source,
    ngx_http_tokenguard_regex_t *re);
ngx_int_t ngx_http_tokenguard_match(ngx_http_request_t *r,
    ngx_http_tokenguard_regex_t *re, ngx_str_t *s, int *caps, int ncaps);
void ngx_http_tokenguard_prompt(ngx_http_tokenguard_ctx_t *ctx, ngx_str_t *s);
u_char *ngx_http_tokenguard_format_int(u_char *p, int64_t v);
u_char *ngx_http_tokenguard_format_usd(u_char *p, int64_t micro);
u_char *ngx_http_tokenguard_format_money(u_char *p, int64_t micro);

/* the name a dry run counts a caller without an identity under: "" */
extern u_char  ngx_http_tokenguard_anonymous[];

#endif /* _NGX_HTTP_TOKENGUARD_MODULE_H_INCLUDED_ */
