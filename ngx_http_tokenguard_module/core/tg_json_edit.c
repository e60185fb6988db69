/*
 * A small scanner that finds the byte spans of an object's members, and
 * a splicer that applies up to a few edits in one pass.  The scanner does
 * not recurse (nesting is skipped with a depth counter), so hostile
 * nesting cannot exhaust the stack.
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


int
tg_json_edit_plan(const char *body, size_t len, const char *model,
    size_t model_len, int include_usage, tg_json_edit_t *edits, int *nedits)
{
    int          n, found;
    size_t       vs, ve, us, ue;
    tg_object_t  root, so;

    n = 0;
    *nedits = 0;
    memset(edits, 0, TG_JSON_EDITS_MAX * sizeof(tg_json_edit_t));

    root.open = tg_skip_ws(body, 0, len);

    if (root.open >= len || body[root.open] != '{') {
        return -1;
    }

    if (model != NULL) {
        found = tg_find_member(body, len, &root, "model", &vs, &ve);
        if (found != 1) {
            return -1;
        }

        edits[n].off = vs;
        edits[n].remove = ve - vs;
        edits[n].text = tg_quote(model, model_len, &edits[n].len);
        if (edits[n].text == NULL) {
            return -2;
        }

        n++;
    }

    if (include_usage) {
        found = tg_find_member(body, len, &root, "stream_options", &vs, &ve);
        if (found == -1) {
            goto failed;
        }

        if (found == 0) {
            /* add the member first thing in the object */
            edits[n].off = root.open + 1;
            edits[n].text = tg_dup(root.empty
                                   ? "\"stream_options\":{\"include_usage\""
                                     ":true}"
                                   : "\"stream_options\":{\"include_usage\""
                                     ":true},",
                                   &edits[n].len);

        } else if (body[vs] != '{') {
            /* null or a wrong type: the upstream would refuse it anyway */
            edits[n].off = vs;
            edits[n].remove = ve - vs;
            edits[n].text = tg_dup("{\"include_usage\":true}",
                                   &edits[n].len);

        } else {
            so.open = vs;
            found = tg_find_member(body, ve, &so, "include_usage", &us, &ue);
            if (found == -1) {
                goto failed;
            }

            if (found == 1) {
                edits[n].off = us;
                edits[n].remove = ue - us;
                edits[n].text = tg_dup("true", &edits[n].len);

            } else {
                edits[n].off = so.open + 1;
                edits[n].text = tg_dup(so.empty ? "\"include_usage\":true"
                                                : "\"include_usage\":true,",
                                       &edits[n].len);
            }
        }

        if (edits[n].text == NULL) {
            tg_json_edits_free(edits, n);
            return -2;
        }

        n++;
    }

    qsort(edits, n, sizeof(tg_json_edit_t), tg_edit_cmp);
    *nedits = n;

    return 0;

failed:

    tg_json_edits_free(edits, n);
    return -1;
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

    rc = tg_json_edit_plan(body, len, model, model_len, include_usage,
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
