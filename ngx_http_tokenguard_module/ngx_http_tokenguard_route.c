/*
 * Routing (tokenguard_route: rewrite the model, first match wins) and
 * the audit category of a request (tokenguard_classify).
 */

#include "ngx_http_tokenguard_module.h"


static ngx_str_t  ngx_http_tokenguard_agentic = ngx_string("agentic");
static ngx_str_t  ngx_http_tokenguard_chat = ngx_string("chat");


/* agentic if tools are in play, else the first matching rule, else chat */

ngx_int_t
ngx_http_tokenguard_classify(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_str_t                     prompt;
    ngx_uint_t                    i;
    ngx_http_tokenguard_class_t  *cls;

    if (ctx->in.rq.tools) {
        ctx->routing.category = ngx_http_tokenguard_agentic;
        return NGX_OK;
    }

    ctx->routing.category = ngx_http_tokenguard_chat;

    if (tlcf->classes == NULL) {
        return NGX_OK;
    }

    ngx_http_tokenguard_prompt(ctx, &prompt);

    cls = tlcf->classes->elts;

    for (i = 0; i < tlcf->classes->nelts; i++) {
        if (ngx_http_tokenguard_match(r, &cls[i].regex, &prompt, NULL, 0)
            == 1)
        {
            ctx->routing.category = cls[i].category;
            break;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tokenguard_conds_hold(ngx_http_request_t *r,
    ngx_http_tokenguard_route_t *route, ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_str_t                    prompt;
    ngx_uint_t                   i;
    tg_cond_facts_t              facts;
    ngx_http_tokenguard_cond_t  *cond;

    if (route->conds == NULL) {
        return 1;
    }

    facts.prompt_tokens = ctx->in.rq.prompt_tokens;
    facts.budget_pct = ctx->budget.pct;     /* -1 unless a route reads it */
    facts.tools = ctx->in.rq.tools;
    facts.stream = ctx->in.rq.stream;
    facts.sandbox = ctx->caller.sandbox;

    cond = route->conds->elts;

    for (i = 0; i < route->conds->nelts; i++) {

        if (cond[i].cond.type == TG_COND_PROMPT) {
            ngx_http_tokenguard_prompt(ctx, &prompt);

            /* an erroring regex does not route: routing is an optimisation */
            if (ngx_http_tokenguard_match(r, &cond[i].regex, &prompt, NULL, 0)
                != 1)
            {
                return 0;
            }

            continue;
        }

        if (!tg_cond_holds(&cond[i].cond, &facts)) {
            return 0;
        }
    }

    return 1;
}


ngx_int_t
ngx_http_tokenguard_route(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx)
{
    int                           caps[NGX_HTTP_TOKENGUARD_MAX_CAPTURES * 3];
    long                          len;
    u_char                       *buf;
    ngx_uint_t                    i, ncaps;
    ngx_http_tokenguard_route_t  *route;

    if (tlcf->routes == NULL) {
        return NGX_OK;
    }

    route = tlcf->routes->elts;

    for (i = 0; i < tlcf->routes->nelts; i++) {

        ncaps = ngx_min((ngx_uint_t) route[i].match.captures + 1,
                        NGX_HTTP_TOKENGUARD_MAX_CAPTURES);

        if (ngx_http_tokenguard_match(r, &route[i].match,
                                      &ctx->in.model_requested, caps,
                                      ncaps * 3)
            != 1)
        {
            continue;
        }

        if (!ngx_http_tokenguard_conds_hold(r, &route[i], ctx)) {
            continue;
        }

        buf = ngx_pnalloc(r->pool, TG_MODEL_MAX);
        if (buf == NULL) {
            return NGX_ERROR;
        }

        len = tg_template_expand(&route[i].target,
                                 (char *) ctx->in.model_requested.data,
                                 caps, ncaps, (char *) buf, TG_MODEL_MAX);

        /* captures of a valid name are valid: this is defence in depth */
        if (len <= 0 || !tg_request_model_valid((char *) buf, len)) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "tokenguard: route \"%V\" makes an empty, too"
                          " long or invalid model name from \"%V\"; not"
                          " routed", &route[i].tag, &ctx->in.model_requested);
            continue;
        }

        /* the first rule that matches decides, even if it keeps the model */

        if ((size_t) len != ctx->in.model_requested.len
            || ngx_memcmp(buf, ctx->in.model_requested.data, len) != 0)
        {
            ctx->routing.model.data = buf;
            ctx->routing.model.len = len;
            ctx->routing.tag = route[i].tag;
            ctx->routing.rerouted = 1;
        }

        break;
    }

    return NGX_OK;
}


/* a tag or category becomes a Redis field and a metric label */

static ngx_int_t
ngx_http_tokenguard_valid_name(ngx_str_t *s)
{
    u_char      c;
    ngx_uint_t  i;

    if (s->len == 0 || s->len > 64) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
        {
            return 0;
        }
    }

    return 1;
}


/* tokenguard_route REGEX TARGET [COND ...] [tag=NAME] */

char *
ngx_http_tokenguard_route_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tokenguard_loc_conf_t *tlcf = conf;

    u_char                        err[128];
    ngx_str_t                    *value, source;
    ngx_uint_t                    i;
    ngx_http_tokenguard_cond_t   *cond;
    ngx_http_tokenguard_route_t  *route;

    value = cf->args->elts;

    if (tlcf->routes == NULL) {
        tlcf->routes = ngx_array_create(cf->pool, 4,
                                        sizeof(ngx_http_tokenguard_route_t));
        if (tlcf->routes == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    route = ngx_array_push(tlcf->routes);
    if (route == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(route, sizeof(ngx_http_tokenguard_route_t));

    if (ngx_http_tokenguard_compile(cf, &value[1], &route->match)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (tg_template_parse((char *) value[2].data, value[2].len,
                          &route->target)
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid target \"%V\" in \"%V\" directive: use"
                           " a model name with $1..$9 for captures and $$"
                           " for a dollar", &value[2], &value[0]);
        return NGX_CONF_ERROR;
    }

    if (!tg_request_model_valid((char *) value[2].data, value[2].len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid target \"%V\" in \"%V\" directive: a"
                           " model name is up to 256 printable ASCII"
                           " characters, without spaces",
                           &value[2], &value[0]);
        return NGX_CONF_ERROR;
    }

    if (route->target.max_capture > route->match.captures) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "target \"%V\" in \"%V\" directive uses $%d, but"
                           " \"%V\" has only %i capture groups",
                           &value[2], &value[0], route->target.max_capture,
                           &value[1], route->match.captures);
        return NGX_CONF_ERROR;
    }

    for (i = 3; i < cf->args->nelts; i++) {

        if (value[i].len > sizeof("tag=") - 1
            && ngx_strncmp(value[i].data, "tag=", sizeof("tag=") - 1) == 0)
        {
            route->tag.data = value[i].data + sizeof("tag=") - 1;
            route->tag.len = value[i].len - (sizeof("tag=") - 1);

            if (!ngx_http_tokenguard_valid_name(&route->tag)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid tag \"%V\" in \"%V\" directive:"
                                   " use up to 64 letters, digits, \"_\","
                                   " \"-\" or \".\"",
                                   &route->tag, &value[0]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (route->conds == NULL) {
            route->conds = ngx_array_create(cf->pool, 2,
                                           sizeof(ngx_http_tokenguard_cond_t));
            if (route->conds == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        cond = ngx_array_push(route->conds);
        if (cond == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(cond, sizeof(ngx_http_tokenguard_cond_t));

        if (tg_cond_parse((char *) value[i].data, value[i].len, &cond->cond,
                          (char *) err, sizeof(err))
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid condition \"%V\" in \"%V\""
                               " directive: %s", &value[i], &value[0], err);
            return NGX_CONF_ERROR;
        }

        if (cond->cond.type == TG_COND_PROMPT) {
            source.data = (u_char *) cond->cond.regex;
            source.len = cond->cond.regex_len;

            if (ngx_http_tokenguard_compile(cf, &source, &cond->regex)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }
        }
    }

    if (route->tag.len == 0) {
        /* untagged rules are known by their place in the list */
        route->tag.data = ngx_pnalloc(cf->pool, sizeof("#") + NGX_INT_T_LEN);
        if (route->tag.data == NULL) {
            return NGX_CONF_ERROR;
        }

        route->tag.len = ngx_sprintf(route->tag.data, "#%ui",
                                     tlcf->routes->nelts)
                         - route->tag.data;
    }

    return NGX_CONF_OK;
}


/* tokenguard_classify REGEX CATEGORY */

char *
ngx_http_tokenguard_classify_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tokenguard_loc_conf_t *tlcf = conf;

    ngx_str_t                    *value;
    ngx_http_tokenguard_class_t  *cls;

    value = cf->args->elts;

    if (!ngx_http_tokenguard_valid_name(&value[2])) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid category \"%V\" in \"%V\" directive:"
                           " use up to 64 letters, digits, \"_\", \"-\""
                           " or \".\"", &value[2], &value[0]);
        return NGX_CONF_ERROR;
    }

    if (tlcf->classes == NULL) {
        tlcf->classes = ngx_array_create(cf->pool, 4,
                                         sizeof(ngx_http_tokenguard_class_t));
        if (tlcf->classes == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    cls = ngx_array_push(tlcf->classes);
    if (cls == NULL) {
        return NGX_CONF_ERROR;
    }

    cls->category = value[2];

    return ngx_http_tokenguard_compile(cf, &value[1], &cls->regex);
}
