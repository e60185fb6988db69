/*
 * What a request is, from its method and decoded URI path: a metered
 * generation call of some provider dialect, a call on the built-in free
 * list, anything else (allowed only by tokenguard_passthrough), or a
 * path the provider could route otherwise than we read it.
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


typedef enum {
    TG_ENDPOINT_METERED = 0,  /* inspected, reserved, counted */
    TG_ENDPOINT_FREE,         /* the built-in free list */
    TG_ENDPOINT_OTHER,        /* tokenguard_passthrough, or refused */
    TG_ENDPOINT_AMBIGUOUS     /* refused: the provider may read it otherwise */
} tg_endpoint_kind_e;


typedef enum {
    TG_METHOD_GET = 0,
    TG_METHOD_POST,
    TG_METHOD_OTHER           /* HEAD, PUT, DELETE, OPTIONS ... */
} tg_method_e;


typedef struct {
    tg_endpoint_kind_e  kind;
    tg_provider_e       provider;   /* the dialect; never AUTO */
    tg_api_e            api;        /* METERED, or FREE token counting
                                       (its body's dialect); else NONE */
    int                 stream;     /* streamGenerateContent ... */
    int                 google;     /* served by Google's front end */
    int                 azure;      /* an Azure OpenAI deployment */
    int                 vertex;     /* a Vertex AI publisher model */

    /*
     * The model named by the URI (Gemini, Vertex, an Azure deployment):
     * its span inside the path passed in; 0, 0 when the body names it.
     */
    size_t              model_off;
    size_t              model_len;

    /* AMBIGUOUS: what is wrong with the path, for the refusal message */
    const char         *why;
} tg_endpoint_t;


/*
 * Classifies a request by its method and decoded URI path (no query
 * string).  "forced" is the configured provider, or TG_PROVIDER_AUTO.
 * Returns ep->kind.
 */
tg_endpoint_kind_e tg_endpoint_classify(const char *uri, size_t len,
    tg_method_e method, tg_provider_e forced, tg_endpoint_t *ep);

/*
 * The same; "always" reads the path with case folded even when it cannot
 * matter (no upper-case letter, no ":"), as the tests compare.
 */
tg_endpoint_kind_e tg_endpoint_classify_folding(const char *uri, size_t len,
    tg_method_e method, tg_provider_e forced, tg_endpoint_t *ep, int always);

/*
 * On a surface Google serves, what in a query string (no "?") would make
 * the provider answer otherwise than this gateway reads it (a partial
 * response without usage, protobuf, JSONP), or NULL.
 */
const char *tg_endpoint_google_query(const char *args, size_t len);

/* the metered API of a POST to uri, TG_API_NONE if none */
int tg_endpoint_detect(const char *uri, size_t len, tg_provider_e forced,
    tg_endpoint_t *ep);

const char *tg_provider_name(tg_provider_e p);

/*
 * The OpenTelemetry GenAI names of a metered or free call's provider
 * (gen_ai.provider.name: "openai", "azure.ai.openai", "anthropic",
 * "gcp.gemini", "gcp.vertex_ai") and operation (gen_ai.operation.name:
 * "chat", "text_completion", "embeddings", "generate_content"), or NULL.
 */
const char *tg_endpoint_genai_provider(const tg_endpoint_t *ep);
const char *tg_endpoint_genai_operation(const tg_endpoint_t *ep);

#endif /* TG_ENDPOINT_H */
