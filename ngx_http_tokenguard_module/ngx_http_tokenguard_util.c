/*
 * What every file of the module shares at run time: the request context,
 * the regexes on client text, and formatting.  Nothing here calls another
 * file of the module; the pipeline learns of a request's end through the
 * context's cleanup hook.
 */

#include "ngx_http_tokenguard_module.h"


static void ngx_http_tokenguard_cleanup(void *data);


#if (NGX_PCRE2)

/*
 * One match context per worker carries the limits of every tokenguard
 * regex; pcre2_match() with no context (as ngx_regex_exec() calls it)
 * allows 10 million backtracking steps per start position and gigabytes
 * of backtracking memory, on text the client chose.
 */

static pcre2_match_context  *ngx_http_tokenguard_match_ctx;
static pcre2_match_data     *ngx_http_tokenguard_match_data;

#endif


/* the limits live in one match context per worker, made once */

ngx_int_t
ngx_http_tokenguard_regex_init_process(ngx_cycle_t *cycle)
{
#if (NGX_PCRE2)

    ngx_http_tokenguard_match_ctx = pcre2_match_context_create(NULL);
    ngx_http_tokenguard_match_data = pcre2_match_data_create(
                                         NGX_HTTP_TOKENGUARD_MAX_CAPTURES,
                                         NULL);

    if (ngx_http_tokenguard_match_ctx == NULL
        || ngx_http_tokenguard_match_data == NULL)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "tokenguard: cannot allocate the PCRE2 match context");
        return NGX_ERROR;
    }

#endif

    return NGX_OK;
}


void
ngx_http_tokenguard_regex_exit_process(void)
{
#if (NGX_PCRE2)

    if (ngx_http_tokenguard_match_data) {
        pcre2_match_data_free(ngx_http_tokenguard_match_data);
        ngx_http_tokenguard_match_data = NULL;
    }

    if (ngx_http_tokenguard_match_ctx) {
        pcre2_match_context_free(ngx_http_tokenguard_match_ctx);
        ngx_http_tokenguard_match_ctx = NULL;
    }

#endif
}


/*
 * The context is also reachable through its pool cleanup, so that it
 * survives an internal redirect (which zeroes r->ctx): a request is
 * inspected, decided and counted once, whatever locations it passes.
 */

ngx_http_tokenguard_ctx_t *
ngx_http_tokenguard_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t         *cln;
    ngx_http_tokenguard_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_tokenguard_module);

    if (ctx != NULL || !r->main->internal) {
        return ctx;
    }

    for (cln = r->main->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_tokenguard_cleanup) {
            ctx = cln->data;
            ngx_http_set_ctx(r->main, ctx, ngx_http_tokenguard_module);
            return ctx;
        }
    }

    return NULL;
}


/*
 * The caller sets ctx->cleanup, which runs when the request's pool goes
 * away, whatever the request's end was.
 */

ngx_http_tokenguard_ctx_t *
ngx_http_tokenguard_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t         *cln;
    ngx_http_tokenguard_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_tokenguard_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_tokenguard_cleanup;
    cln->data = ctx;

    ctx->request = r;
    ctx->budget.remaining_usd = -1;
    ctx->budget.pct = -1;
    ctx->budget.warn_pct = -1;

    ngx_http_set_ctx(r, ctx, ngx_http_tokenguard_module);

    return ctx;
}


static void
ngx_http_tokenguard_cleanup(void *data)
{
    ngx_http_tokenguard_ctx_t  *ctx = data;

    if (ctx->cleanup) {
        ctx->cleanup(ctx);
    }
}


char *
ngx_http_tokenguard_compile(ngx_conf_t *cf, ngx_str_t *source,
    ngx_http_tokenguard_regex_t *re)
{
    u_char               errstr[NGX_MAX_CONF_ERRSTR];
    ngx_str_t           *value;
    ngx_regex_compile_t  rc;

    value = cf->args->elts;

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern = *source;
    rc.pool = cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (source->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty regular expression in \"%V\" directive",
                           &value[0]);
        return NGX_CONF_ERROR;
    }

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid regular expression \"%V\" in \"%V\""
                           " directive: %V",
                           source, &value[0], &rc.err);
        return NGX_CONF_ERROR;
    }

    re->regex = rc.regex;
    re->source = *source;
    re->captures = rc.captures;

    /* the struct may be an ngx_array_push()ed one, not zeroed */
    re->jit_known = 0;
    re->jit = 0;

    return NGX_CONF_OK;
}


#if (NGX_PCRE2)

/*
 * pcre2_jit_match() is pcre2_match() without its checks of the options
 * and the subject: the JIT code of a pattern (pcre_jit on) runs directly,
 * which saves about a third of a short match.  Not for a UTF pattern
 * ((*UTF) in it): only pcre2_match() checks that the subject, which the
 * client wrote, is valid UTF-8, and JIT code must not read one that is not.
 */

static ngx_uint_t
ngx_http_tokenguard_jit_direct(ngx_regex_t *re)
{
    size_t    jit;
    uint32_t  options;

    if (pcre2_pattern_info(re, PCRE2_INFO_JITSIZE, &jit) != 0
        || pcre2_pattern_info(re, PCRE2_INFO_ALLOPTIONS, &options) != 0)
    {
        return 0;
    }

    return jit != 0 && !(options & PCRE2_UTF);
}

#endif


/*
 * Returns 1 on a match, 0 on none.  A regex that gives up (a limit hit by
 * a hostile input, memory) is logged, naming the regex and the subject's
 * size but never its text, and returns NGX_ERROR so that each caller
 * fails the way that is safe for it.
 *
 * With PCRE2 the match runs under tokenguard_regex_match_limit and
 * NGX_HTTP_TOKENGUARD_MATCH_DEPTH: PCRE2 counts both per start position
 * of the subject, so they stop a regex that explodes at one position
 * (^(a+)+$), not the sum of a regex's work over a long subject.  JIT code
 * counts its steps its own way, ignores the depth limit and stops at the
 * end of its 32 KB stack instead (PCRE2_ERROR_JIT_STACKLIMIT).
 */

ngx_int_t
ngx_http_tokenguard_match(ngx_http_request_t *r,
    ngx_http_tokenguard_regex_t *re, ngx_str_t *s, int *caps, int ncaps)
{
#if (NGX_PCRE2)

    int                              rc, i, n;
    u_char                           err[128];
    uint32_t                         limit;
    PCRE2_SIZE                      *ov;
    ngx_http_tokenguard_loc_conf_t  *tlcf;

    if (ngx_http_tokenguard_match_ctx == NULL) {
        /* a worker without a tokenguard location: cannot happen */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "tokenguard: no PCRE2 match context");
        return NGX_ERROR;
    }

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tokenguard_module);

    limit = (uint32_t) tlcf->regex_match_limit;

    pcre2_set_match_limit(ngx_http_tokenguard_match_ctx, limit);
    pcre2_set_depth_limit(ngx_http_tokenguard_match_ctx,
                          ngx_min(limit, NGX_HTTP_TOKENGUARD_MATCH_DEPTH));

    if (!re->jit_known) {
        re->jit = ngx_http_tokenguard_jit_direct(re->regex);
        re->jit_known = 1;
    }

    if (re->jit) {
        rc = pcre2_jit_match(re->regex, s->data, s->len, 0, 0,
                             ngx_http_tokenguard_match_data,
                             ngx_http_tokenguard_match_ctx);

    } else {
        rc = pcre2_match(re->regex, s->data, s->len, 0, 0,
                         ngx_http_tokenguard_match_data,
                         ngx_http_tokenguard_match_ctx);
    }

    if (rc == PCRE2_ERROR_NOMATCH) {
        return 0;
    }

    if (rc < 0) {
        if (pcre2_get_error_message(rc, err, sizeof(err)) < 0) {
            ngx_cpystrn(err, (u_char *) "unknown error", sizeof(err));
        }

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "tokenguard: regex \"%V\" gave up on a %uz-byte"
                      " subject: %s (PCRE2 error %d)",
                      &re->source, s->len, err, rc);
        return NGX_ERROR;
    }

    if (caps != NULL) {
        n = (int) pcre2_get_ovector_count(ngx_http_tokenguard_match_data);
        ov = pcre2_get_ovector_pointer(ngx_http_tokenguard_match_data);

        n = ngx_min(n, ncaps / 3);

        /* as ngx_regex_exec(): an unset group is -1 */
        for (i = 0; i < n * 2; i++) {
            caps[i] = (int) ov[i];
        }
    }

    return 1;

#else

    ngx_int_t  rc;

    rc = ngx_regex_exec(re->regex, s, caps, ncaps);

    if (rc == NGX_REGEX_NO_MATCHED) {
        return 0;
    }

    if (rc < 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "tokenguard: regex \"%V\" gave up on a %uz-byte"
                      " subject: " ngx_regex_exec_n " failed: %i",
                      &re->source, s->len, rc);
        return NGX_ERROR;
    }

    return 1;

#endif
}


/* the request's prompt text, empty if it has none */

void
ngx_http_tokenguard_prompt(ngx_http_tokenguard_ctx_t *ctx, ngx_str_t *s)
{
    if (ctx->in.rq.prompt == NULL) {
        ngx_str_set(s, "");
        return;
    }

    s->data = (u_char *) ctx->in.rq.prompt;
    s->len = ctx->in.rq.prompt_len;
}


/*
 * A number in decimal, as ngx_sprintf("%L") writes it: the variables of
 * the audit log and the headers write one or two per request, and
 * ngx_sprintf() spends more reading its format than writing them.
 */

u_char *
ngx_http_tokenguard_format_int(u_char *p, int64_t v)
{
    u_char    digits[NGX_INT64_LEN], *d;
    uint64_t  u;

    u = (uint64_t) v;

    if (v < 0) {
        *p++ = '-';
        u = 0 - u;
    }

    d = digits + sizeof(digits);

    do {
        *--d = (u_char) ('0' + u % 10);
        u /= 10;
    } while (u);

    return ngx_cpymem(p, d, digits + sizeof(digits) - d);
}


/* micro-USD as dollars with 6 decimals: "12.345678" */

u_char *
ngx_http_tokenguard_format_usd(u_char *p, int64_t micro)
{
    uint64_t    u, frac;
    ngx_uint_t  i;

    u = (uint64_t) micro;

    if (micro < 0) {
        *p++ = '-';
        u = 0 - u;
    }

    p = ngx_http_tokenguard_format_int(p, (int64_t) (u / 1000000));
    *p++ = '.';

    frac = u % 1000000;

    for (i = 6; i-- > 0; /* void */ ) {
        p[i] = (u_char) ('0' + frac % 10);
        frac /= 10;
    }

    return p + 6;
}


/*
 * micro-USD as a person reads it: "$1,500.00"; under a cent, enough
 * digits not to read as nothing: "$0.000983"
 */

u_char *
ngx_http_tokenguard_format_money(u_char *p, int64_t micro)
{
    u_char   digits[NGX_INT64_LEN], *d;
    size_t   n, i;
    int64_t  cents;

    if (micro < 0) {
        *p++ = '-';
        micro = -micro;
    }

    *p++ = '$';

    if (micro > 0 && micro < 10000) {
        p = ngx_sprintf(p, "0.%06L", micro);

        while (p[-1] == '0' && p[-3] != '.') {
            p--;
        }

        return p;
    }

    cents = micro / 10000;
    d = ngx_sprintf(digits, "%L", cents / 100);
    n = d - digits;

    for (i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) {
            *p++ = ',';
        }

        *p++ = digits[i];
    }

    return ngx_sprintf(p, ".%02L", cents % 100);
}


/* a dry run's name for a caller without an identity (see identity.c) */
u_char  ngx_http_tokenguard_anonymous[] = "";
