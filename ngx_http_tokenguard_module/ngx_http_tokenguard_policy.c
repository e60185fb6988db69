/*
 * The security team's policy: which models may be used, which prompts
 * may not be sent.  Refusals name the rule, never the matched text.
 */

#include "ngx_http_tokenguard_module.h"


ngx_int_t
ngx_http_tokenguard_check_prompt(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_int_t                    rc;
    ngx_str_t                    prompt;
    ngx_uint_t                   i;
    ngx_http_tokenguard_deny_t  *deny;

    if (tlcf->deny_prompts == NULL) {
        return NGX_OK;
    }

    ngx_http_tokenguard_prompt(ctx, &prompt);

    deny = tlcf->deny_prompts->elts;

    for (i = 0; i < tlcf->deny_prompts->nelts; i++) {

        rc = ngx_http_tokenguard_match(r, &deny[i].regex, &prompt, NULL, 0);

        if (rc == 1) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "tokenguard: prompt of user \"%V\" denied by rule"
                          " \"%V\"", &ctx->caller.user_shown, &deny[i].name);

            ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_PROMPT,
                                       "the prompt was refused by the policy"
                                       " rule \"%V\"; remove the content it"
                                       " guards against, or ask your"
                                       " security team", &deny[i].name);
            return ngx_http_tokenguard_refused(ctx);
        }

        if (rc != 0) {
            /* a rule that cannot be evaluated (a limit) fails closed */
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "tokenguard: prompt of user \"%V\" refused: rule"
                          " \"%V\" could not be evaluated",
                          &ctx->caller.user_shown, &deny[i].name);

            ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_PROMPT,
                                       "the prompt could not be checked"
                                       " against the policy rule \"%V\""
                                       " within the gateway's limits; send a"
                                       " shorter or simpler prompt, or ask"
                                       " your security team", &deny[i].name);
            return ngx_http_tokenguard_refused(ctx);
        }
    }

    return NGX_OK;
}


/* checked on the model that goes upstream, after routing */

ngx_int_t
ngx_http_tokenguard_check_model(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx)
{
    if (tlcf->allow_models == NULL
        || ngx_http_tokenguard_match(r, tlcf->allow_models, &ctx->routing.model,
                                     NULL, 0)
           == 1)
    {
        return NGX_OK;
    }

    ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_MODEL,
                               "the model \"%V\" is not allowed through this"
                               " gateway; use a model that matches \"%V\", or"
                               " ask your platform team to approve it",
                               &ctx->routing.model,
                               &tlcf->allow_models->source);
    return ngx_http_tokenguard_refused(ctx);
}


char *
ngx_http_tokenguard_allow_models(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tokenguard_loc_conf_t *tlcf = conf;

    ngx_str_t  *value;

    if (tlcf->allow_models != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    tlcf->allow_models = ngx_pcalloc(cf->pool,
                                     sizeof(ngx_http_tokenguard_regex_t));
    if (tlcf->allow_models == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    return ngx_http_tokenguard_compile(cf, &value[1], tlcf->allow_models);
}


/* tokenguard_deny_prompt REGEX [name=NAME] */

char *
ngx_http_tokenguard_deny_prompt(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tokenguard_loc_conf_t *tlcf = conf;

    ngx_str_t                   *value;
    ngx_http_tokenguard_deny_t  *deny;

    value = cf->args->elts;

    if (tlcf->deny_prompts == NULL) {
        tlcf->deny_prompts = ngx_array_create(cf->pool, 4,
                                          sizeof(ngx_http_tokenguard_deny_t));
        if (tlcf->deny_prompts == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    deny = ngx_array_push(tlcf->deny_prompts);
    if (deny == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_tokenguard_compile(cf, &value[1], &deny->regex)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (value[2].len <= sizeof("name=") - 1
            || ngx_strncmp(value[2].data, "name=", sizeof("name=") - 1) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\""
                               " directive, expected \"name=NAME\"",
                               &value[2], &value[0]);
            return NGX_CONF_ERROR;
        }

        deny->name.data = value[2].data + sizeof("name=") - 1;
        deny->name.len = value[2].len - (sizeof("name=") - 1);

    } else {
        /* unnamed rules are numbered, so the pattern is never shown */
        deny->name.data = ngx_pnalloc(cf->pool,
                                      sizeof("rule #") + NGX_INT_T_LEN);
        if (deny->name.data == NULL) {
            return NGX_CONF_ERROR;
        }

        deny->name.len = ngx_sprintf(deny->name.data, "rule #%ui",
                                     tlcf->deny_prompts->nelts)
                         - deny->name.data;
    }

    return NGX_CONF_OK;
}
