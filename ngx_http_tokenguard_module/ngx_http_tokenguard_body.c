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


/*
 * A contiguous view of the body for the parsers.  One memory buffer is
 * used as it is.  Several memory buffers (the part nginx read with the
 * headers, then the rest) are copied into a separate allocation that
 * ngx_http_tokenguard_body_release() frees once the body is rewritten:
 * what goes upstream is spliced from the client's own buffers.  A body
 * in a temp file is read into the request pool and kept, because the
 * rewritten body is spliced from that copy (nginx rewinds file buffers
 * from offset 0 when it retries another upstream, so a file cannot be
 * cut).
 */

ngx_int_t
ngx_http_tokenguard_body_get(ngx_http_request_t *r, ngx_str_t *body,
    ngx_uint_t *temporary)
{
    off_t         len, size;
    u_char       *p;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_uint_t    memory;
    ngx_chain_t  *cl;

    ngx_str_set(body, "");
    *temporary = 0;

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
    memory = 1;

    for ( /* void */ ; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
        memory &= ngx_buf_in_memory(cl->buf) ? 1 : 0;
    }

    if (len == 0) {
        return NGX_OK;
    }

    /* a large allocation of the pool, which ngx_pfree() can give back */
    p = memory ? ngx_pmemalign(r->pool, len, NGX_ALIGNMENT)
               : ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;
    *temporary = memory;

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


/* the view's copy is no longer needed (see above) */

void
ngx_http_tokenguard_body_release(ngx_http_request_t *r, ngx_str_t *body,
    ngx_uint_t *temporary)
{
    if (*temporary) {
        (void) ngx_pfree(r->pool, body->data);
        *temporary = 0;
    }

    ngx_str_null(body);
}


/* appends a buffer of [pos, last) to *ll */

static ngx_int_t
ngx_http_tokenguard_body_link(ngx_http_request_t *r, ngx_chain_t ***ll,
    u_char *pos, u_char *last)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    /* start and end too: a retry to the next upstream rewinds to start */
    b->start = pos;
    b->pos = pos;
    b->last = last;
    b->end = last;
    b->memory = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;
    **ll = cl;
    *ll = &cl->next;

    return NGX_OK;
}


/*
 * Appends buffers for the bytes [from, to) of the original body, taken
 * from the chain "src" of memory buffers.
 */

static ngx_int_t
ngx_http_tokenguard_body_span(ngx_http_request_t *r, ngx_chain_t ***ll,
    ngx_chain_t *src, size_t from, size_t to)
{
    size_t  start, size, a, b;

    for (start = 0; src && start < to; src = src->next) {
        size = src->buf->last - src->buf->pos;
        a = ngx_max(from, start);
        b = ngx_min(to, start + size);

        if (a < b
            && ngx_http_tokenguard_body_link(r, ll,
                                             src->buf->pos + (a - start),
                                             src->buf->pos + (b - start))
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        start += size;
    }

    return NGX_OK;
}


/*
 * The body sent upstream becomes the client's body with the edits
 * spliced in: buffers that point into the client's own buffers (or into
 * the copy of a body that was in a file) around small ones with the new
 * bytes, so that a prompt is not held twice for a stream's life.  Both
 * the length the proxy sends (content_length_n) and the header string
 * behind $content_length are updated.
 */

ngx_int_t
ngx_http_tokenguard_body_splice(ngx_http_request_t *r, ngx_str_t *body,
    tg_json_edit_t *edits, ngx_uint_t n)
{
    off_t         len;
    u_char       *text;
    size_t        pos;
    ngx_buf_t     whole;
    ngx_uint_t    i;
    ngx_chain_t  *src, *out, **ll, one;

    for (src = r->request_body->bufs; src; src = src->next) {
        if (!ngx_buf_in_memory(src->buf)) {
            break;
        }
    }

    if (src == NULL) {
        /* the client's memory buffers themselves */
        src = r->request_body->bufs;

    } else {
        /* the copy of a body read from a file */
        ngx_memzero(&whole, sizeof(ngx_buf_t));
        whole.pos = body->data;
        whole.last = body->data + body->len;
        one.buf = &whole;
        one.next = NULL;
        src = &one;
    }

    out = NULL;
    ll = &out;
    len = body->len;
    pos = 0;

    for (i = 0; i < n; i++) {
        if (ngx_http_tokenguard_body_span(r, &ll, src, pos, edits[i].off)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (edits[i].len) {
            text = ngx_pnalloc(r->pool, edits[i].len);
            if (text == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(text, edits[i].text, edits[i].len);

            if (ngx_http_tokenguard_body_link(r, &ll, text,
                                              text + edits[i].len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        pos = edits[i].off + edits[i].remove;
        len += (off_t) edits[i].len - (off_t) edits[i].remove;
    }

    if (ngx_http_tokenguard_body_span(r, &ll, src, pos, body->len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (out == NULL
        && ngx_http_tokenguard_body_link(r, &ll, body->data, body->data)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (src = out; src->next; src = src->next) { /* void */ }

    src->buf->last_buf = 1;
    src->buf->last_in_chain = 1;

    r->request_body->bufs = out;
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
