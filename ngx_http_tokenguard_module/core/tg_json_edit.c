/*
 * Where the edits go, read off the parsed document or, when it cannot
 * tell, found by a small scanner of an object's members; and a splicer
 * that applies up to a few edits in one pass.  The scanner does not
 * recurse (nesting is skipped with a depth counter), so hostile nesting
 * cannot exhaust the stack.
 */

#include <stdlib.h>
#include <string.h>

#include "tg_json_edit.h"


typedef struct {
    size_t   open;          /* offset of '{' */
    size_t   close;         /* offset of the matching '}' */
    int      empty;
} tg_object_t;


static size_t
tg_skip_ws(const char *p, size_t i, size_t len)
{
    while (i < len
           && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
    {
        i++;
    }

    return i;
}


/* i at the opening quote; returns the offset past the closing quote */
static size_t
tg_skip_string(const char *p, size_t i, size_t len)
{
    for (i++; i < len; i++) {
        if (p[i] == '\\') {
            i++;

        } else if (p[i] == '"') {
            return i + 1;
        }
    }

    return 0;
}


/* returns the offset past the value that starts at i, 0 on error */
static size_t
tg_skip_value(const char *p, size_t i, size_t len)
{
    size_t  depth;

    if (i >= len) {
        return 0;
    }

    if (p[i] == '"') {
        return tg_skip_string(p, i, len);
    }

    if (p[i] != '{' && p[i] != '[') {
        while (i < len && p[i] != ',' && p[i] != '}' && p[i] != ']'
               && p[i] != ' ' && p[i] != '\t' && p[i] != '\n'
               && p[i] != '\r')
        {
            i++;
        }

        return i;
    }

    depth = 0;

    while (i < len) {
        switch (p[i]) {

        case '"':
            i = tg_skip_string(p, i, len);
            if (i == 0) {
                return 0;
            }
            continue;

        case '{':
        case '[':
            depth++;
            break;

        case '}':
        case ']':
            if (--depth == 0) {
                return i + 1;
            }
            break;
        }

        i++;
    }

    return 0;
}


/*
 * Does the raw key (between its quotes) spell name?  Escapes are decoded
 * so that "mod\u0065l" is the same key as "model", as it is to jansson.
 */
static int
tg_key_is(const char *k, size_t len, const char *name)
{
    size_t         i, n;
    unsigned long  u;
    char           c;

    n = 0;

    for (i = 0; i < len; i++) {
        c = k[i];

        if (c == '\\' && i + 1 < len) {
            c = k[++i];

            if (c == 'u') {
                if (i + 4 >= len) {
                    return 0;
                }

                u = strtoul((char []) { k[i + 1], k[i + 2], k[i + 3],
                                        k[i + 4], '\0' }, NULL, 16);
                i += 4;

                if (u == 0 || u > 0x7f) {
                    return 0;
                }

                c = (char) u;

            } else if (c != '"' && c != '\\' && c != '/') {
                return 0;
            }
        }

        if (name[n] == '\0' || name[n] != c) {
            return 0;
        }

        n++;
    }

    return name[n] == '\0';
}


/*
 * Finds the member "name" of the object that opens at obj->open; fills
 * the value's span.  Returns 1 if found, 0 if not, -1 on a syntax error.
 * Also fills obj->close and obj->empty.
 */
static int
tg_find_member(const char *p, size_t len, tg_object_t *obj,
    const char *name, size_t *vstart, size_t *vend)
{
    int     found;
    size_t  i, k, kend, v, vn;

    found = 0;
    obj->empty = 1;

    i = tg_skip_ws(p, obj->open + 1, len);

    if (i < len && p[i] == '}') {
        obj->close = i;
        return 0;
    }

    for ( ;; ) {
        if (i >= len || p[i] != '"') {
            return -1;
        }

        k = i;
        kend = tg_skip_string(p, i, len);
        if (kend == 0) {
            return -1;
        }

        i = tg_skip_ws(p, kend, len);
        if (i >= len || p[i] != ':') {
            return -1;
        }

        v = tg_skip_ws(p, i + 1, len);
        vn = tg_skip_value(p, v, len);
        if (vn == 0 || vn == v) {
            return -1;
        }

        obj->empty = 0;

        if (!found && tg_key_is(p + k + 1, kend - k - 2, name)) {
            *vstart = v;
            *vend = vn;
            found = 1;
        }

        i = tg_skip_ws(p, vn, len);

        if (i < len && p[i] == ',') {
            i = tg_skip_ws(p, i + 1, len);
            continue;
        }

        if (i < len && p[i] == '}') {
            obj->close = i;
            return found;
        }

        return -1;
    }
}


/* a JSON string literal of s, quotes included */
static char *
tg_quote(const char *s, size_t len, size_t *out_len)
{
    char           *q, *d;
    size_t          i;
    unsigned char   c;
    static const char  hex[] = "0123456789abcdef";

    q = malloc(len * 6 + 3);
    if (q == NULL) {
        return NULL;
    }

    d = q;
    *d++ = '"';

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c == '"' || c == '\\') {
            *d++ = '\\';
            *d++ = (char) c;

        } else if (c < 0x20) {
            *d++ = '\\';
            *d++ = 'u';
            *d++ = '0';
            *d++ = '0';
            *d++ = hex[c >> 4];
            *d++ = hex[c & 0xf];

        } else {
            *d++ = (char) c;
        }
    }

    *d++ = '"';
    *out_len = d - q;

    return q;
}


static char *
tg_dup(const char *s, size_t *len)
{
    char  *d;

    *len = strlen(s);

    d = malloc(*len + 1);
    if (d != NULL) {
        memcpy(d, s, *len + 1);
    }

    return d;
}


static int
tg_edit_cmp(const void *a, const void *b)
{
    const tg_json_edit_t  *x = a, *y = b;

    return (x->off > y->off) - (x->off < y->off);
}


/* the places the plan needs, found by scanning the body; -1: not JSON */
static int
tg_find_places(const char *body, size_t len, const char *model,
    int include_usage, tg_json_places_t *pl)
{
    int          found;
    size_t       vs, ve;
    tg_object_t  root, so;

    memset(pl, 0, sizeof(tg_json_places_t));

    root.open = tg_skip_ws(body, 0, len);
    root.empty = 1;

    if (root.open >= len || body[root.open] != '{') {
        return -1;
    }

    pl->open = root.open;

    if (model != NULL) {
        found = tg_find_member(body, len, &root, "model", &vs, &ve);
        if (found == -1) {
            return -1;
        }

        pl->model.found = found;
        pl->model.off = vs;
        pl->model.end = ve;
    }

    if (include_usage) {
        found = tg_find_member(body, len, &root, "stream_options", &vs, &ve);
        if (found == -1) {
            return -1;
        }

        pl->stream_options.found = found;
        pl->stream_options.off = vs;
        pl->stream_options.end = ve;

        if (found && body[vs] == '{') {
            so.open = vs;
            found = tg_find_member(body, ve, &so, "include_usage", &vs, &ve);
            if (found == -1) {
                return -1;
            }

            pl->so_empty = so.empty;
            pl->include_usage.found = found;
            pl->include_usage.off = vs;
            pl->include_usage.end = ve;
        }
    }

    pl->empty = root.empty;

    return 0;
}


/* v's bytes in the body; 0 if they are not there as they are */
static int
tg_place(const tg_json_t *v, const char *body, size_t len,
    tg_json_place_t *place)
{
    size_t  off;

    if (v == NULL) {
        place->found = 0;
        return 1;
    }

    if (v->str < body || v->str >= body + len) {
        /* a string the parser decoded into its own space */
        return 0;
    }

    off = v->str - body;

    if (tg_json_is_string(v)) {
        /* str is past the opening quote, len without the quotes */
        place->off = off - 1;
        place->end = off + v->len + 1;

    } else {
        place->off = off;
        place->end = off + v->len;
    }

    place->found = 1;

    return 1;
}


void
tg_json_edit_places(const tg_json_t *root, const char *body, size_t len,
    tg_json_places_t *pl)
{
    const tg_json_t  *so;

    memset(pl, 0, sizeof(tg_json_places_t));

    if (!tg_json_is_object(root) || root->str < body
        || root->str >= body + len)
    {
        return;
    }

    pl->open = root->str - body;
    pl->empty = root->count == 0;

    so = tg_json_get(root, "stream_options");

    if (!tg_place(tg_json_get(root, "model"), body, len, &pl->model)
        || !tg_place(so, body, len, &pl->stream_options))
    {
        return;
    }

    if (tg_json_is_object(so)) {
        pl->so_empty = so->count == 0;

        if (!tg_place(tg_json_get(so, "include_usage"), body, len,
                      &pl->include_usage))
        {
            return;
        }
    }

    pl->known = 1;
}


/*
 * Places known, and of this body: each span inside it and starting where
 * its value does, so that a stale or foreign pl can only cost a scan
 */
static int
tg_places_fit(const tg_json_places_t *pl, const char *body, size_t len)
{
    size_t                  i;
    const tg_json_place_t  *p[3];

    if (pl == NULL || !pl->known || pl->open >= len
        || body[pl->open] != '{')
    {
        return 0;
    }

    p[0] = &pl->model;
    p[1] = &pl->stream_options;
    p[2] = &pl->include_usage;

    for (i = 0; i < 3; i++) {
        if (p[i]->found
            && (p[i]->off >= p[i]->end || p[i]->end > len
                || p[i]->off <= pl->open))
        {
            return 0;
        }
    }

    return !pl->model.found || body[pl->model.off] == '"';
}


int
tg_json_edit_plan(const char *body, size_t len, const tg_json_places_t *pl,
    const char *model, size_t model_len, int include_usage,
    tg_json_edit_t *edits, int *nedits)
{
    int               n;
    const char       *text;
    tg_json_places_t  found;

    n = 0;
    *nedits = 0;
    memset(edits, 0, TG_JSON_EDITS_MAX * sizeof(tg_json_edit_t));

    if (!tg_places_fit(pl, body, len)) {
        if (tg_find_places(body, len, model, include_usage, &found) != 0) {
            return -1;
        }

        pl = &found;
    }

    if (model != NULL) {
        if (!pl->model.found) {
            return -1;
        }

        edits[n].off = pl->model.off;
        edits[n].remove = pl->model.end - pl->model.off;
        edits[n].text = tg_quote(model, model_len, &edits[n].len);
        if (edits[n].text == NULL) {
            return -2;
        }

        n++;
    }

    if (include_usage) {
        if (!pl->stream_options.found) {
            /* add the member first thing in the object */
            edits[n].off = pl->open + 1;
            text = pl->empty ? "\"stream_options\":{\"include_usage\":true}"
                             : "\"stream_options\":{\"include_usage\":true},";

        } else if (body[pl->stream_options.off] != '{') {
            /* null or a wrong type: the upstream would refuse it anyway */
            edits[n].off = pl->stream_options.off;
            edits[n].remove = pl->stream_options.end - pl->stream_options.off;
            text = "{\"include_usage\":true}";

        } else if (pl->include_usage.found) {
            edits[n].off = pl->include_usage.off;
            edits[n].remove = pl->include_usage.end - pl->include_usage.off;
            text = "true";

        } else {
            edits[n].off = pl->stream_options.off + 1;
            text = pl->so_empty ? "\"include_usage\":true"
                                : "\"include_usage\":true,";
        }

        edits[n].text = tg_dup(text, &edits[n].len);
        if (edits[n].text == NULL) {
            tg_json_edits_free(edits, n);
            return -2;
        }

        n++;
    }

    qsort(edits, n, sizeof(tg_json_edit_t), tg_edit_cmp);
    *nedits = n;

    return 0;
}


void
tg_json_edits_free(tg_json_edit_t *edits, int n)
{
    int  i;

    for (i = 0; i < n; i++) {
        free(edits[i].text);
        edits[i].text = NULL;
    }
}


int
tg_json_edit_body(const char *body, size_t len, const char *model,
    size_t model_len, int include_usage, char **out, size_t *out_len)
{
    int             rc, n, i;
    char           *o;
    size_t          total, pos;
    tg_json_edit_t  edits[TG_JSON_EDITS_MAX];

    rc = tg_json_edit_plan(body, len, NULL, model, model_len, include_usage,
                           edits, &n);
    if (rc != 0) {
        return rc;
    }

    total = len;

    for (i = 0; i < n; i++) {
        total = total - edits[i].remove + edits[i].len;
    }

    o = malloc(total + 1);
    if (o == NULL) {
        tg_json_edits_free(edits, n);
        return -2;
    }

    *out = o;
    pos = 0;

    for (i = 0; i < n; i++) {
        memcpy(o, body + pos, edits[i].off - pos);
        o += edits[i].off - pos;
        memcpy(o, edits[i].text, edits[i].len);
        o += edits[i].len;
        pos = edits[i].off + edits[i].remove;
    }

    memcpy(o, body + pos, len - pos);
    o += len - pos;
    *o = '\0';

    *out_len = total;
    tg_json_edits_free(edits, n);

    return 0;
}
