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


static int tg_invalid(tg_inspect_t *in, const char *fmt, const char *field);
static int tg_get_limits(tg_inspect_t *in, tg_json_t *obj, const char *a,
    const char *b, int64_t *out);
static int tg_get_limit(tg_inspect_t *in, tg_json_t *obj, const char *key,
    int64_t *out);
static int tg_uri_model(tg_inspect_t *in);
static int tg_get_model(tg_inspect_t *in, tg_json_t *root);
static int tg_get_stream(tg_inspect_t *in, tg_json_t *root);
static int tg_nonempty_array(tg_json_t *obj, const char *key);
static int tg_holds_numbers(tg_json_t *a);

static int tg_openai_chat(tg_inspect_t *in, tg_json_t *root);
static int tg_openai_parts(tg_inspect_t *in, tg_json_t *content,
    const char *field);
static int tg_openai_prompt(tg_inspect_t *in, tg_json_t *v, const char *field);
static int tg_openai_responses(tg_inspect_t *in, tg_json_t *root);
static int tg_anthropic_messages(tg_inspect_t *in, tg_json_t *root);
static int tg_anthropic_blocks(tg_inspect_t *in, tg_json_t *content,
    const char *field);
static int tg_gemini_generate(tg_inspect_t *in, tg_json_t *root,
    const tg_endpoint_t *ep, const char *uri);
static int tg_gemini_parts(tg_inspect_t *in, tg_json_t *holder,
    const char *field);
static tg_json_t *tg_get2(tg_json_t *obj, const char *camel, const char *snake);


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

    if (len == 0) {
        return tg_invalid(&in, "the request body is empty", NULL);
    }

    root = tg_json_parse(&doc, body, len,
                         TG_JSON_REJECT_DUPLICATES | TG_JSON_ALLOW_NUL
                         | TG_JSON_BOUNDED);
    if (root == NULL) {
        tg_json_free(&doc);

        if (doc.nomem) {
            return TG_NOMEM;
        }

        if (strncmp(doc.error, "too many values", 15) == 0) {
            /* the parser's memory is bounded by the body's size */
            return tg_invalid(&in, "the request body holds more JSON values"
                              " than one per 4 bytes", NULL);
        }

        snprintf(rq->error, sizeof(rq->error),
                 "the request body is not valid JSON: %s at byte %zu",
                 doc.error, doc.position);
        return TG_INVALID;
    }

    if (!tg_json_is_object(root)) {
        tg_json_free(&doc);
        return tg_invalid(&in, "the request body must be a JSON object",
                          NULL);
    }

    switch (ep->api) {

    case TG_API_CHAT:
        rc = tg_openai_chat(&in, root);
        break;

    case TG_API_COMPLETIONS:
        rc = tg_get_model(&in, root);
        if (rc == TG_OK) {
            rc = tg_openai_prompt(&in, tg_json_get(root, "prompt"),
                                  "prompt");
        }
        if (rc == TG_OK) {
            rc = tg_get_limit(&in, root, "max_tokens", &rq->max_output);
        }
        if (rc == TG_OK) {
            /* best_of completions are generated and billed, n returned */
            rc = tg_get_limits(&in, root, "n", "best_of", &rq->choices);
        }
        break;

    case TG_API_RESPONSES:
        rc = tg_openai_responses(&in, root);
        break;

    case TG_API_EMBEDDINGS:
        rq->embeddings = 1;
        rq->max_output = 0;
        rc = tg_get_model(&in, root);
        if (rc == TG_OK) {
            rc = tg_openai_prompt(&in, tg_json_get(root, "input"),
                                  "input");
        }
        break;

    case TG_API_MESSAGES:
        rc = tg_anthropic_messages(&in, root);
        break;

    case TG_API_GENERATE:
        rc = tg_gemini_generate(&in, root, ep, uri);
        break;

    default:
        rc = tg_invalid(&in, "not a generation request", NULL);
        break;
    }

    if (rc == TG_OK && ep->api != TG_API_GENERATE
        && ep->api != TG_API_EMBEDDINGS)
    {
        rc = tg_get_stream(&in, root);
    }

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
    double   d;
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


static int
tg_uri_model(tg_inspect_t *in)
{
    size_t         i;
    const char    *m;
    tg_request_t  *rq;

    rq = in->rq;
    m = in->uri + in->ep->model_off;

    if (in->ep->model_len > TG_MODEL_MAX) {
        return tg_invalid(in, "the model in the URI must be at most 256"
                          " bytes", NULL);
    }

    for (i = 0; i < in->ep->model_len; i++) {
        if (m[i] <= ' ' || m[i] > '~') {
            return tg_invalid(in, "the model in the URI must be printable"
                              " ASCII", NULL);
        }
    }

    rq->model = malloc(in->ep->model_len + 1);
    if (rq->model == NULL) {
        in->nomem = 1;
        return TG_NOMEM;
    }

    memcpy(rq->model, m, in->ep->model_len);
    rq->model[in->ep->model_len] = '\0';
    rq->model_len = in->ep->model_len;

    return TG_OK;
}


static int
tg_get_model(tg_inspect_t *in, tg_json_t *root)
{
    tg_json_t     *v;
    size_t         len;
    tg_request_t  *rq;

    rq = in->rq;

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

    len = tg_json_string_length(v);

    if (!tg_request_model_valid(tg_json_string_value(v), len)) {
        return tg_invalid(in, "\"model\" must be a non-empty name of at most"
                          " 256 bytes of printable ASCII, without spaces",
                          NULL);
    }

    rq->model = malloc(len + 1);
    if (rq->model == NULL) {
        in->nomem = 1;
        return TG_NOMEM;
    }

    memcpy(rq->model, tg_json_string_value(v), len + 1);
    rq->model_len = len;

    return TG_OK;
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


static int
tg_nonempty_array(tg_json_t *obj, const char *key)
{
    tg_json_t  *v;

    v = tg_json_get(obj, key);

    return tg_json_is_array(v) && tg_json_array_size(v) > 0;
}


/* numbers of an array have no node (TG_JSON_BOUNDED): any there? */
static int
tg_holds_numbers(tg_json_t *a)
{
    size_t      n;
    tg_json_t  *v;

    n = 0;

    tg_json_foreach(a, v) {
        n++;
    }

    return n != tg_json_array_size(a);
}


/* OpenAI chat completions: messages[].content, tool calls and results */
static int
tg_openai_chat(tg_inspect_t *in, tg_json_t *root)
{
    int            rc;
    size_t         i;
    tg_json_t     *messages, *m, *role, *calls;
    tg_request_t  *rq;

    rq = in->rq;

    rc = tg_get_model(in, root);
    if (rc != TG_OK) {
        return rc;
    }

    messages = tg_json_get(root, "messages");

    if (!tg_json_is_array(messages)) {
        return tg_invalid(in, "\"messages\" must be an array", NULL);
    }

    if (tg_nonempty_array(root, "tools")
        || tg_nonempty_array(root, "functions"))
    {
        rq->tools = 1;
    }

    if (tg_holds_numbers(messages)) {
        return tg_invalid(in, "each of \"messages\" must be an object", NULL);
    }

    tg_json_array_foreach(messages, i, m) {

        if (!tg_json_is_object(m)) {
            return tg_invalid(in, "each of \"messages\" must be an object",
                              NULL);
        }

        in->extra_tokens += TG_ESTIMATE_PER_MESSAGE;

        role = tg_json_get(m, "role");

        if (tg_json_is_string(role)
            && (strcmp(tg_json_string_value(role), "tool") == 0
                || strcmp(tg_json_string_value(role), "function") == 0))
        {
            rq->tools = 1;
        }

        rc = tg_openai_parts(in, tg_json_get(m, "content"),
                             "messages[].content");
        if (rc != TG_OK) {
            return rc;
        }

        calls = tg_json_get(m, "tool_calls");

        if (tg_json_is_array(calls) && tg_json_array_size(calls) > 0) {
            rq->tools = 1;
        }

        if (tg_json_get(m, "function_call") != NULL) {
            rq->tools = 1;
        }
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

    return tg_get_limits(in, root, "n", "best_of", &rq->choices);
}


/*
 * OpenAI content: a string, null, or an array of parts: text parts of any
 * name ("text", "input_text", "output_text") carry "text"; other parts are
 * media, reserved at a flat rate.
 */
static int
tg_openai_parts(tg_inspect_t *in, tg_json_t *content, const char *field)
{
    size_t   i;
    tg_json_t  *part, *text;

    if (content == NULL || tg_json_is_null(content)) {
        return TG_OK;
    }

    if (tg_json_is_string(content)) {
        return TG_OK;
    }

    if (!tg_json_is_array(content)) {
        return tg_invalid(in, "\"%s\" must be a string or an array", field);
    }

    if (tg_holds_numbers(content)) {
        return tg_invalid(in, "each part of \"%s\" must be an object", field);
    }

    tg_json_array_foreach(content, i, part) {

        if (!tg_json_is_object(part)) {
            return tg_invalid(in, "each part of \"%s\" must be an object",
                              field);
        }

        text = tg_json_get(part, "text");

        if (text == NULL) {
            text = tg_json_get(part, "refusal");
        }

        if (text == NULL) {
            in->extra_tokens += TG_ESTIMATE_PER_MEDIA;
            continue;
        }

        if (!tg_json_is_string(text)) {
            return tg_invalid(in, "the \"text\" of a part of \"%s\" must be"
                              " a string", field);
        }
    }

    return TG_OK;
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
    size_t         i;
    tg_json_t     *input, *item, *type, *v;
    const char    *t;
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

        if (tg_holds_numbers(input)) {
            return tg_invalid(in, "each item of \"input\" must be an"
                              " object", NULL);
        }

        tg_json_array_foreach(input, i, item) {

            if (!tg_json_is_object(item)) {
                return tg_invalid(in, "each item of \"input\" must be an"
                                  " object", NULL);
            }

            in->extra_tokens += TG_ESTIMATE_PER_MESSAGE;

            type = tg_json_get(item, "type");
            t = tg_json_is_string(type) ? tg_json_string_value(type) : "message";

            if (strcmp(t, "function_call") == 0
                || strcmp(t, "custom_tool_call") == 0
                || strcmp(t, "function_call_output") == 0
                || strcmp(t, "custom_tool_call_output") == 0)
            {
                rq->tools = 1;
                rc = TG_OK;

            } else if (strcmp(t, "message") == 0) {
                rc = tg_openai_parts(in, tg_json_get(item, "content"),
                                     "input[].content");

            } else {
                /* reasoning, web search results ... */
                in->extra_tokens += TG_ESTIMATE_PER_MEDIA;
                rc = TG_OK;
            }

            if (rc != TG_OK) {
                return rc;
            }
        }

    } else if (input != NULL && !tg_json_is_null(input)) {
        return tg_invalid(in, "\"input\" must be a string or an array",
                          NULL);
    }

    /* answered later: a cut first answer must not say otherwise */
    rq->background = tg_json_is_true(tg_json_get(root, "background"));

    return tg_get_limit(in, root, "max_output_tokens", &rq->max_output);
}


/* Anthropic messages: system, messages[].content blocks */
static int
tg_anthropic_messages(tg_inspect_t *in, tg_json_t *root)
{
    int            rc;
    size_t         i;
    tg_json_t     *messages, *m;
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

    messages = tg_json_get(root, "messages");

    if (!tg_json_is_array(messages)) {
        return tg_invalid(in, "\"messages\" must be an array", NULL);
    }

    if (tg_holds_numbers(messages)) {
        return tg_invalid(in, "each of \"messages\" must be an object", NULL);
    }

    tg_json_array_foreach(messages, i, m) {

        if (!tg_json_is_object(m)) {
            return tg_invalid(in, "each of \"messages\" must be an object",
                              NULL);
        }

        in->extra_tokens += TG_ESTIMATE_PER_MESSAGE;

        rc = tg_anthropic_blocks(in, tg_json_get(m, "content"),
                                 "messages[].content");
        if (rc != TG_OK) {
            return rc;
        }
    }

    return tg_get_limit(in, root, "max_tokens", &rq->max_output);
}


/* a string or an array of content blocks (text, tool_use, tool_result) */
static int
tg_anthropic_blocks(tg_inspect_t *in, tg_json_t *content, const char *field)
{
    int          rc;
    size_t       i;
    tg_json_t      *block, *type;
    const char  *t;

    if (content == NULL || tg_json_is_null(content)) {
        return TG_OK;
    }

    if (tg_json_is_string(content)) {
        return TG_OK;
    }

    if (!tg_json_is_array(content)) {
        return tg_invalid(in, "\"%s\" must be a string or an array", field);
    }

    if (tg_holds_numbers(content)) {
        return tg_invalid(in, "each block of \"%s\" must be an object", field);
    }

    tg_json_array_foreach(content, i, block) {

        if (!tg_json_is_object(block)) {
            return tg_invalid(in, "each block of \"%s\" must be an object",
                              field);
        }

        type = tg_json_get(block, "type");
        t = tg_json_is_string(type) ? tg_json_string_value(type) : "";

        if (strcmp(t, "text") == 0 || strcmp(t, "thinking") == 0) {
            rc = TG_OK;

        } else if (strcmp(t, "tool_use") == 0
                   || strcmp(t, "server_tool_use") == 0)
        {
            in->rq->tools = 1;
            rc = TG_OK;

        } else if (strcmp(t, "tool_result") == 0) {
            in->rq->tools = 1;
            rc = tg_anthropic_blocks(in, tg_json_get(block, "content"),
                                     "tool_result.content");

        } else {
            /* image, document, redacted_thinking ... */
            in->extra_tokens += TG_ESTIMATE_PER_MEDIA;
            rc = TG_OK;
        }

        if (rc != TG_OK) {
            return rc;
        }
    }

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
tg_gemini_generate(tg_inspect_t *in, tg_json_t *root, const tg_endpoint_t *ep,
    const char *uri)
{
    int            rc;
    size_t         i;
    tg_json_t     *contents, *c, *cfg, *v;
    tg_request_t  *rq;

    rq = in->rq;

    if (ep->model_len == 0 || ep->model_len > TG_MODEL_MAX) {
        return tg_invalid(in, "the URI names no model", NULL);
    }

    if (!tg_request_model_valid(uri + ep->model_off, ep->model_len)) {
        return tg_invalid(in, "the model in the URI must be printable"
                          " ASCII", NULL);
    }

    rq->model = malloc(ep->model_len + 1);
    if (rq->model == NULL) {
        in->nomem = 1;
        return TG_NOMEM;
    }

    memcpy(rq->model, uri + ep->model_off, ep->model_len);
    rq->model[ep->model_len] = '\0';
    rq->model_len = ep->model_len;
    rq->stream = ep->stream;

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

    contents = tg_json_get(root, "contents");

    if (!tg_json_is_array(contents)) {
        return tg_invalid(in, "\"contents\" must be an array", NULL);
    }

    if (tg_holds_numbers(contents)) {
        return tg_invalid(in, "\"contents[]\" must be an object", NULL);
    }

    tg_json_array_foreach(contents, i, c) {
        in->extra_tokens += TG_ESTIMATE_PER_MESSAGE;

        rc = tg_gemini_parts(in, c, "contents[]");
        if (rc != TG_OK) {
            return rc;
        }
    }

    cfg = tg_get2(root, "generationConfig", "generation_config");

    if (cfg == NULL || tg_json_is_null(cfg)) {
        return TG_OK;
    }

    if (!tg_json_is_object(cfg)) {
        return tg_invalid(in, "\"generationConfig\" must be an object", NULL);
    }

    /* Google reads either name: the larger, if both are given */
    rc = tg_get_limits(in, cfg, "maxOutputTokens", "max_output_tokens",
                       &rq->max_output);
    if (rc != TG_OK) {
        return rc;
    }

    return tg_get_limits(in, cfg, "candidateCount", "candidate_count",
                         &rq->choices);
}


/* a Content object: {"role": ..., "parts": [{"text": ...} ...]} */
static int
tg_gemini_parts(tg_inspect_t *in, tg_json_t *holder, const char *field)
{
    int      rc;
    size_t   i;
    tg_json_t  *parts, *part, *v;

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

    if (tg_holds_numbers(parts)) {
        return tg_invalid(in, "each of \"%s.parts\" must be an object", field);
    }

    tg_json_array_foreach(parts, i, part) {

        if (!tg_json_is_object(part)) {
            return tg_invalid(in, "each of \"%s.parts\" must be an object",
                              field);
        }

        v = tg_json_get(part, "text");

        if (v != NULL) {
            if (!tg_json_is_string(v)) {
                return tg_invalid(in, "the \"text\" of a part of \"%s\" must"
                                  " be a string", field);
            }

            rc = TG_OK;

        } else if (tg_get2(part, "functionCall", "function_call")
                   || tg_get2(part, "functionResponse", "function_response"))
        {
            in->rq->tools = 1;
            rc = TG_OK;

        } else {
            in->extra_tokens += TG_ESTIMATE_PER_MEDIA;
            rc = TG_OK;
        }

        if (rc != TG_OK) {
            return rc;
        }
    }

    return TG_OK;
}
