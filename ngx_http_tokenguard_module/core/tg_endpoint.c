/*
 * URI -> provider dialect.  OpenAI-style paths may carry any prefix before
 * "/v1/" (Azure-like gateways, "/openai/v1/..."), so they are matched on
 * the path's tail.
 */

#include <string.h>

#include "tg_endpoint.h"


typedef struct {
    const char     *suffix;
    tg_provider_e   provider;
    tg_api_e        api;
} tg_endpoint_suffix_t;


static const tg_endpoint_suffix_t  tg_endpoint_suffixes[] = {
    { "/v1/chat/completions", TG_PROVIDER_OPENAI, TG_API_CHAT },
    { "/v1/completions", TG_PROVIDER_OPENAI, TG_API_COMPLETIONS },
    { "/v1/responses", TG_PROVIDER_OPENAI, TG_API_RESPONSES },
    { "/v1/embeddings", TG_PROVIDER_OPENAI, TG_API_EMBEDDINGS },
    { "/v1/messages", TG_PROVIDER_ANTHROPIC, TG_API_MESSAGES },
    { NULL, TG_PROVIDER_AUTO, TG_API_NONE }
};


static int
tg_ends_with(const char *s, size_t len, const char *suffix)
{
    size_t  n;

    n = strlen(suffix);

    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}


/*
 * ".../models/{model}:generateContent" or ":streamGenerateContent";
 * the model is the last path segment before the colon.
 */
static int
tg_endpoint_gemini(const char *uri, size_t len, tg_endpoint_t *ep)
{
    size_t       i, colon, start;
    const char  *action;

    colon = len;

    for (i = len; i > 0; i--) {
        if (uri[i - 1] == '/') {
            return 0;
        }

        if (uri[i - 1] == ':') {
            colon = i - 1;
            break;
        }
    }

    if (colon == len) {
        return 0;
    }

    action = uri + colon + 1;

    if (len - colon - 1 == sizeof("generateContent") - 1
        && memcmp(action, "generateContent", len - colon - 1) == 0)
    {
        ep->stream = 0;

    } else if (len - colon - 1 == sizeof("streamGenerateContent") - 1
               && memcmp(action, "streamGenerateContent", len - colon - 1)
                  == 0)
    {
        ep->stream = 1;

    } else {
        return 0;
    }

    start = colon;

    while (start > 0 && uri[start - 1] != '/') {
        start--;
    }

    if (start == colon || start < sizeof("/models/") - 1
        || memcmp(uri + start - (sizeof("/models/") - 1), "/models/",
                  sizeof("/models/") - 1) != 0)
    {
        return 0;
    }

    ep->provider = TG_PROVIDER_GEMINI;
    ep->api = TG_API_GENERATE;
    ep->model_off = start;
    ep->model_len = colon - start;

    return 1;
}


int
tg_endpoint_detect(const char *uri, size_t len, tg_provider_e forced,
    tg_endpoint_t *ep)
{
    const tg_endpoint_suffix_t  *s;

    memset(ep, 0, sizeof(tg_endpoint_t));

    ep->provider = (forced == TG_PROVIDER_AUTO) ? TG_PROVIDER_OPENAI : forced;
    ep->api = TG_API_NONE;

    while (len > 1 && uri[len - 1] == '/') {
        len--;
    }

    if (forced == TG_PROVIDER_AUTO || forced == TG_PROVIDER_GEMINI) {
        if (tg_endpoint_gemini(uri, len, ep)) {
            return 0;
        }

        if (forced == TG_PROVIDER_GEMINI) {
            return 0;
        }
    }

    for (s = tg_endpoint_suffixes; s->suffix; s++) {
        if (forced != TG_PROVIDER_AUTO && forced != s->provider) {
            continue;
        }

        if (tg_ends_with(uri, len, s->suffix)) {
            ep->provider = s->provider;
            ep->api = s->api;
            return 0;
        }
    }

    return 0;
}


const char *
tg_provider_name(tg_provider_e p)
{
    switch (p) {
    case TG_PROVIDER_OPENAI:
        return "openai";
    case TG_PROVIDER_ANTHROPIC:
        return "anthropic";
    case TG_PROVIDER_GEMINI:
        return "gemini";
    default:
        return "auto";
    }
}
