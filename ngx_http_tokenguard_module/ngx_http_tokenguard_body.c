/*
 * The request body as one contiguous buffer, wherever nginx put it
 * (memory buffers, a temp file, or both), and its replacement by a
 * rewritten one.
 */

#include "ngx_http_tokenguard_module.h"


/* the request header "name", from the n-th on; NULL if none */

static ngx_table_elt_t *
ngx_http_tokenguard_header(ngx_http_request_t *r, const char *name,
    ngx_uint_t *n)
{
    size_t            len;
    ngx_uint_t        i, k;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;
    k = 0;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0
            && k++ == *n)
        {
            (*n)++;
            return &h[i];
        }
    }
}


/* 1 unless the client compressed the body: we inspect plain JSON only */

ngx_int_t
ngx_http_tokenguard_body_readable(ngx_http_request_t *r)
{
    ngx_uint_t        n;
    ngx_table_elt_t  *h;

    n = 0;

    while ((h = ngx_http_tokenguard_header(r, "Content-Encoding", &n))) {
        if (!(h->value.len == sizeof("identity") - 1
              && ngx_strncasecmp(h->value.data, (u_char *) "identity",
                                 sizeof("identity") - 1) == 0))
        {
            return 0;
        }
    }

    return 1;
}


ngx_int_t
ngx_http_tokenguard_body_get(ngx_http_request_t *r, ngx_str_t *body)
{
    off_t         len, size;
    u_char       *p;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    ngx_str_set(body, "");

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && ngx_buf_in_memory(cl->buf)) {
        body->data = cl->buf->pos;
        body->len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    len = 0;

    for ( /* void */ ; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        size = b->file_last - b->file_pos;

        if (size == 0) {
            continue;
        }

        n = ngx_read_file(b->file, p, size, b->file_pos);

        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (n != size) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "tokenguard: read only %z of %O bytes of the"
                          " request body from \"%V\"",
                          n, size, &b->file->name);
            return NGX_ERROR;
        }

        p += n;
    }

    return NGX_OK;
}


/*
 * The body sent upstream becomes the client's body with the edits
 * spliced in: buffers that point into it around small ones with the new
 * bytes, so that a long prompt is never copied (and not held twice for a
 * stream's life).  body is what ngx_http_tokenguard_body_get() returned:
 * request memory.  Both the length the proxy sends (content_length_n)
 * and the header string behind $content_length are updated.
 */

ngx_int_t
ngx_http_tokenguard_body_splice(ngx_http_request_t *r, ngx_str_t *body,
    tg_json_edit_t *edits, ngx_uint_t n)
{
    off_t          len;
    u_char        *text;
    size_t         pos, end;
    ngx_buf_t     *b;
    ngx_uint_t     i;
    ngx_chain_t   *cl, **ll;

    ll = &r->request_body->bufs;
    len = 0;
    pos = 0;
    cl = NULL;

    /* an original span, then an edit's text; once more for the tail */
    for (i = 0; i <= n; i++) {
        end = i < n ? edits[i].off : body->len;

        if (end > pos) {
            b = ngx_calloc_buf(r->pool);
            if (b == NULL) {
                return NGX_ERROR;
            }

            /* start/end too: a retry to the next upstream rewinds to start */
            b->start = body->data + pos;
            b->pos = b->start;
            b->last = body->data + end;
            b->end = b->last;
            b->memory = 1;

            cl = ngx_alloc_chain_link(r->pool);
            if (cl == NULL) {
                return NGX_ERROR;
            }

            cl->buf = b;
            *ll = cl;
            ll = &cl->next;
            len += end - pos;
        }

        if (i == n) {
            break;
        }

        if (edits[i].len) {
            text = ngx_pnalloc(r->pool, edits[i].len);
            if (text == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(text, edits[i].text, edits[i].len);

            b = ngx_calloc_buf(r->pool);
            if (b == NULL) {
                return NGX_ERROR;
            }

            b->start = text;
            b->pos = text;
            b->last = text + edits[i].len;
            b->end = b->last;
            b->memory = 1;

            cl = ngx_alloc_chain_link(r->pool);
            if (cl == NULL) {
                return NGX_ERROR;
            }

            cl->buf = b;
            *ll = cl;
            ll = &cl->next;
            len += edits[i].len;
        }

        pos = edits[i].off + edits[i].remove;
    }

    if (cl == NULL) {
        /* an empty body stays one empty buffer */
        b = ngx_calloc_buf(r->pool);
        cl = ngx_alloc_chain_link(r->pool);
        if (b == NULL || cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = b;
        *ll = cl;
    }

    *ll = NULL;
    cl->buf->last_buf = 1;
    cl->buf->last_in_chain = 1;

    r->request_body->temp_file = NULL;
    r->headers_in.content_length_n = len;

    if (r->headers_in.content_length) {
        r->headers_in.content_length->value.data =
                                    ngx_pnalloc(r->pool, NGX_OFF_T_LEN);
        if (r->headers_in.content_length->value.data == NULL) {
            return NGX_ERROR;
        }

        r->headers_in.content_length->value.len =
                        ngx_sprintf(r->headers_in.content_length->value.data,
                                    "%O", len)
                        - r->headers_in.content_length->value.data;
    }

    return NGX_OK;
}


/*
 * The provider is asked for an uncompressed response, so that its usage
 * can be read on the way through.
 */

void
ngx_http_tokenguard_body_identity(ngx_http_request_t *r)
{
    ngx_uint_t        n;
    ngx_table_elt_t  *h;

    n = 0;

    while ((h = ngx_http_tokenguard_header(r, "Accept-Encoding", &n))) {
        ngx_str_set(&h->value, "identity");
    }
}
