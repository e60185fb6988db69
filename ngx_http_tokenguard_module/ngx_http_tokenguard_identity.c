/*
 * Who is calling: user, team and the sandbox flag, from complex values
 * the operator points at a trusted source ($remote_user, auth_request
 * results, $ssl_client_s_dn ...).  Once they are read, the client's
 * X-TokenGuard-* request headers are dropped (strip.c).
 */

#include "ngx_http_tokenguard_module.h"
#include "tg_keys.h"


static ngx_int_t
ngx_http_tokenguard_eval(ngx_http_request_t *r, ngx_http_complex_value_t *cv,
    ngx_str_t *value)
{
    if (cv == NULL) {
        ngx_str_null(value);
        return NGX_OK;
    }

    return ngx_http_complex_value(r, cv, value);
}


/*
 * A name as it may be shown: in a refusal message, a log line or a
 * header, the client's bytes (CR LF, NUL, quotes, non-ASCII from a Basic
 * Authorization header or a JWT claim) are escaped as in the Redis keys
 * (tg_key_escape(): letters, digits and "._@-" stay, the rest is %XX).
 */

ngx_int_t
ngx_http_tokenguard_shown(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *shown)
{
    size_t  n;

    n = ngx_min(name->len, 256);

    shown->data = ngx_pnalloc(r->pool, 3 * n + 1);
    if (shown->data == NULL) {
        return NGX_ERROR;
    }

    shown->len = tg_key_escape((char *) name->data, n, (char *) shown->data);

    return NGX_OK;
}


/* NGX_OK, NGX_DECLINED once refused (no user), or NGX_ERROR */

ngx_int_t
ngx_http_tokenguard_identify(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_str_t  sandbox;

    if (ngx_http_tokenguard_eval(r, tlcf->user, &ctx->caller.user) != NGX_OK
        || ngx_http_tokenguard_eval(r, tlcf->team, &ctx->caller.team) != NGX_OK
        || ngx_http_tokenguard_eval(r, tlcf->sandbox, &sandbox) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_tokenguard_shown(r, &ctx->caller.user,
                                  &ctx->caller.user_shown)
        != NGX_OK
        || ngx_http_tokenguard_shown(r, &ctx->caller.team,
                                     &ctx->caller.team_shown)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * Read, the identity may have come from an X-TokenGuard-* header that
     * a proxy in front set (conf/nginx.conf does so for "make run"): the
     * client's own such headers go no further than this.
     */

    if (ngx_http_tokenguard_strip_headers(r) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->caller.sandbox = !(sandbox.len == 0
                            || (sandbox.len == 1 && sandbox.data[0] == '0')
                            || (sandbox.len == 3
                                && ngx_strncasecmp(sandbox.data,
                                                   (u_char *) "off", 3)
                                   == 0));

    if (ctx->caller.user.len == 0) {
        ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_IDENTITY,
                                   "this AI gateway needs to know who is"
                                   " calling, and this request did not say;"
                                   " sign in or send the credentials your"
                                   " platform team gave you");

    } else if (ctx->caller.user.len > 256 || ctx->caller.team.len > 256) {
        ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_IDENTITY,
                                   "the caller's user or team name is longer"
                                   " than 256 bytes; ask your platform team"
                                   " to fix the gateway's identity source");

    } else {
        return NGX_OK;
    }

    if (ctx->state == NGX_HTTP_TOKENGUARD_REFUSE) {
        return NGX_DECLINED;
    }

    /*
     * A dry run lets it go: a good user with a bad team name is counted
     * as the user, without the team; anyone else under the empty name
     * (a real identity is never empty, so none shares its keys).
     */
    if (ctx->caller.user.len == 0 || ctx->caller.user.len > 256) {
        ctx->caller.user.len = 0;
        ctx->caller.user.data = ngx_http_tokenguard_anonymous;
        ctx->caller.user_shown = ctx->caller.user;
    }

    ngx_str_null(&ctx->caller.team);
    ngx_str_null(&ctx->caller.team_shown);

    return NGX_OK;
}
