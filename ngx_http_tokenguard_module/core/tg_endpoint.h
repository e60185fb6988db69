/*
 * Which provider dialect and which API a request URI speaks.
 * Pure C, no nginx headers.
 */

#ifndef TG_ENDPOINT_H
#define TG_ENDPOINT_H

#include <stddef.h>


typedef enum {
    TG_PROVIDER_AUTO = 0,
    TG_PROVIDER_OPENAI,
    TG_PROVIDER_ANTHROPIC,
    TG_PROVIDER_GEMINI
} tg_provider_e;


typedef enum {
    TG_API_NONE = 0,          /* not a generation call: GET /v1/models ... */
    TG_API_CHAT,              /* OpenAI /v1/chat/completions */
    TG_API_COMPLETIONS,       /* OpenAI /v1/completions */
    TG_API_RESPONSES,         /* OpenAI /v1/responses */
    TG_API_EMBEDDINGS,        /* OpenAI /v1/embeddings */
    TG_API_MESSAGES,          /* Anthropic /v1/messages */
    TG_API_GENERATE           /* Gemini models/{model}:generateContent */
} tg_api_e;


typedef struct {
    tg_provider_e   provider;     /* never AUTO once detected */
    tg_api_e        api;
    int             stream;       /* Gemini: streamGenerateContent */

    /* Gemini: the model's span inside the URI passed in */
    size_t          model_off;
    size_t          model_len;
} tg_endpoint_t;


/*
 * Classifies a decoded URI path (no query string).  "forced" is the
 * configured provider, or TG_PROVIDER_AUTO to decide from the URI.
 * Returns 0; ep->api is TG_API_NONE for anything that is not a
 * generation call of that provider.
 */
int tg_endpoint_detect(const char *uri, size_t len, tg_provider_e forced,
    tg_endpoint_t *ep);

const char *tg_provider_name(tg_provider_e p);

#endif /* TG_ENDPOINT_H */
