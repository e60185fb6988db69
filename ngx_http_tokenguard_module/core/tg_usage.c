/*
 * Usage per dialect:
 *
 *   OpenAI chat, completions, embeddings: usage.prompt_tokens
 *     (prompt_tokens_details: cached_tokens, cache_write_tokens,
 *     audio_tokens), usage.completion_tokens (completion_tokens_details:
 *     reasoning_tokens and audio_tokens are part of it); streams: the
 *     final chunk, with "usage" and no choices, or choices with a
 *     finish_reason.
 *   OpenAI Responses: usage.input_tokens (input_tokens_details:
 *     cached_tokens, cache_write_tokens), usage.output_tokens
 *     (output_tokens_details.reasoning_tokens); streams: response.usage
 *     of response.completed (or .incomplete / .failed).
 *   Anthropic: usage.input_tokens + cache_read_input_tokens +
 *     cache_creation_input_tokens (cache_creation: ephemeral_5m_ and
 *     ephemeral_1h_input_tokens), usage.output_tokens,
 *     server_tool_use.web_search_requests; streams: message.usage of
 *     message_start, then the cumulative usage of message_delta.
 *   Gemini: usageMetadata.promptTokenCount (+ toolUsePromptTokenCount;
 *     cachedContentTokenCount of it cached; the AUDIO, IMAGE, DOCUMENT and
 *     VIDEO parts of promptTokensDetails, toolUsePromptTokensDetails,
 *     cacheTokensDetails), candidatesTokenCount + thoughtsTokenCount
 *     (thoughts are billed as output; candidatesTokensDetails' parts);
 *     streams: the usageMetadata of the last chunk, the one with a
 *     finishReason (or no candidates).
 *
 * The same fields as @pydantic/genai-prices' extractUsage reads.  Only
 * the provider's own fields count: the usage at the top level of a
 * complete body, or of a stream's final event of the right type, found by
 * a streaming scan (tg_jscan.c) that keeps nothing else.  A body cut
 * short, or a tail of one, is never believed: what a client wrote (an
 * echoed prompt, tool schemas) can look like usage there.
 */

#include <stddef.h>
#include <string.h>

#include "tg_json.h"
#include "tg_usage.h"


/* more is not a token count, and would overflow the sums below */
#define TG_USAGE_MAX  1e12

/* a usage object is far smaller; a larger one is not believed */
#define TG_USAGE_CAP  8192

/* a response's model name as a JSON string, quotes included */
#define TG_USAGE_MODEL_JSON  (TG_USAGE_MODEL + 1)

/* lookups by a literal key: its length known when compiled */
#define tg_get(obj, lit)  tg_json_getn(obj, lit, sizeof(lit) - 1)
#define tg_int_at(obj, lit, v)  tg_int(obj, lit, sizeof(lit) - 1, v)


/* a token count: a number from 0 to TG_USAGE_MAX, truncated */
static int
tg_count(tg_json_t *n, int64_t *v)
{
    double    d;
    size_t    i;
    uint64_t  w;

    if (!tg_json_is_number(n)) {
        return 0;
    }

    /* up to 15 digits: exact, as tg_json_number() would read them */
    if (n->len <= 15) {
        w = 0;

        for (i = 0; i < n->len && n->str[i] >= '0' && n->str[i] <= '9'; i++) {
            w = w * 10 + (n->str[i] - '0');
        }

        if (i == n->len) {
            if (w > (uint64_t) TG_USAGE_MAX) {
                return 0;
            }

            *v = (int64_t) w;

            return 1;
        }
    }

    d = tg_json_number_value(n);

    if (!(d >= 0 && d <= TG_USAGE_MAX)) {
        return 0;
    }

    *v = (int64_t) d;

    return 1;
}


static int
tg_int(tg_json_t *obj, const char *key, size_t len, int64_t *v)
{
    return tg_count(tg_json_getn(obj, key, len), v);
}


/*
 * The tokenCount of the first {"modality": M, "tokenCount": N} in a.
 * Strings are compared by length: one without escapes is the input's bytes,
 * not NUL-terminated, and a decoded one may hold a NUL (tg_usage_slot()).
 */
static int64_t
tg_modality(tg_json_t *a, const char *modality, size_t len)
{
    size_t      i;
    int64_t     v;
    tg_json_t  *e, *m;

    if (!tg_json_is_array(a)) {
        return 0;
    }

    tg_json_array_foreach(a, i, e) {
        m = tg_get(e, "modality");

        if (tg_json_is_string(m) && tg_json_string_length(m) == len
            && memcmp(tg_json_string_value(m), modality, len) == 0)
        {
            return tg_int_at(e, "tokenCount", &v) ? v : 0;
        }
    }

    return 0;
}


#define tg_modality_of(a, lit)  tg_modality(a, lit, sizeof(lit) - 1)


/* Gemini's images and documents are billed as images */
static void
tg_modalities(tg_json_t *a, int64_t *audio, int64_t *image, int64_t *video)
{
    *audio += tg_modality_of(a, "AUDIO");
    *image += tg_modality_of(a, "IMAGE") + tg_modality_of(a, "DOCUMENT");
    *video += tg_modality_of(a, "VIDEO");
}


/* a token count at a key of a usage object, or of an object in it */
typedef struct {
    const char  *object;        /* NULL: the usage object itself */
    size_t       object_len;
    const char  *key;
    size_t       key_len;
    size_t       field;         /* in tg_usage_t */
    unsigned     has;           /* what finding it means */
} tg_usage_field_t;

#define TG_HAS_INPUT   1
#define TG_HAS_OUTPUT  2

#define tg_usage_field(o, k, f, h)                                            \
    { o, sizeof(o) - 1, k, sizeof(k) - 1, offsetof(tg_usage_t, f), h }
#define tg_usage_top(k, f, h)                                                 \
    { NULL, 0, k, sizeof(k) - 1, offsetof(tg_usage_t, f), h }


static const tg_usage_field_t  tg_usage_responses[] = {
    tg_usage_top("input_tokens", input, TG_HAS_INPUT),
    tg_usage_top("output_tokens", output, TG_HAS_OUTPUT),
    tg_usage_field("input_tokens_details", "cached_tokens", cached, 0),
    tg_usage_field("input_tokens_details", "cache_write_tokens",
                   cache_write, 0),
    tg_usage_field("output_tokens_details", "reasoning_tokens",
                   reasoning, 0),
    { NULL, 0, NULL, 0, 0, 0 }
};


/* the parts of the input apart: summed in tg_usage_apply() */
static const tg_usage_field_t  tg_usage_messages[] = {
    tg_usage_top("input_tokens", a_input, TG_HAS_INPUT),
    tg_usage_top("cache_read_input_tokens", a_read, 0),
    tg_usage_top("cache_creation_input_tokens", a_write, 0),
    tg_usage_top("output_tokens", output, TG_HAS_OUTPUT),
    tg_usage_field("cache_creation", "ephemeral_5m_input_tokens",
                   cache_write_5m, 0),
    tg_usage_field("cache_creation", "ephemeral_1h_input_tokens",
                   cache_write_1h, 0),
    tg_usage_field("server_tool_use", "web_search_requests",
                   web_searches, 0),
    tg_usage_field("output_tokens_details", "thinking_tokens",
                   reasoning, 0),
    { NULL, 0, NULL, 0, 0, 0 }
};


/* OpenAI chat, completions, embeddings */
static const tg_usage_field_t  tg_usage_openai[] = {
    tg_usage_top("prompt_tokens", input, TG_HAS_INPUT),
    tg_usage_top("completion_tokens", output, TG_HAS_OUTPUT),
    tg_usage_field("prompt_tokens_details", "cached_tokens", cached, 0),
    tg_usage_field("prompt_tokens_details", "cache_write_tokens",
                   cache_write, 0),
    tg_usage_field("prompt_tokens_details", "audio_tokens", input_audio, 0),
    tg_usage_field("completion_tokens_details", "reasoning_tokens",
                   reasoning, 0),
    tg_usage_field("completion_tokens_details", "audio_tokens",
                   output_audio, 0),
    { NULL, 0, NULL, 0, 0, 0 }
};


/* the fields found are stored; returns what they were (TG_HAS_*) */
static unsigned
tg_usage_fields(tg_json_t *usage, const tg_usage_field_t *f, tg_usage_t *u)
{
    int64_t      v;
    unsigned     found;
    tg_json_t   *obj;
    const char  *object;

    found = 0;
    object = NULL;
    obj = usage;

    for ( /* void */ ; f->key != NULL; f++) {
        if (f->object != object) {
            /*
             * one lookup per run of entries of an object (equal literals
             * are one string; were they not, it costs a lookup more)
             */
            object = f->object;
            obj = object ? tg_json_getn(usage, object, f->object_len)
                         : usage;
        }

        if (tg_int(obj, f->key, f->key_len, &v)) {
            *(int64_t *) ((char *) u + f->field) = v;
            found |= f->has;
        }
    }

    if (found & TG_HAS_INPUT) {
        u->has_input = 1;
    }

    if (found & TG_HAS_OUTPUT) {
        u->has_output = 1;
    }

    return found;
}


/* Gemini: sums of counts, and the modality parts of each side */
static void
tg_usage_gemini(tg_json_t *usage, tg_usage_t *u)
{
    int64_t  v, w;

    if (tg_int_at(usage, "promptTokenCount", &v)) {
        w = 0;
        (void) tg_int_at(usage, "toolUsePromptTokenCount", &w);
        u->input = v + w;
        u->has_input = 1;

        u->input_audio = 0;
        u->input_image = 0;
        u->input_video = 0;
        tg_modalities(tg_get(usage, "promptTokensDetails"),
                      &u->input_audio, &u->input_image, &u->input_video);
        tg_modalities(tg_get(usage, "toolUsePromptTokensDetails"),
                      &u->input_audio, &u->input_image, &u->input_video);

        u->cache_audio_read = 0;
        u->cache_image_read = 0;
        u->cache_video_read = 0;
        tg_modalities(tg_get(usage, "cacheTokensDetails"),
                      &u->cache_audio_read, &u->cache_image_read,
                      &u->cache_video_read);
    }

    if (tg_int_at(usage, "cachedContentTokenCount", &v)) {
        u->cached = v;
    }

    if (tg_int_at(usage, "candidatesTokenCount", &v)
        || tg_get(usage, "promptTokenCount"))
    {
        if (!tg_int_at(usage, "candidatesTokenCount", &v)) {
            v = 0;
        }

        w = 0;
        (void) tg_int_at(usage, "thoughtsTokenCount", &w);
        u->output = v + w;
        u->reasoning = w;
        u->has_output = 1;

        u->output_audio = 0;
        u->output_image = 0;
        u->output_video = 0;
        tg_modalities(tg_get(usage, "candidatesTokensDetails"),
                      &u->output_audio, &u->output_image, &u->output_video);
    }
}


/* a usage object in the api's own shape */
static int
tg_usage_apply(tg_api_e api, tg_json_t *usage, tg_usage_t *u)
{
    unsigned  found;

    if (!tg_json_is_object(usage)) {
        return 0;
    }

    switch (api) {

    case TG_API_RESPONSES:
        (void) tg_usage_fields(usage, tg_usage_responses, u);
        break;

    case TG_API_MESSAGES:
        (void) tg_usage_fields(usage, tg_usage_messages, u);

        u->input = u->a_input + u->a_read + u->a_write;
        u->cached = u->a_read;
        u->cache_write = u->a_write;
        break;

    case TG_API_GENERATE:
        tg_usage_gemini(usage, u);
        break;

    default:
        found = tg_usage_fields(usage, tg_usage_openai, u);

        if (!(found & TG_HAS_OUTPUT) && api == TG_API_EMBEDDINGS
            && u->has_input)
        {
            /* embeddings have no output, and may not say so */
            u->output = 0;
            u->has_output = 1;
        }

        break;
    }

    if (u->cached > u->input) {
        u->cached = u->input;
    }

    return u->has_input || u->has_output;
}


/*
 * The paths each kind of document is scanned for; see tg_usage_scan_end.
 * A path whose last key is "model" or "modelVersion" is the model the
 * response names (tg_usage_model): its bit is set in the docs' mask.
 */

static const char *const  tg_usage_body[] = { "usage", "model", NULL };
static const size_t       tg_usage_body_max[] = {
    TG_USAGE_CAP, TG_USAGE_MODEL_JSON
};

static const char *const  tg_usage_body_responses[] = {
    "usage", "background", "status", "model", NULL
};
static const size_t       tg_usage_body_responses_max[] = {
    TG_USAGE_CAP, 16, 32, TG_USAGE_MODEL_JSON
};

static const char *const  tg_usage_body_generate[] = {
    "usageMetadata", "*.usageMetadata", "modelVersion", "*.modelVersion",
    NULL
};
static const size_t       tg_usage_body_generate_max[] = {
    TG_USAGE_CAP, TG_USAGE_CAP, TG_USAGE_MODEL_JSON, TG_USAGE_MODEL_JSON
};

static const char *const  tg_usage_event[] = {
    "usage", "choices.*", "choices.*.finish_reason", "model", NULL
};
static const size_t       tg_usage_event_max[] = {
    TG_USAGE_CAP, 0, 64, TG_USAGE_MODEL_JSON
};

static const char *const  tg_usage_event_responses[] = {
    "response.usage", "type", "response.background", "response.model", NULL
};
static const size_t       tg_usage_event_responses_max[] = {
    TG_USAGE_CAP, 64, 16, TG_USAGE_MODEL_JSON
};

static const char *const  tg_usage_event_messages[] = {
    "usage", "type", "message.usage", "message.model", NULL
};
static const size_t       tg_usage_event_messages_max[] = {
    TG_USAGE_CAP, 64, TG_USAGE_CAP, TG_USAGE_MODEL_JSON
};

static const char *const  tg_usage_event_generate[] = {
    "usageMetadata", "candidates.*", "candidates.*.finishReason",
    "modelVersion", NULL
};
static const size_t       tg_usage_event_generate_max[] = {
    TG_USAGE_CAP, 0, 64, TG_USAGE_MODEL_JSON
};


/* what a body and an event of each dialect are scanned for */
typedef struct {
    const char *const  *body;
    const size_t       *body_max;
    unsigned            body_model;     /* bit i: path i is a model */
    const char *const  *event;
    const size_t       *event_max;
    unsigned            event_model;
} tg_usage_docs_t;


static const tg_usage_docs_t  tg_usage_docs_openai = {
    tg_usage_body, tg_usage_body_max, 0x2,
    tg_usage_event, tg_usage_event_max, 0x8
};

static const tg_usage_docs_t  tg_usage_docs_responses = {
    tg_usage_body_responses, tg_usage_body_responses_max, 0x8,
    tg_usage_event_responses, tg_usage_event_responses_max, 0x8
};

static const tg_usage_docs_t  tg_usage_docs_messages = {
    tg_usage_body, tg_usage_body_max, 0x2,
    tg_usage_event_messages, tg_usage_event_messages_max, 0x8
};

static const tg_usage_docs_t  tg_usage_docs_generate = {
    tg_usage_body_generate, tg_usage_body_generate_max, 0xc,
    tg_usage_event_generate, tg_usage_event_generate_max, 0x8
};


void
tg_usage_scan_init(tg_usage_scan_t *s, tg_api_e api, int event)
{
    const tg_usage_docs_t  *d;

    s->api = api;
    s->event = event;

    switch (api) {
    case TG_API_RESPONSES:
        d = &tg_usage_docs_responses;
        break;
    case TG_API_MESSAGES:
        d = &tg_usage_docs_messages;
        break;
    case TG_API_GENERATE:
        d = &tg_usage_docs_generate;
        break;
    default:
        d = &tg_usage_docs_openai;
        break;
    }

    if (event) {
        tg_jscan_init(&s->js, d->event, d->event_max);
        s->model = d->event_model;

    } else {
        tg_jscan_init(&s->js, d->body, d->body_max);
        s->model = d->body_model;
    }
}


void
tg_usage_scan_feed(tg_usage_scan_t *s, const char *p, size_t len)
{
    tg_jscan_feed(&s->js, p, len);
}


void
tg_usage_scan_free(tg_usage_scan_t *s)
{
    tg_jscan_free(&s->js);
}


/* the captured value at path i is the JSON text of the literal lit */
#define tg_usage_is(s, i, lit)  tg_usage_text(s, i, lit, sizeof(lit) - 1)

static int
tg_usage_text(tg_usage_scan_t *s, size_t i, const char *lit, size_t n)
{
    size_t       len;
    const char  *v;

    v = tg_jscan_value(&s->js, i, &len);

    return v != NULL && len == n && memcmp(v, lit, n) == 0;
}


/*
 * The usage object kept at path i, applied.  It is a few dozen values:
 * the document's own 64 nodes hold them, with no allocation unless there
 * are more or a string has an escape ("\u0000" too: it must not cost the
 * counts).
 */
static int
tg_usage_slot(tg_usage_scan_t *s, size_t i, tg_usage_t *u)
{
    int            found;
    size_t         len;
    tg_json_t     *v;
    const char    *p;
    tg_json_doc_t  doc;

    p = tg_jscan_value(&s->js, i, &len);
    if (p == NULL) {
        return 0;
    }

    v = tg_json_parse(&doc, p, len, TG_JSON_ALLOW_NUL);
    found = v != NULL && tg_usage_apply(s->api, v, u);
    tg_json_free(&doc);

    return found;
}


/* a whole response body */
static int
tg_usage_body_end(tg_usage_scan_t *s, tg_usage_t *u)
{
    int  found;

    if (s->api == TG_API_RESPONSES
        && (tg_usage_is(s, 1, "true")
            || tg_usage_is(s, 2, "\"queued\"")
            || tg_usage_is(s, 2, "\"in_progress\"")))
    {
        /* answered later, by GET /v1/responses/{id} */
        u->background = 1;
    }

    found = tg_usage_slot(s, 0, u);

    if (s->api == TG_API_GENERATE) {
        /* a JSON-array stream: the last chunk's */
        found |= tg_usage_slot(s, 1, u);
    }

    return found;
}


/* one stream event: only the final kinds carry the usage billed */
static int
tg_usage_event_end(tg_usage_scan_t *s, tg_usage_t *u)
{
    int       found;
    int64_t   output;
    unsigned  has_output;

    switch (s->api) {

    case TG_API_RESPONSES:
        if (tg_usage_is(s, 2, "true")) {
            u->background = 1;
        }

        if (tg_usage_is(s, 1, "\"response.completed\"")
            || tg_usage_is(s, 1, "\"response.incomplete\"")
            || tg_usage_is(s, 1, "\"response.failed\""))
        {
            return tg_usage_slot(s, 0, u);
        }

        return 0;

    case TG_API_MESSAGES:
        if (tg_usage_is(s, 1, "\"message_start\"")) {
            /*
             * its output_tokens is a placeholder (1), only message_delta
             * says how much came; a stream cut before that is estimated
             */
            output = u->output;
            has_output = u->has_output;

            found = tg_usage_slot(s, 2, u);

            u->output = output;
            u->has_output = has_output;

            return found;
        }

        if (tg_usage_is(s, 1, "\"message_delta\"")) {
            return tg_usage_slot(s, 0, u);
        }

        return 0;

    default:
        /*
         * the final chunk: usage and no choices (OpenAI) or candidates
         * (Gemini), or choices that finished (Mistral and others); vLLM's
         * running totals are not
         */
        if (!s->js.slot[1].seen
            || (s->js.slot[2].seen && !tg_usage_is(s, 2, "null")))
        {
            return tg_usage_slot(s, 0, u);
        }

        return 0;
    }
}


/*
 * The model the document names, kept when it is a plain name: escapes and
 * control bytes are no model's, and would only reach the logs
 */
static void
tg_usage_model(tg_usage_scan_t *s, tg_usage_t *u)
{
    size_t       i, j, len;
    unsigned     m;
    const char  *v;

    for (m = s->model; m; m &= m - 1) {
        i = __builtin_ctz(m);
        v = tg_jscan_value(&s->js, i, &len);

        if (v == NULL || len < 3 || len - 2 >= TG_USAGE_MODEL
            || v[0] != '"' || v[len - 1] != '"')
        {
            continue;
        }

        for (j = 1; j < len - 1; j++) {
            if (v[j] <= ' ' || v[j] > '~' || v[j] == '"' || v[j] == '\\') {
                break;
            }
        }

        if (j == len - 1) {
            memcpy(u->model, v + 1, len - 2);
            u->model[len - 2] = '\0';
        }
    }
}


int
tg_usage_scan_end(tg_usage_scan_t *s, tg_usage_t *u)
{
    int  found;

    found = 0;

    if (s->js.done && !s->js.bad) {
        found = s->event ? tg_usage_event_end(s, u)
                         : tg_usage_body_end(s, u);
        tg_usage_model(s, u);
    }

    tg_jscan_reset(&s->js);

    return found;
}


int
tg_usage_from_body(tg_api_e api, const char *body, size_t len, int whole,
    tg_usage_t *u)
{
    int              found;
    tg_usage_scan_t  s;

    if (!whole) {
        /* a tail is never believed */
        return 0;
    }

    tg_usage_scan_init(&s, api, 0);
    tg_usage_scan_feed(&s, body, len);
    found = tg_usage_scan_end(&s, u);
    tg_usage_scan_free(&s);

    return found;
}


void
tg_usage_from_event(tg_api_e api, const char *data, size_t len,
    tg_usage_t *u)
{
    tg_usage_scan_t  s;

    tg_usage_scan_init(&s, api, 1);
    tg_usage_scan_feed(&s, data, len);
    (void) tg_usage_scan_end(&s, u);
    tg_usage_scan_free(&s);
}
