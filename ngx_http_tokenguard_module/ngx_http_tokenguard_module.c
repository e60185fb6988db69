/*
 * ngx_http_tokenguard_module: the module's registration: its directives,
 * configuration, and the init and exit hooks.  What every concern shares
 * at run time (the request context, regexes, formatting) is in
 * ngx_http_tokenguard_util.c.
 */

#include "ngx_http_tokenguard_module.h"


static void *ngx_http_tokenguard_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_tokenguard_init_main_conf(ngx_conf_t *cf, void *conf);
static char *ngx_http_tokenguard_retention(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tokenguard_prices(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_tokenguard_init_process(ngx_cycle_t *cycle);
static void ngx_http_tokenguard_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_tokenguard_init_ledger(ngx_conf_t *cf,
    ngx_http_tokenguard_main_conf_t *tmcf);
static void *ngx_http_tokenguard_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_tokenguard_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_tokenguard_init(ngx_conf_t *cf);
static char *ngx_http_tokenguard_enum_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tokenguard_check_bounds(ngx_conf_t *cf, void *post,
    void *data);


static ngx_conf_enum_t  ngx_http_tokenguard_providers[] = {
    { ngx_string("auto"), TG_PROVIDER_AUTO },
    { ngx_string("openai"), TG_PROVIDER_OPENAI },
    { ngx_string("anthropic"), TG_PROVIDER_ANTHROPIC },
    { ngx_string("gemini"), TG_PROVIDER_GEMINI },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_tokenguard_store_error[] = {
    { ngx_string("closed"), NGX_HTTP_TOKENGUARD_STORE_CLOSED },
    { ngx_string("open"), NGX_HTTP_TOKENGUARD_STORE_OPEN },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_http_tokenguard_max_tokens_bounds = {
    ngx_http_tokenguard_check_bounds, 1, 10000000
};

static ngx_conf_num_bounds_t  ngx_http_tokenguard_stored_input_bounds = {
    ngx_http_tokenguard_check_bounds, 0, 10000000
};


static ngx_conf_num_bounds_t  ngx_http_tokenguard_match_limit_bounds = {
    ngx_http_tokenguard_check_bounds, 1000, 100000000
};




/* a field of tokenguard_redis's TLS settings in the main conf */
#define NGX_HTTP_TOKENGUARD_TLS_OFFSET(f)                                     \
    offsetof(ngx_http_tokenguard_main_conf_t, redis.tls.f)


static ngx_command_t  ngx_http_tokenguard_commands[] = {

    { ngx_string("tokenguard"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_loc_conf_t, enable),
      NULL },

    { ngx_string("tokenguard_provider"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tokenguard_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_loc_conf_t, provider),
      &ngx_http_tokenguard_providers },

    { ngx_string("tokenguard_user"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_loc_conf_t, user),
      NULL },

    { ngx_string("tokenguard_team"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_loc_conf_t, team),
      NULL },

    { ngx_string("tokenguard_sandbox"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_loc_conf_t, sandbox),
      NULL },

    { ngx_string("tokenguard_allow_models"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tokenguard_allow_models,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tokenguard_deny_prompt"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_tokenguard_deny_prompt,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tokenguard_passthrough"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_tokenguard_passthrough,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tokenguard_route"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_tokenguard_route_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tokenguard_classify"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_tokenguard_classify_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tokenguard_max_tokens_default"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_loc_conf_t, max_tokens_default),
      &ngx_http_tokenguard_max_tokens_bounds },

    { ngx_string("tokenguard_stored_input_tokens"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_loc_conf_t, stored_input_tokens),
      &ngx_http_tokenguard_stored_input_bounds },

    { ngx_string("tokenguard_regex_match_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_loc_conf_t, regex_match_limit),
      &ngx_http_tokenguard_match_limit_bounds },

    { ngx_string("tokenguard_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_loc_conf_t, max_body),
      NULL },

    { ngx_string("tokenguard_include_usage"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_loc_conf_t, include_usage),
      NULL },

    { ngx_string("tokenguard_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_loc_conf_t, headers),
      NULL },

    { ngx_string("tokenguard_dry_run"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_loc_conf_t, dry_run),
      NULL },

    { ngx_string("tokenguard_budget_warn"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_tokenguard_budget_warn,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tokenguard_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_tokenguard_metrics_directive,
      0,
      0,
      NULL },

    { ngx_string("tokenguard_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_tokenguard_redis_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_main_conf_t, redis),
      NULL },

    { ngx_string("tokenguard_redis_ssl_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      NGX_HTTP_TOKENGUARD_TLS_OFFSET(trusted_certificate),
      NULL },

    { ngx_string("tokenguard_redis_ssl_verify"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      NGX_HTTP_TOKENGUARD_TLS_OFFSET(verify),
      NULL },

    { ngx_string("tokenguard_redis_ssl_name"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      NGX_HTTP_TOKENGUARD_TLS_OFFSET(name),
      NULL },

    { ngx_string("tokenguard_redis_ssl_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      NGX_HTTP_TOKENGUARD_TLS_OFFSET(certificate),
      NULL },

    { ngx_string("tokenguard_redis_ssl_certificate_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      NGX_HTTP_TOKENGUARD_TLS_OFFSET(certificate_key),
      NULL },

    { ngx_string("tokenguard_prices"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_tokenguard_prices,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tokenguard_retention"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_tokenguard_retention,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tokenguard_lease"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE123,
      ngx_http_tokenguard_lease_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tokenguard_journal_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_main_conf_t, journal_size),
      NULL },

    { ngx_string("tokenguard_on_store_error"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tokenguard_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_loc_conf_t, on_store_error),
      &ngx_http_tokenguard_store_error },

    { ngx_string("tokenguard_cap"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE3,
      ngx_http_tokenguard_cap_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tokenguard_sandbox_allowance"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_tokenguard_allowance_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tokenguard_reservation_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tokenguard_loc_conf_t, reservation_ttl),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tokenguard_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_tokenguard_init,              /* postconfiguration */

    ngx_http_tokenguard_create_main_conf,  /* create main configuration */
    ngx_http_tokenguard_init_main_conf,    /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_tokenguard_create_loc_conf,   /* create location configuration */
    ngx_http_tokenguard_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_tokenguard_module = {
    NGX_MODULE_V1,
    &ngx_http_tokenguard_module_ctx,       /* module context */
    ngx_http_tokenguard_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_tokenguard_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_tokenguard_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_tokenguard_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_tokenguard_main_conf_t  *tmcf;

    tmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tokenguard_main_conf_t));
    if (tmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     tmcf->redis.addr = NULL;
     *     tmcf->prices_files = NULL;
     *     tmcf->prices = NULL;
     */

    tmcf->redis.db = 0;
    tmcf->redis.timeout = NGX_CONF_UNSET_MSEC;
    tmcf->redis.tls.verify = NGX_CONF_UNSET;
    tmcf->retention_month = NGX_CONF_UNSET;
    tmcf->retention_day = NGX_CONF_UNSET;
    tmcf->journal_size = NGX_CONF_UNSET_SIZE;
    tmcf->lease = NGX_CONF_UNSET;
    tmcf->lease_flush = NGX_CONF_UNSET_MSEC;
    tmcf->lease_idle = NGX_CONF_UNSET_MSEC;

    return tmcf;
}


static char *
ngx_http_tokenguard_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_str_t                         dflt = ngx_string("127.0.0.1:6379");
    ngx_str_t                         args[2], *file;
    ngx_array_t                       a, *saved;
    ngx_command_t                     cmd;
    ngx_http_tokenguard_main_conf_t  *tmcf = conf;

    if (tmcf->redis.addr == NULL) {
        /* parse the default as if it had been written */
        args[0] = (ngx_str_t) ngx_string("tokenguard_redis");
        args[1] = dflt;
        a.elts = args;
        a.nelts = 2;
        saved = cf->args;
        cf->args = &a;
        cmd.offset = offsetof(ngx_http_tokenguard_main_conf_t, redis);

        if (ngx_http_tokenguard_redis_directive(cf, &cmd, tmcf)
            != NGX_CONF_OK)
        {
            cf->args = saved;
            return NGX_CONF_ERROR;
        }

        cf->args = saved;
    }

    ngx_conf_init_msec_value(tmcf->redis.timeout, 1000);

    if (ngx_http_tokenguard_redis_tls_init_conf(cf, &tmcf->redis.tls)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(tmcf->retention_month, 400 * 86400);
    ngx_conf_init_value(tmcf->retention_day, 60 * 86400);
    ngx_conf_init_size_value(tmcf->journal_size, 4 * 1024 * 1024);
    ngx_conf_init_value(tmcf->lease, 1);
    ngx_conf_init_msec_value(tmcf->lease_flush, 1000);
    ngx_conf_init_msec_value(tmcf->lease_idle, 3000);

    if (tmcf->prices_files == NULL) {
        tmcf->prices_files = ngx_array_create(cf->pool, 1,
                                              sizeof(ngx_str_t));
        file = tmcf->prices_files ? ngx_array_push(tmcf->prices_files)
                                  : NULL;
        if (file == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_str_set(file, "conf/prices.json");
    }

    return NGX_CONF_OK;
}


/* tokenguard_prices FILE [FILE ...]: each later one layered over the last */
static char *
ngx_http_tokenguard_prices(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tokenguard_main_conf_t *tmcf = conf;

    ngx_str_t   *value, *file;
    ngx_uint_t   i;

    if (tmcf->prices_files != NULL) {
        return "is duplicate";
    }

    tmcf->prices_files = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                          sizeof(ngx_str_t));
    if (tmcf->prices_files == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        file = ngx_array_push(tmcf->prices_files);
        if (file == NULL) {
            return NGX_CONF_ERROR;
        }

        *file = value[i];
    }

    return NGX_CONF_OK;
}


/* tokenguard_retention month=400d day=60d */
static char *
ngx_http_tokenguard_retention(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tokenguard_main_conf_t *tmcf = conf;

    time_t      *t, v;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "month=", 6) == 0) {
            t = &tmcf->retention_month;
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

        } else if (ngx_strncmp(value[i].data, "day=", 4) == 0) {
            t = &tmcf->retention_day;
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

        } else {
            goto invalid;
        }

        v = ngx_parse_time(&s, 1);

        /* at least the period itself, or counters vanish mid-period */
        if (v == (time_t) NGX_ERROR
            || v < (t == &tmcf->retention_month ? 31 * 86400 : 86400))
        {
            goto invalid;
        }

        *t = v;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\" directive, it"
                       " must be \"month=TIME\" (31d or more) or"
                       " \"day=TIME\" (1d or more)", &value[i], &value[0]);
    return NGX_CONF_ERROR;
}


static void *
ngx_http_tokenguard_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_tokenguard_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tokenguard_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->deny_prompts = NULL;
     *     conf->routes = NULL;
     *     conf->classes = NULL;
     *     conf->passthrough = NULL;
     */

    conf->user = NGX_CONF_UNSET_PTR;
    conf->team = NGX_CONF_UNSET_PTR;
    conf->sandbox = NGX_CONF_UNSET_PTR;
    conf->allow_models = NGX_CONF_UNSET_PTR;
    conf->enable = NGX_CONF_UNSET;
    conf->provider = NGX_CONF_UNSET_UINT;
    conf->max_tokens_default = NGX_CONF_UNSET;
    conf->stored_input_tokens = NGX_CONF_UNSET;
    conf->regex_match_limit = NGX_CONF_UNSET;
    conf->max_body = NGX_CONF_UNSET_SIZE;
    conf->include_usage = NGX_CONF_UNSET;
    conf->headers = NGX_CONF_UNSET;
    conf->dry_run = NGX_CONF_UNSET;
    conf->budget_warn = NGX_CONF_UNSET_PTR;
    conf->on_store_error = NGX_CONF_UNSET_UINT;
    conf->reservation_ttl = NGX_CONF_UNSET_MSEC;

    return conf;
}


static char *
ngx_http_tokenguard_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_tokenguard_loc_conf_t  *prev = parent;
    ngx_http_tokenguard_loc_conf_t  *conf = child;

    ngx_http_tokenguard_main_conf_t  *tmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->provider, prev->provider,
                              TG_PROVIDER_AUTO);
    ngx_conf_merge_ptr_value(conf->user, prev->user, NULL);
    ngx_conf_merge_ptr_value(conf->team, prev->team, NULL);
    ngx_conf_merge_ptr_value(conf->sandbox, prev->sandbox, NULL);
    ngx_conf_merge_ptr_value(conf->allow_models, prev->allow_models, NULL);

    /* repeatable directives: a level that names none inherits them all */
    if (conf->deny_prompts == NULL) {
        conf->deny_prompts = prev->deny_prompts;
    }

    if (conf->routes == NULL) {
        conf->routes = prev->routes;
    }

    if (conf->classes == NULL) {
        conf->classes = prev->classes;
    }

    if (conf->passthrough == NULL) {
        conf->passthrough = prev->passthrough;
    }

    ngx_conf_merge_value(conf->max_tokens_default, prev->max_tokens_default,
                         4096);
    ngx_conf_merge_value(conf->stored_input_tokens, prev->stored_input_tokens,
                         128000);
    ngx_conf_merge_value(conf->regex_match_limit, prev->regex_match_limit,
                         NGX_HTTP_TOKENGUARD_MATCH_LIMIT);
    ngx_conf_merge_size_value(conf->max_body, prev->max_body,
                              4 * 1024 * 1024);
    ngx_conf_merge_value(conf->include_usage, prev->include_usage, 1);
    ngx_conf_merge_value(conf->headers, prev->headers, 1);
    ngx_conf_merge_value(conf->dry_run, prev->dry_run, 0);
    ngx_conf_merge_ptr_value(conf->budget_warn, prev->budget_warn, NULL);
    ngx_conf_merge_uint_value(conf->on_store_error, prev->on_store_error,
                              NGX_HTTP_TOKENGUARD_STORE_CLOSED);
    ngx_conf_merge_msec_value(conf->reservation_ttl, prev->reservation_ttl,
                              600000);

    /* caps and allowances: a level that names none inherits them all */

    if (!conf->caps_set) {
        if (prev->caps_set) {
            ngx_memcpy(conf->user_caps, prev->user_caps,
                       sizeof(conf->user_caps));
            ngx_memcpy(conf->team_caps, prev->team_caps,
                       sizeof(conf->team_caps));
            conf->caps_set = 1;

        } else {
            ngx_memset(conf->user_caps, 0xff, sizeof(conf->user_caps));
            ngx_memset(conf->team_caps, 0xff, sizeof(conf->team_caps));
        }
    }

    if (!conf->sandbox_set) {
        conf->sandbox_caps[0] = prev->sandbox_set ? prev->sandbox_caps[0] : -1;
        conf->sandbox_caps[1] = prev->sandbox_set ? prev->sandbox_caps[1] : -1;
        conf->sandbox_set = prev->sandbox_set;
    }

    /* the warning reads the share budget>= reads, the same way */
    conf->need_budget = conf->budget_warn != NULL;

    if (conf->routes) {
        ngx_uint_t                    i, j;
        ngx_http_tokenguard_cond_t   *cond;
        ngx_http_tokenguard_route_t  *route = conf->routes->elts;

        for (i = 0; i < conf->routes->nelts; i++) {
            if (route[i].conds == NULL) {
                continue;
            }

            cond = route[i].conds->elts;

            for (j = 0; j < route[i].conds->nelts; j++) {
                if (cond[j].cond.type == TG_COND_BUDGET_GE) {
                    conf->need_budget = 1;
                }
            }
        }
    }

    if (conf->enable) {
        tmcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_tokenguard_module);
        tmcf->used = 1;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_tokenguard_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt              *h;
    ngx_http_core_main_conf_t        *cmcf;
    ngx_http_tokenguard_main_conf_t  *tmcf;

    if (ngx_http_tokenguard_add_variables(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * The precontent phase runs after every access check (auth_basic,
     * auth_request, allow/deny under "satisfy any"), so the identity
     * variables are set and no access module can skip us.
     */

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_tokenguard_handler;

    /*
     * First in the log phase: the settle sets the variables that the
     * access log (whose handler registered before ours) writes.
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.elts;
    ngx_memmove(&h[1], &h[0], (cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.nelts
                               - 1) * sizeof(ngx_http_handler_pt));
    h[0] = ngx_http_tokenguard_log_handler;

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tokenguard_module);

    if (tmcf->used) {
        if (ngx_http_tokenguard_init_ledger(cf, tmcf) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_tokenguard_usage_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_tokenguard_headers_init(cf);
}


/*
 * The price table, the scripts' hashes, and the journal and counters
 * zones, once some location uses them
 */

static ngx_int_t
ngx_http_tokenguard_init_ledger(ngx_conf_t *cf,
    ngx_http_tokenguard_main_conf_t *tmcf)
{
    char                 err[256];
    ngx_str_t            name = ngx_string("tokenguard");
    ngx_str_t            metrics = ngx_string("tokenguard_metrics");
    ngx_str_t           *file;
    ngx_uint_t           i;
    ngx_pool_cleanup_t  *cln;

    tmcf->prices = tg_prices_new();
    if (tmcf->prices == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        tg_prices_free(tmcf->prices);
        return NGX_ERROR;
    }

    cln->handler = (ngx_pool_cleanup_pt) tg_prices_free;
    cln->data = tmcf->prices;

    file = tmcf->prices_files->elts;

    for (i = 0; i < tmcf->prices_files->nelts; i++) {
        if (ngx_conf_full_name(cf->cycle, &file[i], 0) != NGX_OK) {
            return NGX_ERROR;
        }

        if (tg_prices_add_file(tmcf->prices, (char *) file[i].data, err,
                               sizeof(err))
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "tokenguard_prices \"%V\": %s", &file[i],
                               err);
            return NGX_ERROR;
        }
    }

    ngx_http_tokenguard_scripts_init();

    tmcf->journal = ngx_shared_memory_add(cf, &name, tmcf->journal_size,
                                          &ngx_http_tokenguard_module);
    if (tmcf->journal == NULL) {
        return NGX_ERROR;
    }

    tmcf->journal->init = ngx_http_tokenguard_journal_init_zone;

    tmcf->metrics = ngx_shared_memory_add(cf, &metrics, 128 * 1024,
                                          &ngx_http_tokenguard_module);
    if (tmcf->metrics == NULL) {
        return NGX_ERROR;
    }

    tmcf->metrics->init = ngx_http_tokenguard_counters_init_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tokenguard_init_process(ngx_cycle_t *cycle)
{
    ngx_http_tokenguard_main_conf_t  *tmcf;

    tmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_tokenguard_module);

    if (tmcf == NULL || !tmcf->used) {
        return NGX_OK;
    }

    if (ngx_http_tokenguard_regex_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    /* before a chroot or a full fd table can keep it away */
    (void) tg_id_open();

    if (ngx_http_tokenguard_cluster_init_process(cycle, &tmcf->redis)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_tokenguard_journal_init_process(cycle);
    ngx_http_tokenguard_lease_init_process(cycle, tmcf);

    return NGX_OK;
}


static void
ngx_http_tokenguard_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_tokenguard_lease_exit_process();
    ngx_http_tokenguard_cluster_exit_process();
    tg_id_close();
    ngx_http_tokenguard_regex_exit_process();
}


/* the stock enum slot, with a message that names the directive */

static char *
ngx_http_tokenguard_enum_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char           *p, buf[256];
    ngx_str_t        *value;
    ngx_conf_enum_t  *e;

    value = cf->args->elts;

    for (e = cmd->post; e->name.len; e++) {
        if (e->name.len == value[1].len
            && ngx_strcmp(e->name.data, value[1].data) == 0)
        {
            return ngx_conf_set_enum_slot(cf, cmd, conf);
        }
    }

    p = buf;

    for (e = cmd->post; e->name.len; e++) {
        p = ngx_slprintf(p, buf + sizeof(buf), "%s\"%V\"",
                         p == buf ? "" : (e[1].name.len ? ", " : " or "),
                         &e->name);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive,"
                       " it must be %*s", &value[1], &value[0], p - buf, buf);

    return NGX_CONF_ERROR;
}


/* ngx_conf_check_num_bounds, with a message that names the directive */

static char *
ngx_http_tokenguard_check_bounds(ngx_conf_t *cf, void *post, void *data)
{
    ngx_conf_num_bounds_t  *bounds = post;
    ngx_int_t              *np = data;

    ngx_str_t  *value;

    if (*np >= bounds->low && *np <= bounds->high) {
        return NGX_CONF_OK;
    }

    value = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, it must"
                       " be from %i to %i",
                       &value[1], &value[0], bounds->low, bounds->high);

    return NGX_CONF_ERROR;
}
