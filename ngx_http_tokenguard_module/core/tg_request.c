/*
 * Request inspection per provider dialect.
 *
 * The body is parsed with jansson, duplicate keys rejected: an upstream
 * that reads the first "model" while we read the last would be a policy
 * bypass.  Integers are decoded as reals so that a huge "seed" or
 * "logit_bias" value the provider accepts does not make us refuse; the
 * fields we use are checked to be integral and in range.
 *
 * Errors name the field and never quote prompt text.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tg_estimate.h"
#include "tg_request.h"


/* reserved for an image, audio or file part whose size we cannot see */
#define TG_ESTIMATE_PER_MEDIA  1000


typedef struct {
    tg_request_t  *rq;
    int64_t        extra_tokens;    /* format overhead, media, token ids */
    int            nomem;
} tg_inspect_t;


static int tg_invalid(tg_inspect_t *in, const char *fmt, const char *field);
static int tg_text(tg_inspect_t *in, const char *s, size_t len);
static int tg_json_text(tg_inspect_t *in, json_t *v);
static int tg_get_limit(tg_inspect_t *in, json_t *obj, const char *key,
    int64_t *out);
static int tg_get_model(tg_inspect_t *in, json_t *root);
static int tg_get_stream(tg_inspect_t *in, json_t *root);
static int tg_nonempty_array(json_t *obj, const char *key);

static int tg_openai_chat(tg_inspect_t *in, json_t *root);
static int tg_openai_parts(tg_inspect_t *in, json_t *content,
    const char *field);
static int tg_openai_prompt(tg_inspect_t *in, json_t *v, const char *field);
static int tg_openai_responses(tg_inspect_t *in, json_t *root);
static int tg_anthropic_messages(tg_inspect_t *in, json_t *root);
static int tg_anthropic_blocks(tg_inspect_t *in, json_t *content,
    const char *field);
static int tg_gemini_generate(tg_inspect_t *in, json_t *root,
    const tg_endpoint_t *ep, const char *uri);
static int tg_gemini_parts(tg_inspect_t *in, json_t *holder,
    const char *field);
static json_t *tg_get2(json_t *obj, const char *camel, const char *snake);


int
tg_request_inspect(const tg_endpoint_t *ep, const char *uri,
    const char *body, size_t len, tg_request_t *rq)
{
    int            rc;
    char          *near;
    json_t        *root;
    tg_inspect_t   in;
    json_error_t   err;

    memset(rq, 0, sizeof(tg_request_t));
    rq->max_output = -1;
    rq->choices = 1;

    in.rq = rq;
    in.extra_tokens = 0;
    in.nomem = 0;

    if (len == 0) {
        return tg_invalid(&in, "the request body is empty", NULL);
    }

    root = json_loadb(body, len,
                      JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL
                      | JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
    if (root == NULL) {
        /* jansson quotes the input "near '...'": that may be prompt text */
        near = strstr(err.text, " near '");
        if (near != NULL) {
            *near = '\0';
        }

        snprintf(rq->error, sizeof(rq->error),
                 "the request body is not valid JSON: %.80s at byte %d",
                 err.text, err.position);
        return TG_INVALID;
    }

    if (!json_is_object(root)) {
        json_decref(root);
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
            rc = tg_openai_prompt(&in, json_object_get(root, "prompt"),
                                  "prompt");
        }
        if (rc == TG_OK) {
            rc = tg_get_limit(&in, root, "max_tokens", &rq->max_output);
        }
        if (rc == TG_OK) {
            rc = tg_get_limit(&in, root, "n", &rq->choices);
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
            rc = tg_openai_prompt(&in, json_object_get(root, "input"),
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

    json_decref(root);

    if (in.nomem) {
        return TG_NOMEM;
    }

    if (rc != TG_OK) {
        return rc;
    }

    rq->prompt_tokens = tg_estimate_text_tokens(rq->prompt, rq->prompt_len)
                        + in.extra_tokens;

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


/* appends one text part to the prompt, parts separated by a newline */
static int
tg_text(tg_inspect_t *in, const char *s, size_t len)
{
    char          *p;
    size_t         need, size;
    tg_request_t  *rq;

    rq = in->rq;

    if (len == 0) {
        return TG_OK;
    }

    need = rq->prompt_len + len + 2;

    if (need > rq->prompt_size) {
        size = rq->prompt_size ? rq->prompt_size : 1024;

        while (size < need) {
            size *= 2;
        }

        p = realloc(rq->prompt, size);
        if (p == NULL) {
            in->nomem = 1;
            return TG_NOMEM;
        }

        rq->prompt = p;
        rq->prompt_size = size;
    }

    if (rq->prompt_len) {
        rq->prompt[rq->prompt_len++] = '\n';
    }

    memcpy(rq->prompt + rq->prompt_len, s, len);
    rq->prompt_len += len;
    rq->prompt[rq->prompt_len] = '\0';

    return TG_OK;
}


/* a string is text; anything else (tool arguments) counts serialised */
static int
tg_json_text(tg_inspect_t *in, json_t *v)
{
    int    rc;
    char  *s;

    if (v == NULL || json_is_null(v)) {
        return TG_OK;
    }

    if (json_is_string(v)) {
        return tg_text(in, json_string_value(v), json_string_length(v));
    }

    s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL) {
        in->nomem = 1;
        return TG_NOMEM;
    }

    rc = tg_text(in, s, strlen(s));
    free(s);

    return rc;
}


/* an optional non-negative integer field; absent or null leaves *out */
static int
tg_get_limit(tg_inspect_t *in, json_t *obj, const char *key, int64_t *out)
{
    double   d;
    json_t  *v;

    v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v)) {
        return TG_OK;
    }

    if (!json_is_number(v)) {
        return tg_invalid(in, "\"%s\" must be an integer", key);
    }

    d = json_number_value(v);

    if (d < 0 || d > 1e12 || d != (double) (int64_t) d) {
        return tg_invalid(in, "\"%s\" must be a non-negative integer", key);
    }

    *out = (int64_t) d;

    return TG_OK;
}


static int
tg_get_model(tg_inspect_t *in, json_t *root)
{
    json_t        *v;
    size_t         len;
    tg_request_t  *rq;

    rq = in->rq;
    v = json_object_get(root, "model");

    if (v == NULL) {
        return tg_invalid(in, "the request names no \"model\"", NULL);
    }

    if (!json_is_string(v)) {
        return tg_invalid(in, "\"model\" must be a string", NULL);
    }

    len = json_string_length(v);

    if (len == 0 || len > TG_MODEL_MAX
        || memchr(json_string_value(v), '\0', len) != NULL)
    {
        return tg_invalid(in, "\"model\" must be a non-empty name of at most"
                          " 256 bytes", NULL);
    }

    rq->model = malloc(len + 1);
    if (rq->model == NULL) {
        in->nomem = 1;
        return TG_NOMEM;
    }

    memcpy(rq->model, json_string_value(v), len + 1);
    rq->model_len = len;

    return TG_OK;
}


static int
tg_get_stream(tg_inspect_t *in, json_t *root)
{
    json_t  *v;

    v = json_object_get(root, "stream");

    if (v == NULL || json_is_null(v)) {
        return TG_OK;
    }

    if (!json_is_boolean(v)) {
        return tg_invalid(in, "\"stream\" must be true or false", NULL);
    }

    in->rq->stream = json_is_true(v);

    return TG_OK;
}


static int
tg_nonempty_array(json_t *obj, const char *key)
{
    json_t  *v;

    v = json_object_get(obj, key);

    return json_is_array(v) && json_array_size(v) > 0;
}


/* OpenAI chat completions: messages[].content, tool calls and results */
static int
tg_openai_chat(tg_inspect_t *in, json_t *root)
{
    int            rc;
    size_t         i, j;
    json_t        *messages, *m, *role, *calls, *call;
    tg_request_t  *rq;

    rq = in->rq;

    rc = tg_get_model(in, root);
    if (rc != TG_OK) {
        return rc;
    }

    messages = json_object_get(root, "messages");

    if (!json_is_array(messages)) {
        return tg_invalid(in, "\"messages\" must be an array", NULL);
    }

    if (tg_nonempty_array(root, "tools")
        || tg_nonempty_array(root, "functions"))
    {
        rq->tools = 1;
    }

    json_array_foreach(messages, i, m) {

        if (!json_is_object(m)) {
            return tg_invalid(in, "each of \"messages\" must be an object",
                              NULL);
        }

        in->extra_tokens += TG_ESTIMATE_PER_MESSAGE;

        role = json_object_get(m, "role");

        if (json_is_string(role)
            && (strcmp(json_string_value(role), "tool") == 0
                || strcmp(json_string_value(role), "function") == 0))
        {
            rq->tools = 1;
        }

        rc = tg_openai_parts(in, json_object_get(m, "content"),
                             "messages[].content");
        if (rc != TG_OK) {
            return rc;
        }

        calls = json_object_get(m, "tool_calls");

        if (json_is_array(calls)) {
            json_array_foreach(calls, j, call) {
                rq->tools = 1;
                rc = tg_json_text(in, json_object_get(
                                      json_object_get(call, "function"),
                                      "arguments"));
                if (rc != TG_OK) {
                    return rc;
                }
            }
        }

        if (json_object_get(m, "function_call") != NULL) {
            rq->tools = 1;
        }
    }

    rc = tg_get_limit(in, root, "max_tokens", &rq->max_output);
    if (rc != TG_OK) {
        return rc;
    }

    /* the newer name wins when both are given */
    rc = tg_get_limit(in, root, "max_completion_tokens", &rq->max_output);
    if (rc != TG_OK) {
        return rc;
    }

    return tg_get_limit(in, root, "n", &rq->choices);
}


/*
 * OpenAI content: a string, null, or an array of parts: text parts of any
 * name ("text", "input_text", "output_text") carry "text"; other parts are
 * media, reserved at a flat rate.
 */
static int
tg_openai_parts(tg_inspect_t *in, json_t *content, const char *field)
{
    int      rc;
    size_t   i;
    json_t  *part, *text;

    if (content == NULL || json_is_null(content)) {
        return TG_OK;
    }

    if (json_is_string(content)) {
        return tg_json_text(in, content);
    }

    if (!json_is_array(content)) {
        return tg_invalid(in, "\"%s\" must be a string or an array", field);
    }

    json_array_foreach(content, i, part) {

        if (!json_is_object(part)) {
            return tg_invalid(in, "each part of \"%s\" must be an object",
                              field);
        }

        text = json_object_get(part, "text");

        if (text == NULL) {
            text = json_object_get(part, "refusal");
        }

        if (text == NULL) {
            in->extra_tokens += TG_ESTIMATE_PER_MEDIA;
            continue;
        }

        if (!json_is_string(text)) {
            return tg_invalid(in, "the \"text\" of a part of \"%s\" must be"
                              " a string", field);
        }

        rc = tg_json_text(in, text);
        if (rc != TG_OK) {
            return rc;
        }
    }

    return TG_OK;
}


/*
 * completions "prompt" and embeddings "input": a string, an array of
 * strings, an array of token ids, or an array of arrays of token ids
 */
static int
tg_openai_prompt(tg_inspect_t *in, json_t *v, const char *field)
{
    int      rc;
    size_t   i;
    json_t  *e;

    if (v == NULL) {
        return tg_invalid(in, "the request has no \"%s\"", field);
    }

    if (json_is_string(v)) {
        return tg_json_text(in, v);
    }

    if (!json_is_array(v)) {
        return tg_invalid(in, "\"%s\" must be a string or an array", field);
    }

    json_array_foreach(v, i, e) {

        if (json_is_string(e)) {
            rc = tg_json_text(in, e);
            if (rc != TG_OK) {
                return rc;
            }

        } else if (json_is_number(e)) {
            in->extra_tokens++;

        } else if (json_is_array(e)) {
            in->extra_tokens += json_array_size(e);

        } else {
            return tg_invalid(in, "\"%s\" must hold strings or token ids",
                              field);
        }
    }

    return TG_OK;
}


/* OpenAI Responses: instructions and input (a string or items) */
static int
tg_openai_responses(tg_inspect_t *in, json_t *root)
{
    int            rc;
    size_t         i;
    json_t        *input, *item, *type, *v;
    const char    *t;
    tg_request_t  *rq;

    rq = in->rq;

    rc = tg_get_model(in, root);
    if (rc != TG_OK) {
        return rc;
    }

    v = json_object_get(root, "instructions");

    if (v != NULL && !json_is_null(v) && !json_is_string(v)) {
        return tg_invalid(in, "\"instructions\" must be a string", NULL);
    }

    rc = tg_json_text(in, v);
    if (rc != TG_OK) {
        return rc;
    }

    if (tg_nonempty_array(root, "tools")) {
        rq->tools = 1;
    }

    input = json_object_get(root, "input");

    if (json_is_string(input)) {
        in->extra_tokens += TG_ESTIMATE_PER_MESSAGE;
        rc = tg_json_text(in, input);
        if (rc != TG_OK) {
            return rc;
        }

    } else if (json_is_array(input)) {

        json_array_foreach(input, i, item) {

            if (!json_is_object(item)) {
                return tg_invalid(in, "each item of \"input\" must be an"
                                  " object", NULL);
            }

            in->extra_tokens += TG_ESTIMATE_PER_MESSAGE;

            type = json_object_get(item, "type");
            t = json_is_string(type) ? json_string_value(type) : "message";

            if (strcmp(t, "function_call") == 0
                || strcmp(t, "custom_tool_call") == 0)
            {
                rq->tools = 1;
                rc = tg_json_text(in, json_object_get(item, "arguments"));

            } else if (strcmp(t, "function_call_output") == 0
                       || strcmp(t, "custom_tool_call_output") == 0)
            {
                rq->tools = 1;
                rc = tg_json_text(in, json_object_get(item, "output"));

            } else if (strcmp(t, "message") == 0) {
                rc = tg_openai_parts(in, json_object_get(item, "content"),
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

    } else if (input != NULL && !json_is_null(input)) {
        return tg_invalid(in, "\"input\" must be a string or an array",
                          NULL);
    }

    return tg_get_limit(in, root, "max_output_tokens", &rq->max_output);
}


/* Anthropic messages: system, messages[].content blocks */
static int
tg_anthropic_messages(tg_inspect_t *in, json_t *root)
{
    int            rc;
    size_t         i;
    json_t        *messages, *m;
    tg_request_t  *rq;

    rq = in->rq;

    rc = tg_get_model(in, root);
    if (rc != TG_OK) {
        return rc;
    }

    rc = tg_anthropic_blocks(in, json_object_get(root, "system"), "system");
    if (rc != TG_OK) {
        return rc;
    }

    if (tg_nonempty_array(root, "tools")) {
        rq->tools = 1;
    }

    messages = json_object_get(root, "messages");

    if (!json_is_array(messages)) {
        return tg_invalid(in, "\"messages\" must be an array", NULL);
    }

    json_array_foreach(messages, i, m) {

        if (!json_is_object(m)) {
            return tg_invalid(in, "each of \"messages\" must be an object",
                              NULL);
        }

        in->extra_tokens += TG_ESTIMATE_PER_MESSAGE;

        rc = tg_anthropic_blocks(in, json_object_get(m, "content"),
                                 "messages[].content");
        if (rc != TG_OK) {
            return rc;
        }
    }

    return tg_get_limit(in, root, "max_tokens", &rq->max_output);
}


/* a string or an array of content blocks (text, tool_use, tool_result) */
static int
tg_anthropic_blocks(tg_inspect_t *in, json_t *content, const char *field)
{
    int          rc;
    size_t       i;
    json_t      *block, *type;
    const char  *t;

    if (content == NULL || json_is_null(content)) {
        return TG_OK;
    }

    if (json_is_string(content)) {
        return tg_json_text(in, content);
    }

    if (!json_is_array(content)) {
        return tg_invalid(in, "\"%s\" must be a string or an array", field);
    }

    json_array_foreach(content, i, block) {

        if (!json_is_object(block)) {
            return tg_invalid(in, "each block of \"%s\" must be an object",
                              field);
        }

        type = json_object_get(block, "type");
        t = json_is_string(type) ? json_string_value(type) : "";

        if (strcmp(t, "text") == 0) {
            rc = tg_json_text(in, json_object_get(block, "text"));

        } else if (strcmp(t, "thinking") == 0) {
            rc = tg_json_text(in, json_object_get(block, "thinking"));

        } else if (strcmp(t, "tool_use") == 0
                   || strcmp(t, "server_tool_use") == 0)
        {
            in->rq->tools = 1;
            rc = tg_json_text(in, json_object_get(block, "input"));

        } else if (strcmp(t, "tool_result") == 0) {
            in->rq->tools = 1;
            rc = tg_anthropic_blocks(in, json_object_get(block, "content"),
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
static json_t *
tg_get2(json_t *obj, const char *camel, const char *snake)
{
    json_t  *v;

    v = json_object_get(obj, camel);

    return v ? v : json_object_get(obj, snake);
}


/* Gemini generateContent: model in the URI, contents[].parts[] */
static int
tg_gemini_generate(tg_inspect_t *in, json_t *root, const tg_endpoint_t *ep,
    const char *uri)
{
    int            rc;
    size_t         i;
    json_t        *contents, *c, *cfg, *v;
    tg_request_t  *rq;

    rq = in->rq;

    if (ep->model_len == 0 || ep->model_len > TG_MODEL_MAX) {
        return tg_invalid(in, "the URI names no model", NULL);
    }

    for (i = 0; i < ep->model_len; i++) {
        if (uri[ep->model_off + i] <= ' ' || uri[ep->model_off + i] > '~') {
            return tg_invalid(in, "the model in the URI must be printable"
                              " ASCII", NULL);
        }
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

    if (v != NULL && !json_is_null(v)) {
        rc = tg_gemini_parts(in, v, "systemInstruction");
        if (rc != TG_OK) {
            return rc;
        }
    }

    if (tg_nonempty_array(root, "tools")) {
        rq->tools = 1;
    }

    contents = json_object_get(root, "contents");

    if (!json_is_array(contents)) {
        return tg_invalid(in, "\"contents\" must be an array", NULL);
    }

    json_array_foreach(contents, i, c) {
        in->extra_tokens += TG_ESTIMATE_PER_MESSAGE;

        rc = tg_gemini_parts(in, c, "contents[]");
        if (rc != TG_OK) {
            return rc;
        }
    }

    cfg = tg_get2(root, "generationConfig", "generation_config");

    if (cfg == NULL || json_is_null(cfg)) {
        return TG_OK;
    }

    if (!json_is_object(cfg)) {
        return tg_invalid(in, "\"generationConfig\" must be an object", NULL);
    }

    rc = tg_get_limit(in, cfg,
                      json_object_get(cfg, "maxOutputTokens")
                      ? "maxOutputTokens" : "max_output_tokens",
                      &rq->max_output);
    if (rc != TG_OK) {
        return rc;
    }

    return tg_get_limit(in, cfg,
                        json_object_get(cfg, "candidateCount")
                        ? "candidateCount" : "candidate_count",
                        &rq->choices);
}


/* a Content object: {"role": ..., "parts": [{"text": ...} ...]} */
static int
tg_gemini_parts(tg_inspect_t *in, json_t *holder, const char *field)
{
    int      rc;
    size_t   i;
    json_t  *parts, *part, *v;

    if (!json_is_object(holder)) {
        return tg_invalid(in, "\"%s\" must be an object", field);
    }

    parts = json_object_get(holder, "parts");

    if (parts == NULL || json_is_null(parts)) {
        return TG_OK;
    }

    if (!json_is_array(parts)) {
        return tg_invalid(in, "\"%s.parts\" must be an array", field);
    }

    json_array_foreach(parts, i, part) {

        if (!json_is_object(part)) {
            return tg_invalid(in, "each of \"%s.parts\" must be an object",
                              field);
        }

        v = json_object_get(part, "text");

        if (v != NULL) {
            if (!json_is_string(v)) {
                return tg_invalid(in, "the \"text\" of a part of \"%s\" must"
                                  " be a string", field);
            }

            rc = tg_json_text(in, v);

        } else if ((v = tg_get2(part, "functionCall", "function_call"))) {
            in->rq->tools = 1;
            rc = tg_json_text(in, json_object_get(v, "args"));

        } else if ((v = tg_get2(part, "functionResponse",
                                "function_response")))
        {
            in->rq->tools = 1;
            rc = tg_json_text(in, json_object_get(v, "response"));

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
