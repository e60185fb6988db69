#define _GNU_SOURCE  1   /* memmem() */

/*
 * Usage per dialect:
 *
 *   OpenAI chat, completions, embeddings: usage.prompt_tokens
 *     (prompt_tokens_details: cached_tokens, cache_write_tokens,
 *     audio_tokens), usage.completion_tokens (completion_tokens_details:
 *     reasoning_tokens and audio_tokens are part of it); streams: the
 *     chunk with "usage", whatever its "choices" holds.
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
 *     streams: the last chunk's usageMetadata.
 *
 * The same fields as @pydantic/genai-prices' extractUsage reads.
 */

#include <string.h>


#include "tg_json.h"
#include "tg_usage.h"


/* more is not a token count, and would overflow the sums below */
#define TG_USAGE_MAX  1e12

/* "usage" keys tried from the end of a body that does not parse */
#define TG_USAGE_TRIES  16


static int
tg_int(tg_json_t *obj, const char *key, int64_t *v)
{
    tg_json_t  *n;

    n = tg_json_get(obj, key);

    if (!tg_json_is_number(n) || tg_json_number_value(n) < 0
        || tg_json_number_value(n) > TG_USAGE_MAX)
    {
        return 0;
    }

    *v = (int64_t) tg_json_number_value(n);

    return 1;
}


/* the tokenCount of the first {"modality": M, "tokenCount": N} in a */
static int64_t
tg_modality(tg_json_t *a, const char *modality)
{
    size_t      i;
    int64_t     v;
    tg_json_t  *e, *m;

    if (!tg_json_is_array(a)) {
        return 0;
    }

    tg_json_array_foreach(a, i, e) {
        m = tg_json_get(e, "modality");

        if (tg_json_is_string(m)
            && strcmp(tg_json_string_value(m), modality) == 0)
        {
            return tg_int(e, "tokenCount", &v) ? v : 0;
        }
    }

    return 0;
}


/* Gemini's images and documents are billed as images */
static void
tg_modalities(tg_json_t *a, int64_t *audio, int64_t *image, int64_t *video)
{
    *audio += tg_modality(a, "AUDIO");
    *image += tg_modality(a, "IMAGE") + tg_modality(a, "DOCUMENT");
    *video += tg_modality(a, "VIDEO");
}


/* a usage object in the api's own shape */
static int
tg_usage_apply(tg_api_e api, tg_json_t *usage, tg_usage_t *u)
{
    int64_t  v, w;
    tg_json_t  *details;

    if (!tg_json_is_object(usage)) {
        return 0;
    }

    switch (api) {

    case TG_API_RESPONSES:
        if (tg_int(usage, "input_tokens", &v)) {
            u->input = v;
            u->has_input = 1;
        }

        if (tg_int(usage, "output_tokens", &v)) {
            u->output = v;
            u->has_output = 1;
        }

        details = tg_json_get(usage, "input_tokens_details");
        if (tg_int(details, "cached_tokens", &v)) {
            u->cached = v;
        }

        if (tg_int(details, "cache_write_tokens", &v)) {
            u->cache_write = v;
        }

        details = tg_json_get(usage, "output_tokens_details");
        if (tg_int(details, "reasoning_tokens", &v)) {
            u->reasoning = v;
        }

        break;

    case TG_API_MESSAGES:
        if (tg_int(usage, "input_tokens", &v)) {
            u->a_input = v;
            u->has_input = 1;
        }

        if (tg_int(usage, "cache_read_input_tokens", &v)) {
            u->a_read = v;
        }

        if (tg_int(usage, "cache_creation_input_tokens", &v)) {
            u->a_write = v;
        }

        if (tg_int(usage, "output_tokens", &v)) {
            u->output = v;
            u->has_output = 1;
        }

        details = tg_json_get(usage, "cache_creation");
        if (tg_int(details, "ephemeral_5m_input_tokens", &v)) {
            u->cache_write_5m = v;
        }

        if (tg_int(details, "ephemeral_1h_input_tokens", &v)) {
            u->cache_write_1h = v;
        }

        details = tg_json_get(usage, "server_tool_use");
        if (tg_int(details, "web_search_requests", &v)) {
            u->web_searches = v;
        }

        details = tg_json_get(usage, "output_tokens_details");
        if (tg_int(details, "thinking_tokens", &v)) {
            u->reasoning = v;
        }

        u->input = u->a_input + u->a_read + u->a_write;
        u->cached = u->a_read;
        u->cache_write = u->a_write;
        break;

    case TG_API_GENERATE:
        if (tg_int(usage, "promptTokenCount", &v)) {
            w = 0;
            (void) tg_int(usage, "toolUsePromptTokenCount", &w);
            u->input = v + w;
            u->has_input = 1;

            u->input_audio = 0;
            u->input_image = 0;
            u->input_video = 0;
            tg_modalities(tg_json_get(usage, "promptTokensDetails"),
                          &u->input_audio, &u->input_image, &u->input_video);
            tg_modalities(tg_json_get(usage, "toolUsePromptTokensDetails"),
                          &u->input_audio, &u->input_image, &u->input_video);

            u->cache_audio_read = 0;
            u->cache_image_read = 0;
            u->cache_video_read = 0;
            tg_modalities(tg_json_get(usage, "cacheTokensDetails"),
                          &u->cache_audio_read, &u->cache_image_read,
                          &u->cache_video_read);
        }

        if (tg_int(usage, "cachedContentTokenCount", &v)) {
            u->cached = v;
        }

        if (tg_int(usage, "candidatesTokenCount", &v)
            || tg_json_get(usage, "promptTokenCount"))
        {
            if (!tg_int(usage, "candidatesTokenCount", &v)) {
                v = 0;
            }

            w = 0;
            (void) tg_int(usage, "thoughtsTokenCount", &w);
            u->output = v + w;
            u->reasoning = w;
            u->has_output = 1;

            u->output_audio = 0;
            u->output_image = 0;
            u->output_video = 0;
            tg_modalities(tg_json_get(usage, "candidatesTokensDetails"),
                          &u->output_audio, &u->output_image,
                          &u->output_video);
        }

        break;

    default:
        /* OpenAI chat, completions, embeddings */
        if (tg_int(usage, "prompt_tokens", &v)) {
            u->input = v;
            u->has_input = 1;
        }

        if (tg_int(usage, "completion_tokens", &v)) {
            u->output = v;
            u->has_output = 1;

        } else if (api == TG_API_EMBEDDINGS && u->has_input) {
            u->output = 0;
            u->has_output = 1;
        }

        details = tg_json_get(usage, "prompt_tokens_details");
        if (tg_int(details, "cached_tokens", &v)) {
            u->cached = v;
        }

        if (tg_int(details, "cache_write_tokens", &v)) {
            u->cache_write = v;
        }

        if (tg_int(details, "audio_tokens", &v)) {
            u->input_audio = v;
        }

        details = tg_json_get(usage, "completion_tokens_details");
        if (tg_int(details, "reasoning_tokens", &v)) {
            u->reasoning = v;
        }

        if (tg_int(details, "audio_tokens", &v)) {
            u->output_audio = v;
        }

        break;
    }

    if (u->cached > u->input) {
        u->cached = u->input;
    }

    return u->has_input || u->has_output;
}


/* the usage object of one JSON value (a body, a chunk, an event) */
static int
tg_usage_value(tg_api_e api, tg_json_t *v, tg_usage_t *u)
{
    int       found;
    tg_json_t  *usage;
    int64_t   output;
    unsigned  has_output;

    if (api == TG_API_GENERATE) {
        return tg_usage_apply(api, tg_json_get(v, "usageMetadata"), u);
    }

    usage = tg_json_get(v, "usage");

    if (usage == NULL) {
        /* Responses events: {"response": {...}}; Anthropic message_start */
        usage = tg_json_get(tg_json_get(v, "response"), "usage");
    }

    if (usage == NULL && api == TG_API_MESSAGES) {
        /*
         * Anthropic's message_start: its output_tokens is a placeholder
         * (1), only message_delta says how much came; a stream cut before
         * that is estimated from what was relayed
         */
        usage = tg_json_get(tg_json_get(v, "message"), "usage");

        if (usage != NULL) {
            output = u->output;
            has_output = u->has_output;
            found = tg_usage_apply(api, usage, u);

            u->output = output;
            u->has_output = has_output;

            return found;
        }
    }

    return tg_usage_apply(api, usage, u);
}


static const char *
tg_find_last(const char *s, size_t len, const char *key, size_t klen)
{
    const char  *p;

    if (len < klen) {
        return NULL;
    }

    for (p = s + len - klen; p >= s; p--) {
        if (*p == '"' && memcmp(p, key, klen) == 0
            && (p == s || p[-1] != '\\'))
        {
            return p;
        }

        if (p == s) {
            break;
        }
    }

    return NULL;
}


int
tg_usage_from_body(tg_api_e api, const char *body, size_t len, int whole,
    tg_usage_t *u)
{
    int            found, tries;
    size_t         i, klen;
    tg_json_t     *root, *v;
    const char    *key, *p;
    tg_json_doc_t  doc;

    if (whole) {
        root = tg_json_parse(&doc, body, len, 0);

        if (root != NULL) {
            found = 0;

            if (tg_json_is_array(root)) {
                tg_json_array_foreach(root, i, v) {
                    found |= tg_usage_value(api, v, u);
                }

            } else {
                found = tg_usage_value(api, root, u);
            }

            if (found) {
                tg_json_free(&doc);
                return 1;
            }
        }

        tg_json_free(&doc);
    }

    /*
     * Only the tail was kept, or the body does not parse (cut short): the
     * last "usage" key is the top-level one in every dialect's bodies.
     * Inside a JSON string a quote is escaped, so "usage" followed by a
     * colon is a key.  The real one is the last or close to it (a cut
     * Gemini chunk): the attempts are few, as each may parse the rest of
     * the body, and nested "usage" keys would make that quadratic.
     */

    key = (api == TG_API_GENERATE) ? "\"usageMetadata\"" : "\"usage\"";
    klen = strlen(key);
    tries = TG_USAGE_TRIES;

    p = tg_find_last(body, len, key, klen);

    while (p != NULL && tries) {
        const char  *q = p + klen;

        while (q < body + len && (*q == ' ' || *q == '\n' || *q == '\r'
                                  || *q == '\t'))
        {
            q++;
        }

        if (q < body + len && *q == ':') {
            q++;
            tries--;

            /* the value of the key: its usage object itself */
            v = tg_json_parse(&doc, q, body + len - q, TG_JSON_ONE_VALUE);
            found = v != NULL && tg_usage_apply(api, v, u);
            tg_json_free(&doc);

            if (found) {
                return 1;
            }
        }

        p = tg_find_last(body, p - body, key, klen);
    }

    return 0;
}


void
tg_usage_from_event(tg_api_e api, const char *data, size_t len,
    tg_usage_t *u)
{
    tg_json_t      *v;
    tg_json_doc_t   doc;

    /* most events carry no usage: skip them without parsing */
    if (len < 7 || memmem(data, len, api == TG_API_GENERATE
                                     ? "usageMetadata" : "usage",
                          api == TG_API_GENERATE ? 13 : 5) == NULL)
    {
        return;
    }

    v = tg_json_parse(&doc, data, len, 0);

    if (v != NULL) {
        (void) tg_usage_value(api, v, u);
    }

    tg_json_free(&doc);
}
