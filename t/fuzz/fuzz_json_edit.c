/*
 * tg_json_edit_body(), the byte splicer.  Input: a flags byte (bit 0: a
 * new model, on the line that follows; bit 1: include_usage), then the
 * body.  When jansson accepts the body as the request parser does, the
 * edit must succeed (unless there is no "model" to replace), and its
 * output must parse to the same object with only the edits applied.
 * When the request parser accepts it, the plan from the places it read
 * off the document must be the plan the scanner makes.
 */

#include <jansson.h>

#include "fuzz.h"
#include "tg_json_edit.h"


#define FUZZ_JSON_FLAGS                                                      \
    (JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL)


/* the plan from the parsed document's places is the scanner's plan */
static void
fuzz_places(const char *body, size_t len, const char *model,
    size_t model_len, int include_usage)
{
    int               i, rc, rc2, n, n2;
    tg_json_t        *root;
    tg_json_doc_t     doc;
    tg_json_edit_t    e[TG_JSON_EDITS_MAX], e2[TG_JSON_EDITS_MAX];
    tg_json_places_t  pl;

    root = tg_json_parse(&doc, body, len, TG_JSON_REJECT_DUPLICATES
                         | TG_JSON_ALLOW_NUL | TG_JSON_BOUNDED);

    if (root != NULL) {
        tg_json_edit_places(root, body, len, &pl);

        if (pl.known) {
            rc = tg_json_edit_plan(body, len, NULL, model, model_len,
                                   include_usage, e, &n);
            rc2 = tg_json_edit_plan(body, len, &pl, model, model_len,
                                    include_usage, e2, &n2);

            fuzz_assert(rc == rc2);

            if (rc == 0) {
                fuzz_assert(n == n2);

                for (i = 0; i < n; i++) {
                    fuzz_assert(e[i].off == e2[i].off
                                && e[i].remove == e2[i].remove
                                && e[i].len == e2[i].len
                                && memcmp(e[i].text, e2[i].text, e[i].len)
                                   == 0);
                }

                tg_json_edits_free(e, n);
                tg_json_edits_free(e2, n2);
            }
        }
    }

    tg_json_free(&doc);
}


/* what the edit should do, done by jansson */
static json_t *
fuzz_expected(json_t *root, const char *model, size_t model_len,
    int include_usage)
{
    json_t  *want, *so;

    want = json_deep_copy(root);
    fuzz_assert(want != NULL);

    if (model != NULL) {
        json_object_set_new(want, "model", json_stringn(model, model_len));
    }

    if (include_usage) {
        so = json_object_get(want, "stream_options");

        if (json_is_object(so)) {
            json_object_set_new(so, "include_usage", json_true());

        } else {
            json_object_set_new(want, "stream_options",
                                json_pack("{s:b}", "include_usage", 1));
        }
    }

    return want;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int            rc, include_usage, utf8;
    char          *body, *model, *out;
    size_t         len, model_len, out_len;
    json_t        *root, *got, *want, *s;
    unsigned       flags;
    const char    *line;
    fuzz_input_t   in;
    json_error_t   err;

    in.p = data;
    in.len = size;

    flags = fuzz_byte(&in);
    include_usage = (flags & 2) != 0;
    model = NULL;
    model_len = 0;
    utf8 = 1;

    if (flags & 1) {
        line = fuzz_line(&in, &model_len);
        model = fuzz_dup(line, model_len);

        /* the edit escapes but does not validate: jansson would refuse */
        s = json_stringn(model, model_len);
        utf8 = (s != NULL);
        json_decref(s);
    }

    len = in.len;
    body = fuzz_dup(in.p, len);
    out = NULL;

    rc = tg_json_edit_body(body, len, model, model_len, include_usage,
                           &out, &out_len);

    fuzz_assert(rc == 0 || rc == -1);

    if (rc == 0) {
        fuzz_assert(out != NULL && out[out_len] == '\0');
    }

    fuzz_places(body, len, model, model_len, include_usage);

    root = json_loadb(body, len, FUZZ_JSON_FLAGS, &err);

    if (root != NULL && json_is_object(root)) {

        if (model == NULL || json_object_get(root, "model") != NULL) {
            fuzz_assert(rc == 0);
        }

        if (rc == 0 && utf8) {
            got = json_loadb(out, out_len, FUZZ_JSON_FLAGS, &err);
            if (got == NULL) {
                fprintf(stderr, "output is not JSON: %s\n", err.text);
            }

            fuzz_assert(got != NULL);

            want = fuzz_expected(root, model, model_len, include_usage);
            fuzz_assert(json_equal(got, want));

            json_decref(want);
            json_decref(got);
        }
    }

    json_decref(root);
    free(out);
    free(body);
    free(model);

    return 0;
}
