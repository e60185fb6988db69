#include <string.h>

#include "tap.h"
#include "tg_endpoint.h"
#include "tg_request.h"


static tg_endpoint_t
detect(const char *uri, tg_provider_e forced)
{
    tg_endpoint_t  ep;

    tg_endpoint_detect(uri, strlen(uri), forced, &ep);

    return ep;
}


typedef struct {
    const char          *method;
    const char          *uri;
    tg_provider_e        forced;
    tg_endpoint_kind_e   kind;
    tg_api_e             api;
    tg_provider_e        provider;      /* AUTO: not checked */
    const char          *model;         /* from the URI, or NULL */
} tg_class_case_t;


#define M  TG_ENDPOINT_METERED
#define F  TG_ENDPOINT_FREE
#define O  TG_ENDPOINT_OTHER
#define A  TG_ENDPOINT_AMBIGUOUS

#define AUTO  TG_PROVIDER_AUTO
#define OAI   TG_PROVIDER_OPENAI
#define ANT   TG_PROVIDER_ANTHROPIC
#define GEM   TG_PROVIDER_GEMINI


static const tg_class_case_t  tg_class_cases[] = {
    /* metered, POST only */
    { "POST", "/v1/chat/completions", AUTO, M, TG_API_CHAT, OAI, NULL },
    { "POST", "/v1/chat/completions/", AUTO, M, TG_API_CHAT, OAI, NULL },
    { "GET", "/v1/chat/completions", AUTO, O, TG_API_NONE, OAI, NULL },
    { "OTHER", "/v1/chat/completions", AUTO, O, TG_API_NONE, OAI, NULL },
    { "GET", "/v1/chat/completions/chatcmpl-1/messages", AUTO, O,
      TG_API_NONE, OAI, NULL },
    { "POST", "/v1/messages", AUTO, M, TG_API_MESSAGES, ANT, NULL },
    { "POST", "/v1/messages/batches", AUTO, O, TG_API_NONE, ANT, NULL },
    { "POST", "/v1/batches", AUTO, O, TG_API_NONE, OAI, NULL },
    { "POST", "/v1/images/generations", AUTO, O, TG_API_NONE, OAI, NULL },
    { "POST", "/v1/audio/speech", AUTO, O, TG_API_NONE, OAI, NULL },
    { "POST", "/v1/realtime/sessions", AUTO, O, TG_API_NONE, OAI, NULL },
    { "POST", "/v1/fine_tuning/jobs", AUTO, O, TG_API_NONE, OAI, NULL },
    { "POST", "/v1/assistants", AUTO, O, TG_API_NONE, OAI, NULL },
    { "POST", "/v1/vector_stores", AUTO, O, TG_API_NONE, OAI, NULL },
    { "POST", "/v1/complete", AUTO, O, TG_API_NONE, OAI, NULL },
    { "POST", "/v1/responses/compact", AUTO, M, TG_API_RESPONSES, OAI,
      NULL },
    { "GET", "/v1/responses/compact", AUTO, O, TG_API_NONE, OAI, NULL },
    { "POST", "/v1/responses/compact", ANT, O, TG_API_NONE, ANT, NULL },
    { "GET", "/v1/files/file-1/content", AUTO, O, TG_API_NONE, OAI, NULL },
    { "OTHER", "/v1/files/file-1", AUTO, O, TG_API_NONE, OAI, NULL },
    { "POST", "/v1beta/models/gemini-2.0-flash:batchGenerateContent", AUTO,
      O, TG_API_NONE, GEM, NULL },
    { "POST", "/v1beta/models/text-embedding-004:embedContent", AUTO, O,
      TG_API_NONE, GEM, NULL },

    /* free */
    { "GET", "/v1/models", AUTO, F, TG_API_NONE, OAI, NULL },
    { "GET", "/v1/models/gpt-4o", AUTO, F, TG_API_NONE, OAI, NULL },
    { "GET", "/v1/models/ft:gpt-4o-mini:org::abc", AUTO, F, TG_API_NONE,
      OAI, NULL },
    { "GET", "/openai/v1/models", AUTO, F, TG_API_NONE, OAI, NULL },
    { "OTHER", "/v1/models/ft:x", AUTO, O, TG_API_NONE, OAI, NULL },
    { "POST", "/v1/models", AUTO, O, TG_API_NONE, OAI, NULL },
    { "GET", "/v1/models/a/b", AUTO, O, TG_API_NONE, OAI, NULL },
    { "GET", "/v1/files/x/v1/models", AUTO, O, TG_API_NONE, OAI, NULL },
    { "GET", "/v1/chat/completions/v1/models", AUTO, O, TG_API_NONE, OAI,
      NULL },
    { "GET", "/v1beta/models", AUTO, F, TG_API_NONE, GEM, NULL },
    { "GET", "/v1beta/models/gemini-2.0-flash", AUTO, F, TG_API_NONE, GEM,
      NULL },
    { "GET", "/v1beta/openai/models", AUTO, F, TG_API_NONE, OAI, NULL },
    { "GET", "/openai/models", TG_PROVIDER_OPENAI, F, TG_API_NONE, OAI,
      NULL },
    { "POST", "/v1/messages/count_tokens", AUTO, F, TG_API_MESSAGES, ANT,
      NULL },
    { "GET", "/v1/messages/count_tokens", AUTO, O, TG_API_NONE, ANT, NULL },
    { "POST", "/v1/responses/input_tokens", AUTO, F, TG_API_RESPONSES, OAI,
      NULL },
    { "POST", "/v1beta/models/gemini-2.0-flash:countTokens", AUTO, F,
      TG_API_GENERATE, GEM, "gemini-2.0-flash" },
    { "POST", "/v1/projects/p/locations/l/publishers/google/models/"
      "gemini-2.0-flash:computeTokens", AUTO, F, TG_API_GENERATE, GEM,
      "gemini-2.0-flash" },
    { "GET", "/v1beta/models/gemini-2.0-flash:countTokens", AUTO, O,
      TG_API_NONE, GEM, NULL },

    /* Azure OpenAI deployments: the deployment is the model */
    { "POST", "/openai/deployments/gpt-4o/chat/completions", AUTO, M,
      TG_API_CHAT, OAI, "gpt-4o" },
    { "POST", "/openai/deployments/prod-4o/completions", AUTO, M,
      TG_API_COMPLETIONS, OAI, "prod-4o" },
    { "POST", "/openai/deployments/emb/embeddings", AUTO, M,
      TG_API_EMBEDDINGS, OAI, "emb" },
    { "POST", "/openai/deployments/o4/responses", AUTO, M,
      TG_API_RESPONSES, OAI, "o4" },
    { "POST", "/openai/deployments/v1/chat/completions", AUTO, M,
      TG_API_CHAT, OAI, "v1" },
    { "POST", "/openai/deployments/dalle/images/generations", AUTO, O,
      TG_API_NONE, OAI, NULL },
    { "POST", "/openai/deployments//chat/completions", AUTO, A,
      TG_API_NONE, AUTO, NULL },
    { "POST", "/openai/deployments/gpt-4o/chat/completions",
      TG_PROVIDER_ANTHROPIC, O, TG_API_NONE, ANT, NULL },

    /* Vertex AI */
    { "POST", "/v1/projects/p/locations/us-central1/publishers/google/"
      "models/gemini-2.0-flash:generateContent", AUTO, M, TG_API_GENERATE,
      GEM, "gemini-2.0-flash" },
    { "POST", "/v1/projects/p/locations/us-east5/publishers/anthropic/"
      "models/claude-sonnet-4@20250514:streamRawPredict", AUTO, M,
      TG_API_MESSAGES, ANT, "claude-sonnet-4@20250514" },
    { "POST", "/v1/projects/p/locations/us-east5/publishers/anthropic/"
      "models/claude-sonnet-4:rawPredict", TG_PROVIDER_GEMINI, M,
      TG_API_MESSAGES, ANT, "claude-sonnet-4" },
    { "POST", "/v1/projects/p/locations/l/publishers/meta/models/"
      "llama:rawPredict", AUTO, O, TG_API_NONE, AUTO, NULL },
    { "POST", "/v1/projects/p/locations/l/endpoints/openapi/chat/"
      "completions", AUTO, M, TG_API_CHAT, OAI, NULL },
    { "POST", "/v1beta/openai/chat/completions", AUTO, M, TG_API_CHAT, OAI,
      NULL },
    { "POST", "/v1beta/openai/chat/completions", TG_PROVIDER_GEMINI, M,
      TG_API_CHAT, OAI, NULL },
    { "POST", "/v1beta/openai/embeddings", AUTO, M, TG_API_EMBEDDINGS, OAI,
      NULL },

    /* Anthropic's OpenAI-compatible endpoint */
    { "POST", "/v1/chat/completions", TG_PROVIDER_ANTHROPIC, M, TG_API_CHAT,
      OAI, NULL },
    { "POST", "/v1/responses", TG_PROVIDER_ANTHROPIC, O, TG_API_NONE, ANT,
      NULL },

    /* what the provider could read otherwise */
    { "POST", "/v1/Chat/Completions", AUTO, A, TG_API_NONE, AUTO, NULL },
    { "POST", "/V1/chat/completions", AUTO, A, TG_API_NONE, AUTO, NULL },
    { "POST", "/v1/MESSAGES", AUTO, A, TG_API_NONE, AUTO, NULL },
    { "GET", "/v1/Models", AUTO, A, TG_API_NONE, AUTO, NULL },
    { "POST", "/v1beta/models/g:GenerateContent", AUTO, A, TG_API_NONE,
      AUTO, NULL },
    { "POST", "/v1/chat%2Fcompletions", AUTO, A, TG_API_NONE, AUTO, NULL },
    { "POST", "/v1//chat/completions", AUTO, A, TG_API_NONE, AUTO, NULL },
    { "POST", "/v1/chat/completions//", AUTO, A, TG_API_NONE, AUTO, NULL },
    { "POST", "/v1/chat/completions;x", AUTO, A, TG_API_NONE, AUTO, NULL },
    { "POST", "/v1/./chat/completions", AUTO, A, TG_API_NONE, AUTO, NULL },
    { "POST", "/v1/foo/../chat/completions", AUTO, A, TG_API_NONE, AUTO,
      NULL },
    { "POST", "/v1/chat/completions/.", AUTO, A, TG_API_NONE, AUTO, NULL },
    { "POST", "/v1/chat\\completions", AUTO, A, TG_API_NONE, AUTO, NULL },
    { "POST", "/v1/chat/completions\\x00", AUTO, A, TG_API_NONE, AUTO,
      NULL },
    { "POST", "/v1/chat/completions?x", AUTO, A, TG_API_NONE, AUTO, NULL },
    { "POST", "/v1/chat/compl etions", AUTO, A, TG_API_NONE, AUTO, NULL },
    { "POST", "v1/chat/completions", AUTO, A, TG_API_NONE, AUTO, NULL },
    { "POST", "", AUTO, A, TG_API_NONE, AUTO, NULL },
    { "GET", "/v1/Files/x", AUTO, O, TG_API_NONE, OAI, NULL },
    { "GET", "/", AUTO, O, TG_API_NONE, OAI, NULL },

    { NULL, NULL, AUTO, O, TG_API_NONE, AUTO, NULL }
};


static void
test_endpoint_classify(void)
{
    size_t                  len;
    tg_method_e             method;
    tg_endpoint_t           ep;
    tg_endpoint_kind_e      kind;
    const tg_class_case_t  *c;

    for (c = tg_class_cases; c->uri; c++) {
        method = strcmp(c->method, "GET") == 0 ? TG_METHOD_GET
                 : strcmp(c->method, "POST") == 0 ? TG_METHOD_POST
                 : TG_METHOD_OTHER;

        /* "\\x00" in a case stands for a NUL byte */
        len = strlen(c->uri);
        if (len > 4 && strcmp(c->uri + len - 4, "\\x00") == 0) {
            char  buf[256];

            memcpy(buf, c->uri, len - 4);
            buf[len - 4] = '\0';
            kind = tg_endpoint_classify(buf, len - 3, method, c->forced, &ep);

        } else {
            kind = tg_endpoint_classify(c->uri, len, method, c->forced, &ep);
        }

        ok(kind == c->kind && ep.kind == kind && ep.api == c->api
           && (c->provider == AUTO || ep.provider == c->provider)
           && ep.provider != AUTO,
           "classify: %s %s (forced %s): kind %d api %d provider %s",
           c->method, c->uri, tg_provider_name(c->forced), (int) kind,
           (int) ep.api, tg_provider_name(ep.provider));

        if (c->model != NULL) {
            ok(ep.model_len == strlen(c->model)
               && memcmp(c->uri + ep.model_off, c->model, ep.model_len) == 0,
               "classify: %s names the model %s", c->uri, c->model);

        } else if (c->api != TG_API_GENERATE) {
            ok(ep.model_len == 0, "classify: %s names no model in the URI",
               c->uri);
        }

        if (kind == A) {
            ok(ep.why != NULL, "classify: %s says why", c->uri);
        }
    }
}


static int
same_endpoint(const tg_endpoint_t *a, const tg_endpoint_t *b)
{
    return a->kind == b->kind && a->provider == b->provider
           && a->api == b->api && a->stream == b->stream
           && a->google == b->google && a->azure == b->azure
           && a->vertex == b->vertex && a->model_off == b->model_off
           && a->model_len == b->model_len && a->why == b->why;
}


/*
 * The folded reading is skipped for a path of lower case without ":": the
 * same answers as reading it always, on every case's path, lower-cased,
 * and every prefix of both, under every provider and method
 */
static void
test_endpoint_folding(void)
{
    int                     all, v, f, m;
    size_t                  len, n, i, count;
    char                    buf[256];
    tg_endpoint_t           a, b;
    const tg_class_case_t  *c;

    all = 1;
    count = 0;

    for (c = tg_class_cases; c->uri; c++) {
        len = strlen(c->uri);

        if (len >= sizeof(buf)) {
            continue;
        }

        for (v = 0; v < 2; v++) {
            for (i = 0; i < len; i++) {
                buf[i] = (v && c->uri[i] >= 'A' && c->uri[i] <= 'Z')
                         ? c->uri[i] | 0x20 : c->uri[i];
            }

            for (n = 0; n <= len; n++) {
                for (f = TG_PROVIDER_AUTO; f <= TG_PROVIDER_GEMINI; f++) {
                    for (m = TG_METHOD_GET; m <= TG_METHOD_OTHER; m++) {
                        tg_endpoint_classify(buf, n, m, f, &a);
                        tg_endpoint_classify_folding(buf, n, m, f, &b, 1);

                        all = all && same_endpoint(&a, &b);
                        count++;
                    }
                }
            }
        }
    }

    ok(all && count > 10000, "classify: the folded reading skipped only"
       " where it cannot matter (%zu paths)", count);
}


/* where the URI names the model, the body cannot name another */
static void
test_endpoint_uri_model(void)
{
    int             rc;
    const char     *uri, *body;
    tg_request_t    rq;
    tg_endpoint_t   ep;

    uri = "/openai/deployments/dep-1/chat/completions";
    body = "{\"model\":\"other\",\"messages\":[]}";
    tg_endpoint_detect(uri, strlen(uri), TG_PROVIDER_AUTO, &ep);
    rc = tg_request_inspect(&ep, uri, body, strlen(body), &rq);
    ok(rc == TG_OK, "uri model: azure parses");
    is_str(rq.model, "dep-1", "uri model: the deployment, not the body's");
    tg_request_free(&rq);

    uri = "/openai/deployments/dep-1/embeddings";
    body = "{\"input\":\"abc\"}";
    tg_endpoint_detect(uri, strlen(uri), TG_PROVIDER_AUTO, &ep);
    rc = tg_request_inspect(&ep, uri, body, strlen(body), &rq);
    ok(rc == TG_OK && rq.embeddings, "uri model: azure embeddings");
    is_str(rq.model, "dep-1", "uri model: no body model needed");
    tg_request_free(&rq);

    uri = "/v1/projects/p/locations/l/publishers/anthropic/models/"
          "claude-x@1:streamRawPredict";
    body = "{\"anthropic_version\":\"vertex-2023-10-16\",\"max_tokens\":5,"
           "\"stream\":true,\"messages\":[{\"role\":\"user\","
           "\"content\":\"hi\"}]}";
    tg_endpoint_detect(uri, strlen(uri), TG_PROVIDER_AUTO, &ep);
    rc = tg_request_inspect(&ep, uri, body, strlen(body), &rq);
    ok(rc == TG_OK, "uri model: vertex anthropic parses");
    is_str(rq.model, "claude-x@1", "uri model: vertex anthropic model");
    ok(rq.stream && rq.max_output == 5, "uri model: messages dialect");
    tg_request_free(&rq);

    uri = "/v1/messages/count_tokens";
    body = "{\"model\":\"claude-x\",\"messages\":[]}";
    tg_endpoint_detect(uri, strlen(uri), TG_PROVIDER_AUTO, &ep);
    rc = tg_request_inspect(&ep, uri, body, strlen(body), &rq);
    ok(rc == TG_OK, "uri model: count_tokens reads as messages");
    is_str(rq.model, "claude-x", "uri model: count_tokens body model");
    tg_request_free(&rq);
}


/* Google's system parameters: only those that change nothing we read */
static void
test_endpoint_google_query(void)
{
    size_t  i;

    static const char  *pass[] = {
        "", "alt=sse", "alt=json", "$alt=json", "key=k", "alt=sse&key=k",
        "prettyPrint=false", "&", "key=k&&alt=sse", NULL
    };
    static const char  *refuse[] = {
        "fields=candidates", "$fields=x", "alt=proto", "alt=media",
        "alt=SSE", "callback=f", "%61lt=proto", "ALT=sse", "alt",
        "key=k;fields=x", "alt=sse&fields=x", "=x", "x", NULL
    };

    for (i = 0; pass[i]; i++) {
        ok(tg_endpoint_google_query(pass[i], strlen(pass[i])) == NULL,
           "endpoint: google query \"%s\" passes", pass[i]);
    }

    for (i = 0; refuse[i]; i++) {
        ok(tg_endpoint_google_query(refuse[i], strlen(refuse[i])) != NULL,
           "endpoint: google query \"%s\" is refused", refuse[i]);
    }

    ok(tg_endpoint_google_query(NULL, 0) == NULL,
       "endpoint: no google query");
    ok(detect("/v1beta/models/x:generateContent", 0).google,
       "endpoint: gemini is google");
    ok(detect("/v1/projects/p/locations/l/publishers/anthropic/models/"
              "c:rawPredict", 0).google, "endpoint: vertex anthropic too");
    ok(!detect("/v1/chat/completions", 0).google,
       "endpoint: openai is not google");
    ok(!detect("/openai/deployments/d/chat/completions", 0).google,
       "endpoint: azure is not google");
}


/* gen_ai.provider.name and gen_ai.operation.name of each surface */
static void
test_endpoint_genai(void)
{
    size_t  i;

    static const struct {
        const char  *uri;
        const char  *provider;
        const char  *operation;
    } cases[] = {
        { "/v1/chat/completions", "openai", "chat" },
        { "/v1/completions", "openai", "text_completion" },
        { "/v1/responses", "openai", "chat" },
        { "/v1/embeddings", "openai", "embeddings" },
        { "/v1/messages", "anthropic", "chat" },
        { "/v1beta/models/g:generateContent", "gcp.gemini",
          "generate_content" },
        { "/v1beta/models/g:streamGenerateContent", "gcp.gemini",
          "generate_content" },
        { "/v1beta/openai/chat/completions", "gcp.gemini", "chat" },
        { "/v1/projects/p/locations/l/publishers/google/models/"
          "g:generateContent", "gcp.vertex_ai", "generate_content" },
        { "/v1/projects/p/locations/l/publishers/anthropic/models/"
          "c:streamRawPredict", "gcp.vertex_ai", "chat" },
        { "/v1/projects/p/locations/l/endpoints/openapi/chat/completions",
          "gcp.vertex_ai", "chat" },
        { "/openai/deployments/d/chat/completions", "azure.ai.openai",
          "chat" },
        { "/openai/deployments/d/embeddings", "azure.ai.openai",
          "embeddings" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tg_endpoint_t  ep = detect(cases[i].uri, TG_PROVIDER_AUTO);
        const char    *p = tg_endpoint_genai_provider(&ep);
        const char    *o = tg_endpoint_genai_operation(&ep);

        is_str(p ? p : "(null)", cases[i].provider, cases[i].uri);
        is_str(o ? o : "(null)", cases[i].operation, cases[i].uri);
    }

    {
        tg_endpoint_t  ep = detect("/v1/models", TG_PROVIDER_AUTO);

        ok(tg_endpoint_genai_provider(&ep) == NULL
           && tg_endpoint_genai_operation(&ep) == NULL,
           "endpoint: a model listing has no GenAI operation");
    }
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
    ep = detect("/v1/messages/count_tokens", 0);
    ok(ep.kind == TG_ENDPOINT_FREE && ep.api == TG_API_MESSAGES,
       "endpoint: count_tokens is free, its body a Messages request");

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
    ep = detect("/v1beta/models/x:countTokens", 0);
    ok(ep.kind == TG_ENDPOINT_FREE && ep.api == TG_API_GENERATE
       && ep.model_len == 1, "endpoint: gemini countTokens is free");
    ok(detect("/v1beta/tunedModels/x:generateContent", 0).api == TG_API_NONE,
       "endpoint: gemini needs /models/");

    ok(detect("/v1/messages", TG_PROVIDER_OPENAI).api == TG_API_NONE,
       "endpoint: forced openai ignores anthropic paths");
    ep = detect("/v1/chat/completions", TG_PROVIDER_OPENAI);
    ok(ep.api == TG_API_CHAT, "endpoint: forced openai");
    ok(detect("/v1/chat/completions", TG_PROVIDER_GEMINI).api == TG_API_NONE,
       "endpoint: forced gemini ignores openai paths");
    ok(detect("", 0).api == TG_API_NONE, "endpoint: empty uri");

    test_endpoint_classify();
    test_endpoint_folding();
    test_endpoint_uri_model();
    test_endpoint_google_query();
    test_endpoint_genai();
}
