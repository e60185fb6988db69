/*
 * Byte-level edits of a JSON request body: replace the top-level "model"
 * and make sure "stream_options.include_usage" is true, leaving every
 * other byte as the client sent it (numbers, key order, spacing).
 * Pure C, no nginx headers.
 */

#ifndef TG_JSON_EDIT_H
#define TG_JSON_EDIT_H

#include <stddef.h>

#include "tg_json.h"


#define TG_JSON_EDITS_MAX  2


/* one splice: "remove" bytes at "off" of the original become "text" */
typedef struct {
    size_t   off;
    size_t   remove;
    char    *text;          /* malloc()ed */
    size_t   len;
} tg_json_edit_t;


/* a member of an object: its value's bytes, off up to end */
typedef struct {
    int              found;
    size_t           off;
    size_t           end;
} tg_json_place_t;


/*
 * Where the edits go: the root's '{', its "model" and "stream_options",
 * and the "include_usage" in the latter when it is an object.
 */
typedef struct {
    int              known;     /* filled by tg_json_edit_places() */
    size_t           open;
    int              empty;     /* the root has no member */
    tg_json_place_t  model;
    tg_json_place_t  stream_options;
    int              so_empty;  /* stream_options is {} */
    tg_json_place_t  include_usage;
} tg_json_places_t;


/*
 * The places read off the document that the body (len bytes) was parsed
 * into, so that a plan need not scan the body again: a 60 KB body took
 * as long to scan for an absent "stream_options" as to parse.  pl->known
 * stays 0 when a place is not in the body's bytes as they are (a string
 * value with escapes, which the parser decoded elsewhere).
 */
void tg_json_edit_places(const tg_json_t *root, const char *body, size_t len,
    tg_json_places_t *pl);

/*
 * The edits tg_json_edit_body() applies, sorted by offset and not
 * overlapping, for a caller that splices them without copying the body
 * (edits has room for TG_JSON_EDITS_MAX).  Same arguments and results;
 * on success the caller frees the texts with tg_json_edits_free().  pl:
 * the places of this body when known (NULL, or not known: the body is
 * scanned for them).
 */
int tg_json_edit_plan(const char *body, size_t len,
    const tg_json_places_t *pl, const char *model, size_t model_len,
    int include_usage, tg_json_edit_t *edits, int *n);

void tg_json_edits_free(tg_json_edit_t *edits, int n);


/*
 * The plan applied to a copy.  The module splices the edits instead
 * (ngx_http_tokenguard_body_splice()); the unit and fuzz tests check the
 * plan's result through this.
 * body must be a JSON object (already validated by the caller's parser).
 * model: the new model name (raw, escaped here), or NULL to keep it.
 * include_usage: non-zero to set stream_options.include_usage to true.
 * On success returns 0 and a malloc()ed *out (the caller frees it);
 * returns -1 if the body cannot be edited, -2 when out of memory.
 */
int tg_json_edit_body(const char *body, size_t len, const char *model,
    size_t model_len, int include_usage, char **out, size_t *out_len);

#endif /* TG_JSON_EDIT_H */
