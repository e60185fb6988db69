/*
 * Request inspection per provider dialect.
 *
 * The body is parsed by tg_json, duplicate keys rejected: an upstream
 * that reads the first "model" while we read the last would be a policy
 * bypass.  Numbers are decoded as doubles so that a huge "seed" or
 * "logit_bias" value the provider accepts does not make us refuse; the
 * fields we use are checked to be integral and in range.
 *
 * Errors name the field and never quote prompt text.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


#include "tg_estimate.h"
#include "tg_json.h"
#include "tg_request.h"
#include "tg_scan.h"


/* reserved for an image, audio or file part whose size we cannot see */
#define TG_ESTIMATE_PER_MEDIA  1000


typedef struct {
    tg_request_t         *rq;
    const tg_endpoint_t  *ep;           /* the URI may name the model */
    const char           *uri;
    int64_t               extra_tokens; /* format overhead, media, ids */
    int                   nomem;
} tg_inspect_t;


/* one object of a list, field naming the list for messages */
typedef int (*tg_item_pt)(tg_inspect_t *in, tg_json_t *item,
    const char *field);


static tg_json_t *tg_parse(tg_inspect_t *in, tg_json_doc_t *doc,
    const char *body, size_t len, int *rc);
static int tg_read_dialect(tg_inspect_t *in, tg_json_t *root);
static int tg_invalid(tg_inspect_t *in, const char *fmt, const char *field);
static int tg_get_limits(tg_inspect_t *in, tg_json_t *obj, const char *a,
    const char *b, int64_t *out);
static int tg_get_limit(tg_inspect_t *in, tg_json_t *obj, const char *key,
    int64_t *out);
static int tg_set_model(tg_inspect_t *in, const char *s, size_t len);
static int tg_uri_model(tg_inspect_t *in);
static int tg_get_model(tg_inspect_t *in, tg_json_t *root);
static int tg_get_stream(tg_inspect_t *in, tg_json_t *root);
static int tg_nonempty_array(tg_json_t *obj, const char *key);
static int tg_present(tg_json_t *obj, const char *key);
static int tg_each_object(tg_inspect_t *in, tg_json_t *a, const char *fmt,
    const char *field, tg_item_pt visit);
static int tg_list(tg_inspect_t *in, tg_json_t *root, const char *key,
    const char *fmt, tg_item_pt visit);
static int tg_content(tg_inspect_t *in, tg_json_t *content, const char *fmt,
    const char *field, tg_item_pt visit);

static int tg_openai_chat(tg_inspect_t *in, tg_json_t *root);
static int tg_openai_message(tg_inspect_t *in, tg_json_t *m,
    const char *field);
static int tg_openai_parts(tg_inspect_t *in, tg_json_t *content,
    const char *field);
static int tg_openai_part(tg_inspect_t *in, tg_json_t *part,
    const char *field);
static int tg_openai_completions(tg_inspect_t *in, tg_json_t *root);
static int tg_openai_embeddings(tg_inspect_t *in, tg_json_t *root);
static int tg_openai_prompt(tg_inspect_t *in, tg_json_t *v, const char *field);
static int tg_openai_responses(tg_inspect_t *in, tg_json_t *root);
static int tg_openai_item(tg_inspect_t *in, tg_json_t *item,
    const char *field);
static int tg_anthropic_messages(tg_inspect_t *in, tg_json_t *root);
static int tg_anthropic_message(tg_inspect_t *in, tg_json_t *m,
    const char *field);
static int tg_anthropic_blocks(tg_inspect_t *in, tg_json_t *content,
    const char *field);
static int tg_anthropic_block(tg_inspect_t *in, tg_json_t *block,
    const char *field);
static int tg_gemini_generate(tg_inspect_t *in, tg_json_t *root);
static int tg_gemini_content(tg_inspect_t *in, tg_json_t *c,
    const char *field);
static int tg_gemini_config(tg_inspect_t *in, tg_json_t *root);
static int tg_gemini_parts(tg_inspect_t *in, tg_json_t *holder,
    const char *field);
static int tg_gemini_part(tg_inspect_t *in, tg_json_t *part,
    const char *field);
static tg_json_t *tg_get2(tg_json_t *obj, const char *camel,
    const char *snake);


int
tg_request_inspect(const tg_endpoint_t *ep, const char *uri,
    const char *body, size_t len, tg_request_t *rq)
{
    int            rc;
    tg_json_t     *root;
    tg_scan_t      sc;
    tg_inspect_t   in;
    tg_json_doc_t  doc;

    memset(rq, 0, sizeof(tg_request_t));
    rq->max_output = -1;
    rq->choices = 1;

    in.rq = rq;
    in.ep = ep;
    in.uri = uri;
    in.extra_tokens = 0;
    in.nomem = 0;

    root = tg_parse(&in, &doc, body, len, &rc);
    if (root == NULL) {
        return rc;
    }

    rc = tg_read_dialect(&in, root);

    tg_json_edit_places(root, body, len, &rq->places);

    if (rc == TG_OK && rq->choices < 1) {
        rq->choices = 1;
    }

    memset(&sc, 0, sizeof(tg_scan_t));

    if (rc == TG_OK && !in.nomem) {
        sc.text = malloc(len + 2);
        sc.size = len + 2;

        if (sc.text == NULL || tg_scan_body(&sc, root) != 0) {
            in.nomem = 1;
        }
    }

    tg_json_free(&doc);

    rq->prompt = sc.text;
    rq->prompt_len = sc.len;
    rq->prompt_size = sc.size;

    if (in.nomem) {
        return TG_NOMEM;
    }

    if (rc != TG_OK) {
        return rc;
    }

    rq->prompt_tokens = tg_estimate_tokens(&sc.est) + in.extra_tokens;

    return TG_OK;
}


/* the body's JSON object, or NULL and *rc (the document is freed then) */
static tg_json_t *
tg_parse(tg_inspect_t *in, tg_json_doc_t *doc, const char *body, size_t len,
    int *rc)
{
    tg_json_t  *root;

    if (len == 0) {
        *rc = tg_invalid(in, "the request body is empty", NULL);
        return NULL;
    }

    root = tg_json_parse(doc, body, len,
                         TG_JSON_REJECT_DUPLICATES | TG_JSON_ALLOW_NUL
                         | TG_JSON_BOUNDED);

    if (root != NULL && tg_json_is_object(root)) {
        return root;
    }

    tg_json_free(doc);

    if (root != NULL) {
        *rc = tg_invalid(in, "the request body must be a JSON object", NULL);

    } else if (doc->nomem) {
        *rc = TG_NOMEM;

    } else if (strncmp(doc->error, "too many values", 15) == 0) {
        /* the parser's memory is bounded by the body's size */
        *rc = tg_invalid(in, "the request body holds more JSON values"
                         " than one per 4 bytes", NULL);

    } else {
        snprintf(in->rq->error, sizeof(in->rq->error),
                 "the request body is not valid JSON: %s at byte %zu",
                 doc->error, doc->position);
        *rc = TG_INVALID;
    }

    return NULL;
}


static int
tg_read_dialect(tg_inspect_t *in, tg_json_t *root)
{
    int  rc;

    switch (in->ep->api) {

    case TG_API_CHAT:
        rc = tg_openai_chat(in, root);
        break;

    case TG_API_COMPLETIONS:
        rc = tg_openai_completions(in, root);
        break;

    case TG_API_RESPONSES:
        rc = tg_openai_responses(in, root);
        break;

    case TG_API_EMBEDDINGS:
        /* no output and no stream */
        return tg_openai_embeddings(in, root);

    case TG_API_MESSAGES:
        rc = tg_anthropic_messages(in, root);
        break;

    case TG_API_GENERATE:
        /* the URI says whether it streams */
        return tg_gemini_generate(in, root);

    default:
        return tg_invalid(in, "not a generation request", NULL);
    }

    return (rc == TG_OK) ? tg_get_stream(in, root) : rc;
}


void
tg_request_free(tg_request_t *rq)
{
    free(rq->model);
    free(rq->prompt);

    rq->model = NULL;
    rq->prompt = NULL;
}


int
tg_request_model_valid(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > TG_MODEL_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] < 0x21 || (unsigned char) s[i] > 0x7e) {
            return 0;
        }
    }

    return 1;
}


void
tg_request_drop_prompt(tg_request_t *rq)
{
    free(rq->prompt);

    rq->prompt = NULL;
    rq->prompt_len = 0;
    rq->prompt_size = 0;
}


static int
tg_invalid(tg_inspect_t *in, const char *fmt, const char *field)
{
    snprintf(in->rq->error, sizeof(in->rq->error), fmt, field);

    return TG_INVALID;
}


/* a limit that has two names: the larger; neither given leaves *out */
static int
tg_get_limits(tg_inspect_t *in, tg_json_t *obj, const char *a,
    const char *b, int64_t *out)
{
    int      rc;
    int64_t  va, vb;

    va = -1;
    vb = -1;

    rc = tg_get_limit(in, obj, a, &va);
    if (rc == TG_OK) {
        rc = tg_get_limit(in, obj, b, &vb);
    }

    if (rc == TG_OK && (va >= 0 || vb >= 0)) {
        *out = va > vb ? va : vb;
    }

    return rc;
}


/* an optional non-negative integer field; absent or null leaves *out */
static int
tg_get_limit(tg_inspect_t *in, tg_json_t *obj, const char *key, int64_t *out)
{
    double      d;
    tg_json_t  *v;

    v = tg_json_get(obj, key);

    if (v == NULL || tg_json_is_null(v)) {
        return TG_OK;
    }

    if (!tg_json_is_number(v)) {
        return tg_invalid(in, "\"%s\" must be an integer", key);
    }

    d = tg_json_number_value(v);

    if (d < 0 || d > 1e12 || d != (double) (int64_t) d) {
        return tg_invalid(in, "\"%s\" must be a non-negative integer", key);
    }

    *out = (int64_t) d;

    return TG_OK;
}


/* a checked model name, copied */
static int
tg_set_model(tg_inspect_t *in, const char *s, size_t len)
{
    tg_request_t  *rq;

    rq = in->rq;

    rq->model = malloc(len + 1);
    if (rq->model == NULL) {
        in->nomem = 1;
        return TG_NOMEM;
    }

    memcpy(rq->model, s, len);
    rq->model[len] = '\0';
    rq->model_len = len;

    return TG_OK;
}


static int
tg_uri_model(tg_inspect_t *in)
{
    const char  *m;

    m = in->uri + in->ep->model_off;

    if (in->ep->model_len > TG_MODEL_MAX) {
        return tg_invalid(in, "the model in the URI must be at most 256"
                          " bytes", NULL);
    }

    if (!tg_request_model_valid(m, in->ep->model_len)) {
        return tg_invalid(in, "the model in the URI must be printable"
                          " ASCII", NULL);
    }

    return tg_set_model(in, m, in->ep->model_len);
}


static int
tg_get_model(tg_inspect_t *in, tg_json_t *root)
{
    tg_json_t  *v;

    if (in->ep->model_len) {
        /*
         * Vertex AI, an Azure deployment: the provider serves the model
         * the URI names, whatever the body says
         */
        return tg_uri_model(in);
    }

    v = tg_json_get(root, "model");

    if (v == NULL) {
        return tg_invalid(in, "the request names no \"model\"", NULL);
    }

    if (!tg_json_is_string(v)) {
        return tg_invalid(in, "\"model\" must be a string", NULL);
    }

    if (!tg_request_model_valid(tg_json_string_value(v),
                                tg_json_string_length(v)))
    {
        return tg_invalid(in, "\"model\" must be a non-empty name of at most"
                          " 256 bytes of printable ASCII, without spaces",
                          NULL);
    }

    return tg_set_model(in, tg_json_string_value(v),
                        tg_json_string_length(v));
}


static int
tg_get_stream(tg_inspect_t *in, tg_json_t *root)
{
    tg_json_t  *v;

    v = tg_json_get(root, "stream");

    if (v == NULL || tg_json_is_null(v)) {
        return TG_OK;
    }

    if (!tg_json_is_boolean(v)) {
        return tg_invalid(in, "\"stream\" must be true or false", NULL);
    }

    in->rq->stream = tg_json_is_true(v);

    return TG_OK;
}


/* key is there with a value other than null */
static int
tg_present(tg_json_t *obj, const char *key)
{
    tg_json_t  *v;

    v = tg_json_get(obj, key);

    return v != NULL && !tg_json_is_null(v);
}


static int
tg_nonempty_array(tg_json_t *obj, const char *key)
{
    tg_json_t  *v;

    v = tg_json_get(obj, key);

    return tg_json_is_array(v) && tg_json_array_size(v) > 0;
}


/*
 * Each element of the array a, which must be an object (fmt, naming
 * field, says so), is read by visit.  Numbers of an array have no node
 * (TG_JSON_BOUNDED): fewer nodes than elements mean some are numbers.
 */
static int
tg_each_object(tg_inspect_t *in, tg_json_t *a, const char *fmt,
    const char *field, tg_item_pt visit)
{
    int         rc;
    size_t      n;
    tg_json_t  *v;

    n = 0;

    tg_json_foreach(a, v) {
        n++;
    }

    if (n != tg_json_array_size(a)) {
        return tg_invalid(in, fmt, field);
    }

    tg_json_foreach(a, v) {

        if (!tg_json_is_object(v)) {
            return tg_invalid(in, fmt, field);
        }

        rc = visit(in, v, field);
        if (rc != TG_OK) {
            return rc;
        }
    }

    return TG_OK;
}


/* root's member key: an array of objects, each read by visit */
static int
tg_list(tg_inspect_t *in, tg_json_t *root, const char *key, const char *fmt,
    tg_item_pt visit)
{
    tg_json_t  *a;

    a = tg_json_get(root, key);

    if (!tg_json_is_array(a)) {
        return tg_invalid(in, "\"%s\" must be an array", key);
    }

    return tg_each_object(in, a, fmt, key, visit);
}


/* message content: absent, null, a string, or an array of objects */
static int
tg_content(tg_inspect_t *in, tg_json_t *content, const char *fmt,
    const char *field, tg_item_pt visit)
{
    if (content == NULL || tg_json_is_null(content)
        || tg_json_is_string(content))
    {
        return TG_OK;
    }

    if (!tg_json_is_array(content)) {
        return tg_invalid(in, "\"%s\" must be a string or an array", field);
    }

    return tg_each_object(in, content, fmt, field, visit);
}


/* OpenAI chat completions: messages[].content, tool calls and results */
static int
tg_openai_chat(tg_inspect_t *in, tg_json_t *root)
{
    int            rc;
    tg_json_t     *google;
    tg_request_t  *rq;

    rq = in->rq;

    rc = tg_get_model(in, root);
    if (rc != TG_OK) {
        return rc;
    }

    if (tg_nonempty_array(root, "tools")
        || tg_nonempty_array(root, "functions"))
    {
        rq->tools = 1;
    }

    rc = tg_list(in, root, "messages", "each of \"%s\" must be an object",
                 tg_openai_message);
    if (rc != TG_OK) {
        return rc;
    }

    /*
     * Both names given: OpenAI reads the newer, other servers the older
     * only; the worst case is the larger
     */
    rc = tg_get_limits(in, root, "max_tokens", "max_completion_tokens",
                       &rq->max_output);
    if (rc != TG_OK) {
        return rc;
    }

    /* Gemini's OpenAI-compatible endpoint takes its cache here */
    google = tg_json_get(tg_json_get(root, "extra_body"), "google");

    if (tg_present(google, "cached_content")
        || tg_present(google, "cachedContent"))
    {
        rq->stored = 1;
    }

    return tg_get_limits(in, root, "n", "best_of", &rq->choices);
}


static int
tg_openai_message(tg_inspect_t *in, tg_json_t *m, const char *field)
{
    int            rc;
    tg_json_t     *role;
    tg_request_t  *rq;

    (void) field;

    rq = in->rq;

    in->extra_tokens += TG_ESTIMATE_PER_MESSAGE;

    role = tg_json_get(m, "role");

    if (tg_json_string_is(role, "tool")
        || tg_json_string_is(role, "function"))
    {
        rq->tools = 1;
    }

    rc = tg_openai_parts(in, tg_json_get(m, "content"), "messages[].content");
    if (rc != TG_OK) {
        return rc;
    }

    if (tg_nonempty_array(m, "tool_calls")
        || tg_json_get(m, "function_call") != NULL)
    {
        rq->tools = 1;
    }

    return TG_OK;
}


/*
 * OpenAI content: a string, null, or an array of parts: text parts of any
 * name ("text", "input_text", "output_text") carry "text"; other parts are
 * media, reserved at a flat rate.
 */
static int
tg_openai_parts(tg_inspect_t *in, tg_json_t *content, const char *field)
{
    return tg_content(in, content, "each part of \"%s\" must be an object",
                      field, tg_openai_part);
}


/*
 * A file by id or URL (Responses input_file, chat's "file") is read by
 * the provider and billed as input, however long; an image is bounded,
 * and stays at the flat media estimate.
 */
static void
tg_openai_file_ref(tg_inspect_t *in, tg_json_t *part)
{
    if (tg_json_string_is(tg_json_get(part, "type"), "input_image")) {
        return;
    }

    if (tg_present(part, "file_id") || tg_present(part, "file_url")
        || tg_present(tg_json_get(part, "file"), "file_id"))
    {
        in->rq->stored = 1;
    }
}


static int
tg_openai_part(tg_inspect_t *in, tg_json_t *part, const char *field)
{
    tg_json_t  *text;

    tg_openai_file_ref(in, part);

    text = tg_json_get(part, "text");

    if (text == NULL) {
        text = tg_json_get(part, "refusal");
    }

    if (text == NULL) {
        in->extra_tokens += TG_ESTIMATE_PER_MEDIA;
        return TG_OK;
    }

    if (!tg_json_is_string(text)) {
        return tg_invalid(in, "the \"text\" of a part of \"%s\" must be"
                          " a string", field);
    }

    return TG_OK;
}


static int
tg_openai_completions(tg_inspect_t *in, tg_json_t *root)
{
    int  rc;

    rc = tg_get_model(in, root);
    if (rc != TG_OK) {
        return rc;
    }

    rc = tg_openai_prompt(in, tg_json_get(root, "prompt"), "prompt");
    if (rc != TG_OK) {
        return rc;
    }

    rc = tg_get_limit(in, root, "max_tokens", &in->rq->max_output);
    if (rc != TG_OK) {
        return rc;
    }

    /* best_of completions are generated and billed, n returned */
    return tg_get_limits(in, root, "n", "best_of", &in->rq->choices);
}


static int
tg_openai_embeddings(tg_inspect_t *in, tg_json_t *root)
{
    int  rc;

    in->rq->embeddings = 1;
    in->rq->max_output = 0;

    rc = tg_get_model(in, root);
    if (rc != TG_OK) {
        return rc;
    }

    return tg_openai_prompt(in, tg_json_get(root, "input"), "input");
}


/*
 * completions "prompt" and embeddings "input": a string, an array of
 * strings, an array of token ids, or an array of arrays of token ids
 */
static int
tg_openai_prompt(tg_inspect_t *in, tg_json_t *v, const char *field)
{
    size_t   i;
    tg_json_t  *e;

    if (v == NULL) {
        return tg_invalid(in, "the request has no \"%s\"", field);
    }

    if (tg_json_is_string(v)) {
        return TG_OK;
    }

    if (!tg_json_is_array(v)) {
        return tg_invalid(in, "\"%s\" must be a string or an array", field);
    }

    /* token ids have no node (TG_JSON_BOUNDED): those not visited */
    in->extra_tokens += tg_json_array_size(v);

    tg_json_array_foreach(v, i, e) {
        in->extra_tokens--;

        if (tg_json_is_array(e)) {
            in->extra_tokens += tg_json_array_size(e);

        } else if (!tg_json_is_string(e)) {
            return tg_invalid(in, "\"%s\" must hold strings or token ids",
                              field);
        }
    }

    return TG_OK;
}


/* OpenAI Responses: instructions and input (a string or items) */
static int
tg_openai_responses(tg_inspect_t *in, tg_json_t *root)
{
    int            rc;
    tg_json_t     *input, *v;
    tg_request_t  *rq;

    rq = in->rq;

    rc = tg_get_model(in, root);
    if (rc != TG_OK) {
        return rc;
    }

    v = tg_json_get(root, "instructions");

    if (v != NULL && !tg_json_is_null(v) && !tg_json_is_string(v)) {
        return tg_invalid(in, "\"instructions\" must be a string", NULL);
    }

    if (tg_nonempty_array(root, "tools")) {
        rq->tools = 1;
    }

    input = tg_json_get(root, "input");

    if (tg_json_is_string(input)) {
        in->extra_tokens += TG_ESTIMATE_PER_MESSAGE;

    } else if (tg_json_is_array(input)) {
        rc = tg_each_object(in, input, "each item of \"%s\" must be an"
                            " object", "input", tg_openai_item);
        if (rc != TG_OK) {
            return rc;
        }

    } else if (input != NULL && !tg_json_is_null(input)) {
        return tg_invalid(in, "\"input\" must be a string or an array",
                          NULL);
    }

    /* answered later: a cut first answer must not say otherwise */
    rq->background = tg_json_is_true(tg_json_get(root, "background"));

    /*
     * the provider adds the input it keeps to what the body sends: an
     * earlier response, a conversation, a prompt template (its variables
     * are in the body, its text is not)
     */
    if (tg_present(root, "previous_response_id")
        || tg_present(root, "conversation") || tg_present(root, "prompt"))
    {
        rq->stored = 1;
    }

    return tg_get_limit(in, root, "max_output_tokens", &rq->max_output);
}


static int
tg_openai_item(tg_inspect_t *in, tg_json_t *item, const char *field)
{
    size_t       n;
    tg_json_t   *type, *output, *p;
    const char  *t;

    (void) field;

    in->extra_tokens += TG_ESTIMATE_PER_MESSAGE;

    type = tg_json_get(item, "type");

    if (tg_json_is_string(type)) {
        t = tg_json_string_value(type);
        n = tg_json_string_length(type);

    } else {
        t = "message";
        n = sizeof("message") - 1;
    }

    if (tg_json_eq(t, n, "function_call")
        || tg_json_eq(t, n, "custom_tool_call")
        || tg_json_eq(t, n, "function_call_output")
        || tg_json_eq(t, n, "custom_tool_call_output"))
    {
        in->rq->tools = 1;

        /* a tool's output may be parts, files among them */
        output = tg_json_get(item, "output");

        if (tg_json_is_array(output)) {
            tg_json_foreach(output, p) {
                tg_openai_file_ref(in, p);
            }
        }

        return TG_OK;
    }

    /*
     * an item named by its id alone (an "item_reference", whose type is
     * optional) and a compaction of earlier turns are input the provider
     * keeps: their text is not in the body
     */
    if (tg_json_eq(t, n, "item_reference") || tg_json_eq(t, n, "compaction")
        || (!tg_json_is_string(type) && tg_present(item, "id")
            && !tg_present(item, "content")))
    {
        in->rq->stored = 1;
    }

    if (tg_json_eq(t, n, "message")) {
        return tg_openai_parts(in, tg_json_get(item, "content"),
                               "input[].content");
    }

    /* reasoning, web search results ... */
    in->extra_tokens += TG_ESTIMATE_PER_MEDIA;

    return TG_OK;
}


/* Anthropic messages: system, messages[].content blocks */
static int
tg_anthropic_messages(tg_inspect_t *in, tg_json_t *root)
{
    int            rc;
    tg_request_t  *rq;

    rq = in->rq;

    rc = tg_get_model(in, root);
    if (rc != TG_OK) {
        return rc;
    }

    rc = tg_anthropic_blocks(in, tg_json_get(root, "system"), "system");
    if (rc != TG_OK) {
        return rc;
    }

    if (tg_nonempty_array(root, "tools")) {
        rq->tools = 1;
    }

    rc = tg_list(in, root, "messages", "each of \"%s\" must be an object",
                 tg_anthropic_message);
    if (rc != TG_OK) {
        return rc;
    }

    return tg_get_limit(in, root, "max_tokens", &rq->max_output);
}


static int
tg_anthropic_message(tg_inspect_t *in, tg_json_t *m, const char *field)
{
    (void) field;

    in->extra_tokens += TG_ESTIMATE_PER_MESSAGE;

    return tg_anthropic_blocks(in, tg_json_get(m, "content"),
                               "messages[].content");
}


/* a string or an array of content blocks (text, tool_use, tool_result) */
static int
tg_anthropic_blocks(tg_inspect_t *in, tg_json_t *content, const char *field)
{
    return tg_content(in, content, "each block of \"%s\" must be an object",
                      field, tg_anthropic_block);
}


static int
tg_anthropic_block(tg_inspect_t *in, tg_json_t *block, const char *field)
{
    tg_json_t  *type, *source;

    (void) field;

    type = tg_json_get(block, "type");

    if (tg_json_string_is(type, "text")
        || tg_json_string_is(type, "thinking"))
    {
        return TG_OK;
    }

    if (tg_json_string_is(type, "tool_use")
        || tg_json_string_is(type, "server_tool_use"))
    {
        in->rq->tools = 1;
        return TG_OK;
    }

    if (tg_json_string_is(type, "tool_result")) {
        in->rq->tools = 1;
        return tg_anthropic_blocks(in, tg_json_get(block, "content"),
                                   "tool_result.content");
    }

    /* a document the provider fetches or keeps (a URL, a file id) */
    source = tg_json_get(block, "source");

    if (tg_json_string_is(type, "document")
        && (tg_json_string_is(tg_json_get(source, "type"), "url")
            || tg_json_string_is(tg_json_get(source, "type"), "file")))
    {
        in->rq->stored = 1;
    }

    /* image, document, redacted_thinking ... */
    in->extra_tokens += TG_ESTIMATE_PER_MEDIA;

    return TG_OK;
}


/* Gemini accepts both the proto JSON names and the snake_case ones */
static tg_json_t *
tg_get2(tg_json_t *obj, const char *camel, const char *snake)
{
    tg_json_t  *v;

    v = tg_json_get(obj, camel);

    return v ? v : tg_json_get(obj, snake);
}


/* Gemini generateContent: model in the URI, contents[].parts[] */
static int
tg_gemini_generate(tg_inspect_t *in, tg_json_t *root)
{
    int            rc;
    tg_json_t     *v;
    tg_request_t  *rq;

    rq = in->rq;

    if (in->ep->model_len == 0 || in->ep->model_len > TG_MODEL_MAX) {
        return tg_invalid(in, "the URI names no model", NULL);
    }

    rc = tg_uri_model(in);
    if (rc != TG_OK) {
        return rc;
    }

    rq->stream = in->ep->stream;

    v = tg_get2(root, "systemInstruction", "system_instruction");

    if (v != NULL && !tg_json_is_null(v)) {
        rc = tg_gemini_parts(in, v, "systemInstruction");
        if (rc != TG_OK) {
            return rc;
        }
    }

    if (tg_nonempty_array(root, "tools")) {
        rq->tools = 1;
    }

    rc = tg_list(in, root, "contents", "\"%s[]\" must be an object",
                 tg_gemini_content);
    if (rc != TG_OK) {
        return rc;
    }

    if (tg_present(root, "cachedContent")
        || tg_present(root, "cached_content"))
    {
        rq->stored = 1;
    }

    return tg_gemini_config(in, root);
}


static int
tg_gemini_content(tg_inspect_t *in, tg_json_t *c, const char *field)
{
    (void) field;

    in->extra_tokens += TG_ESTIMATE_PER_MESSAGE;

    return tg_gemini_parts(in, c, "contents[]");
}


/* generationConfig: the output limit and the number of candidates */
static int
tg_gemini_config(tg_inspect_t *in, tg_json_t *root)
{
    int         rc;
    tg_json_t  *cfg;

    cfg = tg_get2(root, "generationConfig", "generation_config");

    if (cfg == NULL || tg_json_is_null(cfg)) {
        return TG_OK;
    }

    if (!tg_json_is_object(cfg)) {
        return tg_invalid(in, "\"generationConfig\" must be an object", NULL);
    }

    /* Google reads either name: the larger, if both are given */
    rc = tg_get_limits(in, cfg, "maxOutputTokens", "max_output_tokens",
                       &in->rq->max_output);
    if (rc != TG_OK) {
        return rc;
    }

    return tg_get_limits(in, cfg, "candidateCount", "candidate_count",
                         &in->rq->choices);
}


/* a Content object: {"role": ..., "parts": [{"text": ...} ...]} */
static int
tg_gemini_parts(tg_inspect_t *in, tg_json_t *holder, const char *field)
{
    tg_json_t  *parts;

    if (!tg_json_is_object(holder)) {
        return tg_invalid(in, "\"%s\" must be an object", field);
    }

    parts = tg_json_get(holder, "parts");

    if (parts == NULL || tg_json_is_null(parts)) {
        return TG_OK;
    }

    if (!tg_json_is_array(parts)) {
        return tg_invalid(in, "\"%s.parts\" must be an array", field);
    }

    return tg_each_object(in, parts, "each of \"%s.parts\" must be an object",
                          field, tg_gemini_part);
}


/*
 * A file by URI (a document, audio, a video, or of no type said) is read
 * by the provider and billed as input, however long; an image is bounded
 */
static void
tg_gemini_file_ref(tg_inspect_t *in, tg_json_t *part)
{
    tg_json_t  *file, *mime;

    file = tg_get2(part, "fileData", "file_data");

    if (file == NULL) {
        return;
    }

    mime = tg_get2(file, "mimeType", "mime_type");

    if (!tg_json_is_string(mime) || tg_json_string_length(mime) < 6
        || strncasecmp(tg_json_string_value(mime), "image/", 6) != 0)
    {
        in->rq->stored = 1;
    }
}


static int
tg_gemini_part(tg_inspect_t *in, tg_json_t *part, const char *field)
{
    tg_json_t  *v, *p;

    tg_gemini_file_ref(in, part);

    v = tg_json_get(part, "text");

    if (v != NULL) {
        if (!tg_json_is_string(v)) {
            return tg_invalid(in, "the \"text\" of a part of \"%s\" must"
                              " be a string", field);
        }

        return TG_OK;
    }

    if (tg_get2(part, "functionCall", "function_call")) {
        in->rq->tools = 1;
        return TG_OK;
    }

    v = tg_get2(part, "functionResponse", "function_response");

    if (v != NULL) {
        in->rq->tools = 1;

        /* a function's response may carry parts, files among them */
        v = tg_json_get(v, "parts");

        if (tg_json_is_array(v)) {
            tg_json_foreach(v, p) {
                tg_gemini_file_ref(in, p);
            }
        }

        return TG_OK;
    }

    in->extra_tokens += TG_ESTIMATE_PER_MEDIA;

    return TG_OK;
}
