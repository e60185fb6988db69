/*
 * Endpoint policy: in a tokenguard location every request is a metered
 * call, a call on the built-in free list, a call that a
 * tokenguard_passthrough rule allows, or refused (endpoint_not_allowed).
 *
 * The path classified is r->uri, which nginx has decoded and normalised.
 * proxy_pass without a URI part sends the path as the client wrote it
 * (r->unparsed_uri), so a request whose written path differs from r->uri
 * is refused: the provider might normalise it into another API.
 */

#include "ngx_http_tokenguard_module.h"


/* the longest path quoted back in a refusal */
#define NGX_HTTP_TOKENGUARD_PATH_SHOWN  128


typedef struct {
    ngx_http_tokenguard_regex_t  regex;         /* on r->uri */
    ngx_uint_t                   methods;       /* NGX_HTTP_GET | ... */
    ngx_str_t                    name;
} ngx_http_tokenguard_passthrough_t;


typedef struct {
    ngx_str_t                    name;
    ngx_uint_t                   method;
} ngx_http_tokenguard_method_t;


static ngx_http_tokenguard_method_t  ngx_http_tokenguard_methods[] = {
    { ngx_string("GET"), NGX_HTTP_GET },
    { ngx_string("HEAD"), NGX_HTTP_HEAD },
    { ngx_string("POST"), NGX_HTTP_POST },
    { ngx_string("PUT"), NGX_HTTP_PUT },
    { ngx_string("DELETE"), NGX_HTTP_DELETE },
    { ngx_string("PATCH"), NGX_HTTP_PATCH },
    { ngx_string("OPTIONS"), NGX_HTTP_OPTIONS },
    { ngx_null_string, 0 }
};


static ngx_str_t  ngx_http_tokenguard_endpoint_allow = ngx_string("allow");
static ngx_str_t  ngx_http_tokenguard_passed = ngx_string("passthrough");


/*
 * Whether the path as the client wrote it is r->uri: proxy_pass without
 * a URI part sends it as written
 */

static ngx_int_t
ngx_http_tokenguard_written_as_read(ngx_http_request_t *r)
{
    u_char  *q;
    size_t   len;

    if (!r->valid_unparsed_uri) {
        /* proxy_pass sends r->uri, escaped */
        return 1;
    }

    len = r->unparsed_uri.len;
    q = ngx_strlchr(r->unparsed_uri.data, r->unparsed_uri.data + len, '?');

    if (q != NULL) {
        len = q - r->unparsed_uri.data;
    }

    return len == r->uri.len
           && ngx_memcmp(r->unparsed_uri.data, r->uri.data, len) == 0;
}


/*
 * Google's APIs and many frameworks serve the method such a header names,
 * not the request's.  Exact names: the SDKs send X-Stainless-Helper-Method.
 */

static ngx_str_t  ngx_http_tokenguard_overrides[] = {
    ngx_string("X-HTTP-Method-Override"),
    ngx_string("X-HTTP-Method"),
    ngx_string("X-Method-Override"),
    ngx_null_string
};


/* Google's front end: a partial response, no usageMetadata in it */
static ngx_str_t  ngx_http_tokenguard_google_headers[] = {
    ngx_string("X-Goog-FieldMask"),
    ngx_null_string
};


static ngx_int_t
ngx_http_tokenguard_header_in(ngx_http_request_t *r, ngx_str_t *names)
{
    ngx_str_t        *n;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        for (n = names; n->len; n++) {
            if (h[i].key.len == n->len
                && ngx_strncasecmp(h[i].key.data, n->data, n->len) == 0)
            {
                return 1;
            }
        }
    }
}


void
ngx_http_tokenguard_endpoint_classify(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx)
{
    const char   *why;
    tg_method_e   method;

    switch (r->method) {
    case NGX_HTTP_GET:
        method = TG_METHOD_GET;
        break;
    case NGX_HTTP_POST:
        method = TG_METHOD_POST;
        break;
    default:
        method = TG_METHOD_OTHER;
        break;
    }

    (void) tg_endpoint_classify((char *) r->uri.data, r->uri.len, method,
                                (tg_provider_e) tlcf->provider, &ctx->in.ep);

    if (ctx->in.ep.kind == TG_ENDPOINT_AMBIGUOUS) {
        return;
    }

    if (!ngx_http_tokenguard_written_as_read(r)) {
        why = "path is written with escapes, dot segments or repeated"
              " slashes";

    } else if (ngx_http_tokenguard_header_in(r,
                                             ngx_http_tokenguard_overrides))
    {
        why = "comes with a header that overrides its method";

    } else if (ctx->in.ep.google && ctx->in.ep.api != TG_API_NONE
               && ngx_http_tokenguard_header_in(r,
                                      ngx_http_tokenguard_google_headers))
    {
        why = "comes with X-Goog-FieldMask, which drops the usage";

    } else if (ctx->in.ep.google && ctx->in.ep.api != TG_API_NONE
               && (why = tg_endpoint_google_query((char *) r->args.data,
                                                  r->args.len))
                  != NULL)
    {
        /* void */

    } else {
        return;
    }

    ctx->in.ep.kind = TG_ENDPOINT_AMBIGUOUS;
    ctx->in.ep.api = TG_API_NONE;
    ctx->in.ep.stream = 0;
    ctx->in.ep.model_off = 0;
    ctx->in.ep.model_len = 0;
    ctx->in.ep.why = why;
}


/*
 * Returns NGX_OK for a metered call (inspect it), NGX_DONE for one that
 * goes on uninspected, NGX_DECLINED once refused.
 */

ngx_int_t
ngx_http_tokenguard_endpoint_check(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_str_t                           path;
    ngx_uint_t                          i;
    ngx_http_tokenguard_passthrough_t  *pt;

    switch (ctx->in.ep.kind) {

    case TG_ENDPOINT_METERED:
        return NGX_OK;

    case TG_ENDPOINT_FREE:
        if (ctx->in.ep.api != TG_API_NONE) {
            /* token counting sends a prompt: the policy reads it */
            return NGX_OK;
        }

        ctx->decision = ngx_http_tokenguard_endpoint_allow;
        ctx->state = NGX_HTTP_TOKENGUARD_DONE;
        return NGX_DONE;

    case TG_ENDPOINT_AMBIGUOUS:
        ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_ENDPOINT,
                                   "the request %s, so the provider could"
                                   " route it otherwise than this gateway"
                                   " reads it; send it as the provider"
                                   " documents it", ctx->in.ep.why);
        return NGX_DECLINED;

    default:
        break;
    }

    if (tlcf->passthrough != NULL) {
        pt = tlcf->passthrough->elts;

        for (i = 0; i < tlcf->passthrough->nelts; i++) {
            if ((pt[i].methods & r->method)
                && ngx_http_tokenguard_match(r, &pt[i].regex, &r->uri,
                                             NULL, 0) > 0)
            {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "tokenguard: passed through by \"%V\" for"
                              " user \"%V\"", &pt[i].name,
                              &ctx->caller.user_shown);

                ctx->decision = ngx_http_tokenguard_passed;
                ctx->state = NGX_HTTP_TOKENGUARD_DONE;
                return NGX_DONE;
            }
        }
    }

    /* the path passed tg_endpoint_ambiguous(): printable, no escapes */
    path.data = r->uri.data;
    path.len = ngx_min(r->uri.len, NGX_HTTP_TOKENGUARD_PATH_SHOWN);

    ngx_http_tokenguard_refuse(r, ctx, TG_REFUSE_ENDPOINT,
                               "%V %V%s is not an API call this gateway"
                               " meters; ask your platform team to allow"
                               " it with tokenguard_passthrough",
                               &r->method_name, &path,
                               path.len < r->uri.len ? "..." : "");

    return NGX_DECLINED;
}


/*
 * A token count, inspected and found within the prompt policy: the model
 * must be allowed too; nothing is reserved, routed or counted.
 */

ngx_int_t
ngx_http_tokenguard_endpoint_free(ngx_http_request_t *r,
    ngx_http_tokenguard_loc_conf_t *tlcf, ngx_http_tokenguard_ctx_t *ctx)
{
    ngx_int_t  n;

    n = ngx_http_tokenguard_check_model(r, tlcf, ctx);

    tg_request_drop_prompt(&ctx->in.rq);
    ngx_http_tokenguard_body_release(r, &ctx->in.body, &ctx->in.body_temporary);

    if (n == NGX_OK) {
        ctx->decision = ngx_http_tokenguard_endpoint_allow;
        ctx->state = NGX_HTTP_TOKENGUARD_DONE;
    }

    return n == NGX_ERROR ? NGX_ERROR : NGX_OK;
}


/* tokenguard_passthrough REGEX [methods=M,...] [name=NAME] */

char *
ngx_http_tokenguard_passthrough(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tokenguard_loc_conf_t *tlcf = conf;

    u_char                             *p, *last, *end;
    ngx_str_t                          *value, m;
    ngx_uint_t                          i, k, found;
    ngx_http_tokenguard_passthrough_t  *pt;

    value = cf->args->elts;

    if (tlcf->passthrough == NULL) {
        tlcf->passthrough = ngx_array_create(cf->pool, 4,
                                   sizeof(ngx_http_tokenguard_passthrough_t));
        if (tlcf->passthrough == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    pt = ngx_array_push(tlcf->passthrough);
    if (pt == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_tokenguard_compile(cf, &value[1], &pt->regex)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    pt->methods = NGX_HTTP_GET;
    pt->name = value[1];

    for (i = 2; i < cf->args->nelts; i++) {

        if (value[i].len > sizeof("name=") - 1
            && ngx_strncmp(value[i].data, "name=", sizeof("name=") - 1) == 0)
        {
            pt->name.data = value[i].data + sizeof("name=") - 1;
            pt->name.len = value[i].len - (sizeof("name=") - 1);
            continue;
        }

        if (value[i].len <= sizeof("methods=") - 1
            || ngx_strncmp(value[i].data, "methods=", sizeof("methods=") - 1)
               != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"%V\""
                               " directive, expected \"methods=M,...\" or"
                               " \"name=NAME\"", &value[i], &value[0]);
            return NGX_CONF_ERROR;
        }

        pt->methods = 0;
        p = value[i].data + sizeof("methods=") - 1;
        end = value[i].data + value[i].len;

        while (p < end) {
            last = ngx_strlchr(p, end, ',');
            if (last == NULL) {
                last = end;
            }

            m.data = p;
            m.len = last - p;
            found = 0;

            for (k = 0; ngx_http_tokenguard_methods[k].name.len; k++) {
                if (m.len == ngx_http_tokenguard_methods[k].name.len
                    && ngx_strncmp(m.data,
                                   ngx_http_tokenguard_methods[k].name.data,
                                   m.len) == 0)
                {
                    pt->methods |= ngx_http_tokenguard_methods[k].method;
                    found = 1;
                    break;
                }
            }

            if (!found) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "unknown method \"%V\" in \"%V\""
                                   " directive, expected GET, HEAD, POST,"
                                   " PUT, DELETE, PATCH or OPTIONS",
                                   &m, &value[0]);
                return NGX_CONF_ERROR;
            }

            p = last + 1;
        }
    }

    return NGX_CONF_OK;
}
