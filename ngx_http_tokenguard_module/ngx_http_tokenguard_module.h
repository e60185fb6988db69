/*
 * Shared types of ngx_http_tokenguard_module: configuration, the
 * per-request context, and each file's entry points.
 */

#ifndef _NGX_HTTP_TOKENGUARD_MODULE_H_INCLUDED_
#define _NGX_HTTP_TOKENGUARD_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "tg_endpoint.h"
#include "tg_refusal.h"
#include "tg_request.h"
#include "tg_route_cond.h"
#include "tg_template.h"


#define NGX_HTTP_TOKENGUARD_MAX_CAPTURES  10


typedef struct {
    ngx_regex_t                *regex;
    ngx_str_t                   source;
    ngx_int_t                   captures;
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

    ngx_int_t                    max_tokens_default;
    size_t                       max_body;
    ngx_flag_t                   include_usage;
    ngx_flag_t                   headers;
} ngx_http_tokenguard_loc_conf_t;


typedef enum {
    NGX_HTTP_TOKENGUARD_NEW = 0,
    NGX_HTTP_TOKENGUARD_READING_BODY,
    NGX_HTTP_TOKENGUARD_REFUSE,         /* refusal decided, not yet sent */
    NGX_HTTP_TOKENGUARD_DONE            /* decided; let the request go */
} ngx_http_tokenguard_state_e;


typedef struct {
    ngx_http_tokenguard_state_e  state;

    tg_endpoint_t                ep;
    tg_request_t                 rq;            /* freed by pool cleanup */

    ngx_str_t                    user;
    ngx_str_t                    team;
    unsigned                     sandbox:1;
    unsigned                     inspected:1;   /* rq holds a request */
    unsigned                     rerouted:1;

    ngx_str_t                    model_requested;
    ngx_str_t                    model;         /* what goes upstream */
    ngx_str_t                    route;         /* tag of the rule used */
    ngx_str_t                    category;
    ngx_str_t                    decision;

    tg_refusal_e                 refusal;
    ngx_str_t                    message;       /* for the refusal body */
} ngx_http_tokenguard_ctx_t;


extern ngx_module_t  ngx_http_tokenguard_module;


/* ngx_http_tokenguard_module.c */
ngx_http_tokenguard_ctx_t *ngx_http_tokenguard_get_ctx(ngx_http_request_t *r);
ngx_http_tokenguard_ctx_t *ngx_http_tokenguard_create_ctx(
    ngx_http_request_t *r);
char *ngx_http_tokenguard_compile(ngx_conf_t *cf, ngx_str_t *source,
    ngx_http_tokenguard_regex_t *re);
ngx_int_t ngx_http_tokenguard_match(ngx_http_request_t *r,
    ngx_http_tokenguard_regex_t *re, ngx_str_t *s, int *caps, int ncaps);
void ngx_http_tokenguard_prompt(ngx_http_tokenguard_ctx_t *ctx, ngx_str_t *s);

/* ngx_http_tokenguard_access.c */
ngx_int_t ngx_http_tokenguard_handler(ngx_http_request_t *r);

/* ngx_http_tokenguard_body.c */
ngx_int_t ngx_http_tokenguard_body_readable(ngx_http_request_t *r);
ngx_int_t ngx_http_tokenguard_body_get(ngx_http_request_t *r,
    ngx_str_t *body);
ngx_int_t ngx_http_tokenguard_body_replace(ngx_http_request_t *r,
    u_char *data, size_t len);

/* ngx_http_tokenguard_identity.c */
ngx_int_t ngx_http_tokenguard_identify(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx);

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

/* ngx_http_tokenguard_refuse.c */
void ngx_http_tokenguard_refuse(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx, tg_refusal_e refusal,
    const char *fmt, ...);
ngx_int_t ngx_http_tokenguard_send_refusal(ngx_http_request_t *r,
    ngx_http_tokenguard_ctx_t *ctx);

/* ngx_http_tokenguard_headers.c */
ngx_int_t ngx_http_tokenguard_headers_init(ngx_conf_t *cf);

/* ngx_http_tokenguard_variables.c */
ngx_int_t ngx_http_tokenguard_add_variables(ngx_conf_t *cf);


#endif /* _NGX_HTTP_TOKENGUARD_MODULE_H_INCLUDED_ */
