/*
 * The X-TokenGuard-* headers are the gateway's own: a client's are
 * dropped from the request before anything is proxied, so that nothing
 * behind the gateway takes them for the gateway's.
 */

#include "ngx_http_tokenguard_module.h"


static ngx_uint_t ngx_http_tokenguard_own_header(ngx_table_elt_t *h);


/*
 * Unlinks every X-TokenGuard-* header from r->headers_in.headers, so that
 * no client can send the provider, or anything behind the gateway, a
 * header that looks as if the gateway had set it.
 *
 * The other entries do not move: each run of them becomes a list part of
 * its own that points into the array it was parsed into (a part with
 * elts past the array's start), so every pointer into the list
 * (r->headers_in.host, .user_agent, .cookies ...) stays right.  Parts
 * are never left empty, except the first when nothing is left, because
 * the usual loop over a list reads the first element of each next part
 * unchecked.  nalloc becomes the size of the last run, so that a later
 * ngx_list_push() starts a new part instead of writing past an array
 * (lua-nginx-module's ngx.req.clear_header() edits the list the same
 * way).
 */

ngx_int_t
ngx_http_tokenguard_strip_headers(ngx_http_request_t *r)
{
    ngx_uint_t        i, start, found;
    ngx_list_t       *list;
    ngx_list_part_t  *part, *next, *tail, *run, first;
    ngx_table_elt_t  *h;

    list = &r->headers_in.headers;
    found = 0;

    for (part = &list->part; part && !found; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (ngx_http_tokenguard_own_header(&h[i])) {
                found = 1;
                break;
            }
        }
    }

    if (!found) {
        return NGX_OK;
    }

    first = list->part;     /* list->part is rewritten below */
    tail = NULL;

    for (part = &first; part; part = next) {
        next = part->next;
        h = part->elts;
        start = 0;

        for (i = 0; i <= part->nelts; i++) {

            if (i < part->nelts && !ngx_http_tokenguard_own_header(&h[i])) {
                continue;
            }

            if (i < part->nelts) {
                ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                               "tokenguard: request header \"%V\" dropped,"
                               " %uz bytes", &h[i].key, h[i].value.len);
            }

            if (i > start) {
                if (tail == NULL) {
                    run = &list->part;

                } else {
                    run = ngx_palloc(r->pool, sizeof(ngx_list_part_t));
                    if (run == NULL) {
                        return NGX_ERROR;
                    }

                    tail->next = run;
                }

                run->elts = &h[start];
                run->nelts = i - start;
                run->next = NULL;

                tail = run;
            }

            start = i + 1;
        }
    }

    if (tail == NULL) {
        /* the client sent nothing else */
        list->part.elts = first.elts;
        list->part.nelts = 0;
        list->part.next = NULL;
        list->last = &list->part;

        return NGX_OK;
    }

    list->last = tail;
    list->nalloc = tail->nelts;

    return NGX_OK;
}


/* "X-TokenGuard-..." in any case, or with "_" (underscores_in_headers) */

static ngx_uint_t
ngx_http_tokenguard_own_header(ngx_table_elt_t *h)
{
    u_char       c;
    ngx_uint_t   i;
    static char  prefix[] = "x-tokenguard-";

    if (h->key.len < sizeof(prefix) - 1) {
        return 0;
    }

    for (i = 0; i < sizeof(prefix) - 1; i++) {
        c = ngx_tolower(h->key.data[i]);

        if (c == '_') {
            c = '-';
        }

        if (c != (u_char) prefix[i]) {
            return 0;
        }
    }

    return 1;
}
