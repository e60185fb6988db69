#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tg_json.h"
#include "tg_json_edit.h"


static char *
edit(const char *body, const char *model, int include_usage)
{
    int          rc;
    char        *out;
    size_t       len;
    static char  err[16];

    rc = tg_json_edit_body(body, strlen(body), model,
                           model ? strlen(model) : 0, include_usage,
                           &out, &len);
    if (rc != 0) {
        strcpy(err, rc == -1 ? "(error)" : "(nomem)");
        return strdup(err);
    }

    if (strlen(out) != len) {
        free(out);
        return strdup("(bad length)");
    }

    return out;
}


/*
 * The same plan from the places of the parsed document, spliced here;
 * NULL when the parser refuses the body or the places are not known.
 */
static char *
edit_places(const char *body, const char *model, int include_usage,
    int *known)
{
    int               i, n, rc;
    char             *out, *o;
    size_t            len, pos;
    tg_json_t        *root;
    tg_json_doc_t     doc;
    tg_json_edit_t    e[TG_JSON_EDITS_MAX];
    tg_json_places_t  pl;

    len = strlen(body);
    *known = 0;
    out = NULL;

    root = tg_json_parse(&doc, body, len, TG_JSON_REJECT_DUPLICATES
                         | TG_JSON_ALLOW_NUL | TG_JSON_BOUNDED);
    if (root == NULL) {
        tg_json_free(&doc);
        return NULL;
    }

    tg_json_edit_places(root, body, len, &pl);
    tg_json_free(&doc);

    if (!pl.known) {
        return NULL;
    }

    *known = 1;

    rc = tg_json_edit_plan(body, len, &pl, model, model ? strlen(model) : 0,
                           include_usage, e, &n);
    if (rc != 0) {
        return strdup(rc == -1 ? "(error)" : "(nomem)");
    }

    out = malloc(len + 256);
    if (out == NULL) {
        tg_json_edits_free(e, n);
        return strdup("(nomem)");
    }

    o = out;
    pos = 0;

    for (i = 0; i < n; i++) {
        memcpy(o, body + pos, e[i].off - pos);
        o += e[i].off - pos;
        memcpy(o, e[i].text, e[i].len);
        o += e[i].len;
        pos = e[i].off + e[i].remove;
    }

    strcpy(o, body + pos);
    tg_json_edits_free(e, n);

    return out;
}


static void
check(const char *body, const char *model, int include_usage,
    const char *want, const char *name)
{
    int    known;
    char  *got, what[160];

    got = edit(body, model, include_usage);
    is_str(got, want, name);
    free(got);

    got = edit_places(body, model, include_usage, &known);

    if (known) {
        snprintf(what, sizeof(what), "%s (from the parsed places)", name);
        is_str(got, want, what);
    }

    free(got);
}


/* what the parsed document tells: known only where the bytes are as sent */
static void
places(void)
{
    int               n;
    int               known;
    char             *got;
    const char       *body;
    tg_json_edit_t    e[TG_JSON_EDITS_MAX];
    tg_json_places_t  pl;

    got = edit_places("{\"model\":\"a\\u0062\"}", "c", 0, &known);
    is_int(known, 0, "places: not known for a model with escapes");
    free(got);

    got = edit_places("{\"m\\u006fdel\":\"a\",\"stream_options\":"
                      "{\"include_usage\":null}}", "c", 1, &known);
    is_int(known, 1, "places: known for an escaped key");
    is_str(got, "{\"m\\u006fdel\":\"c\",\"stream_options\":"
           "{\"include_usage\":true}}", "places: both edits in place");
    free(got);

    got = edit_places("{}", NULL, 1, &known);
    is_str(got, "{\"stream_options\":{\"include_usage\":true}}",
           "places: an empty body object");
    free(got);

    /* places that do not fit the body (another body's) cost a scan */
    memset(&pl, 0, sizeof(pl));
    pl.known = 1;
    pl.model.found = 1;
    pl.model.off = 40;
    pl.model.end = 90;
    body = "{\"model\":\"a\"}";
    is_int(tg_json_edit_plan(body, strlen(body), &pl, "b", 1, 0, e, &n), 0,
           "places: a plan with places that do not fit");
    is_int(n == 1 ? (int) e[0].off : -1, 9,
           "places: ... edits where the scan finds the model");
    tg_json_edits_free(e, n);
}


/* the plan: splices of the original, in order, that give the edited body */
static void
plan(void)
{
    int             n;
    char           *text;
    const char     *body = "{\"stream\":true,\"model\":\"gpt-4o\"}";
    tg_json_edit_t  e[TG_JSON_EDITS_MAX];

    is_int(tg_json_edit_plan(body, strlen(body), NULL, "m\"1", 3, 1, e, &n), 0,
           "plan: model and include_usage");
    is_int(n, 2, "plan: two edits");
    is_int(e[0].off, 1, "plan: the member added first, at the object");
    is_int(e[0].remove, 0, "plan: inserted, nothing removed");
    text = strndup(e[0].text, e[0].len);
    is_str(text, "\"stream_options\":{\"include_usage\":true},",
           "plan: the inserted member");
    free(text);
    is_int(e[1].off, strlen("{\"stream\":true,\"model\":"),
           "plan: then the model's value");
    is_int(e[1].remove, strlen("\"gpt-4o\""), "plan: the old value replaced");
    /* an edit's text is not NUL-terminated */
    text = strndup(e[1].text, e[1].len);
    is_str(text, "\"m\\\"1\"", "plan: the new value, escaped");
    free(text);
    tg_json_edits_free(e, n);

    is_int(tg_json_edit_plan(body, strlen(body), NULL, NULL, 0, 0, e, &n), 0,
           "plan: nothing to do");
    is_int(n, 0, "plan: no edit");

    is_int(tg_json_edit_plan("[1]", 3, NULL, "x", 1, 0, e, &n), -1,
           "plan: not an object");
    is_int(tg_json_edit_plan("{\"a\":1}", 7, NULL, "x", 1, 1, e, &n), -1,
           "plan: no model to replace");

    places();
}


void
test_json_edit(void)
{
    plan();

    check("{\"model\":\"gpt-4o\",\"temperature\":0.7}", "gpt-4o-mini", 0,
          "{\"model\":\"gpt-4o-mini\",\"temperature\":0.7}",
          "edit: model replaced, numbers kept byte for byte");

    check(" {\n  \"messages\": [{\"model\": \"not me\"}],\n  \"model\" :"
          " \"a\"\n}", "b", 0,
          " {\n  \"messages\": [{\"model\": \"not me\"}],\n  \"model\" :"
          " \"b\"\n}", "edit: only the top-level model, spacing kept");

    check("{\"mod\\u0065l\":\"a\"}", "b", 0, "{\"mod\\u0065l\":\"b\"}",
          "edit: escaped key");

    check("{\"model\":\"a\"}", "x\"y\\z\n", 0,
          "{\"model\":\"x\\\"y\\\\z\\u000a\"}", "edit: new model escaped");

    check("{\"model\":\"a\",\"stream\":true}", NULL, 1,
          "{\"stream_options\":{\"include_usage\":true},\"model\":\"a\","
          "\"stream\":true}", "edit: stream_options added");

    check("{\"model\":\"a\",\"stream_options\":{}}", NULL, 1,
          "{\"model\":\"a\",\"stream_options\":{\"include_usage\":true}}",
          "edit: include_usage added to empty stream_options");

    check("{\"model\":\"a\",\"stream_options\":{\"x\":1}}", NULL, 1,
          "{\"model\":\"a\",\"stream_options\":{\"include_usage\":true,"
          "\"x\":1}}", "edit: include_usage added to stream_options");

    check("{\"model\":\"a\",\"stream_options\":{\"include_usage\":false}}",
          "b", 1,
          "{\"model\":\"b\",\"stream_options\":{\"include_usage\":true}}",
          "edit: include_usage false made true, with a model change");

    check("{\"model\":\"a\",\"stream_options\":null}", NULL, 1,
          "{\"model\":\"a\",\"stream_options\":{\"include_usage\":true}}",
          "edit: null stream_options replaced");

    check("{\"s\":\"}{\\\"\",\"model\":\"a\"}", "b", 0,
          "{\"s\":\"}{\\\"\",\"model\":\"b\"}",
          "edit: braces and quotes inside strings skipped");

    check("{\"model\":\"a\",\"tools\":[{\"s\":\"}\\\"{\"}],"
          "\"stream\":true}", "b", 1,
          "{\"stream_options\":{\"include_usage\":true},\"model\":\"b\","
          "\"tools\":[{\"s\":\"}\\\"{\"}],\"stream\":true}",
          "edit: model and stream_options, nested strings skipped");

    check("{\"messages\":[]}", "b", 0, "(error)", "edit: no model to edit");
    check("[1]", "b", 0, "(error)", "edit: not an object");
    check("{\"model\":\"a\"", "b", 0, "(error)", "edit: truncated object");
    check("{\"model\"\"a\"}", "b", 0, "(error)", "edit: missing colon");
    check("{\"model\":\"a\",}", "b", 0, "(error)", "edit: trailing comma");
}
