#include <string.h>

#include "tap.h"
#include "tg_endpoint.h"


static tg_endpoint_t
detect(const char *uri, tg_provider_e forced)
{
    tg_endpoint_t  ep;

    tg_endpoint_detect(uri, strlen(uri), forced, &ep);

    return ep;
}


void
test_endpoint(void)
{
    tg_endpoint_t  ep;

    ep = detect("/v1/chat/completions", TG_PROVIDER_AUTO);
    ok(ep.provider == TG_PROVIDER_OPENAI && ep.api == TG_API_CHAT,
       "endpoint: openai chat");

    ep = detect("/openai/v1/chat/completions/", TG_PROVIDER_AUTO);
    ok(ep.api == TG_API_CHAT, "endpoint: prefix and trailing slash");

    ok(detect("/v1/completions", 0).api == TG_API_COMPLETIONS,
       "endpoint: completions");
    ok(detect("/v1/responses", 0).api == TG_API_RESPONSES,
       "endpoint: responses");
    ok(detect("/v1/embeddings", 0).api == TG_API_EMBEDDINGS,
       "endpoint: embeddings");

    ep = detect("/v1/messages", TG_PROVIDER_AUTO);
    ok(ep.provider == TG_PROVIDER_ANTHROPIC && ep.api == TG_API_MESSAGES,
       "endpoint: anthropic messages");

    ok(detect("/v1/models", 0).api == TG_API_NONE, "endpoint: models list");
    ok(detect("/v1/responses/resp_1", 0).api == TG_API_NONE,
       "endpoint: a stored response is not a generation call");
    ok(detect("/v1/messages/count_tokens", 0).api == TG_API_NONE,
       "endpoint: count_tokens is not a generation call");

    ep = detect("/v1beta/models/gemini-1.5-pro:generateContent", 0);
    ok(ep.provider == TG_PROVIDER_GEMINI && ep.api == TG_API_GENERATE
       && !ep.stream, "endpoint: gemini generateContent");
    is_int(ep.model_off, 15, "endpoint: gemini model offset");
    is_int(ep.model_len, 14, "endpoint: gemini model length");

    ep = detect("/v1beta/models/gemini-2.0-flash:streamGenerateContent", 0);
    ok(ep.api == TG_API_GENERATE && ep.stream,
       "endpoint: gemini streamGenerateContent");

    ok(detect("/v1beta/models/:generateContent", 0).api == TG_API_NONE,
       "endpoint: gemini without a model");
    ok(detect("/v1beta/models/x:countTokens", 0).api == TG_API_NONE,
       "endpoint: gemini countTokens");
    ok(detect("/v1beta/tunedModels/x:generateContent", 0).api == TG_API_NONE,
       "endpoint: gemini needs /models/");

    ok(detect("/v1/messages", TG_PROVIDER_OPENAI).api == TG_API_NONE,
       "endpoint: forced openai ignores anthropic paths");
    ep = detect("/v1/chat/completions", TG_PROVIDER_OPENAI);
    ok(ep.api == TG_API_CHAT, "endpoint: forced openai");
    ok(detect("/v1/chat/completions", TG_PROVIDER_GEMINI).api == TG_API_NONE,
       "endpoint: forced gemini ignores openai paths");
    ok(detect("", 0).api == TG_API_NONE, "endpoint: empty uri");
}
