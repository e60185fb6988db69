/*
 * tg_request_inspect() in every dialect.  Input: one byte that picks the
 * API, for Gemini a URI line, then the request body.
 */

#include "fuzz.h"
#include "tg_request.h"


static const tg_api_e  fuzz_apis[] = {
    TG_API_CHAT, TG_API_COMPLETIONS, TG_API_RESPONSES, TG_API_EMBEDDINGS,
    TG_API_MESSAGES, TG_API_GENERATE, TG_API_NONE
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int            rc;
    char          *body, *uri;
    size_t         len;
    const char    *line;
    fuzz_input_t   in;
    tg_request_t   rq;
    tg_endpoint_t  ep;

    in.p = data;
    in.len = size;

    memset(&ep, 0, sizeof(tg_endpoint_t));
    ep.api = fuzz_apis[fuzz_byte(&in) % 7];
    ep.provider = (ep.api == TG_API_MESSAGES) ? TG_PROVIDER_ANTHROPIC
                                              : TG_PROVIDER_OPENAI;
    uri = NULL;

    if (ep.api == TG_API_GENERATE) {
        line = fuzz_line(&in, &len);
        uri = fuzz_dup(line, len);

        tg_endpoint_detect(uri, len, TG_PROVIDER_GEMINI, &ep);

        if (ep.api != TG_API_GENERATE) {
            /* not a Gemini URI: the body still gets parsed */
            free(uri);
            uri = fuzz_dup("/v1beta/models/gemini-2.0-flash:generateContent",
                           47);
            tg_endpoint_detect(uri, 47, TG_PROVIDER_GEMINI, &ep);
            fuzz_assert(ep.api == TG_API_GENERATE);
        }
    }

    body = fuzz_dup(in.p, in.len);

    rc = tg_request_inspect(&ep, uri, body, in.len, &rq);

    fuzz_assert(rc == TG_OK || rc == TG_INVALID);
    fuzz_assert(memchr(rq.error, '\0', sizeof(rq.error)) != NULL);

    /* the seeds' prompts carry this word: errors never quote a prompt */
    fuzz_assert(strstr(rq.error, "CANARY") == NULL);

    if (rc == TG_OK) {
        fuzz_assert(rq.model != NULL && rq.model_len > 0
                    && rq.model_len <= TG_MODEL_MAX
                    && strlen(rq.model) == rq.model_len);
        fuzz_assert(rq.max_output >= -1 && rq.max_output <= 1000000000000LL);
        fuzz_assert(rq.choices >= 1 && rq.choices <= 1000000000000LL);
        fuzz_assert(rq.prompt_tokens >= 0);
        fuzz_assert(rq.prompt_len == 0
                    || (rq.prompt_len < rq.prompt_size
                        && rq.prompt[rq.prompt_len] == '\0'));
        fuzz_assert(!rq.embeddings || rq.max_output == 0);
        /* a model name is printable ASCII: it goes into headers */
        fuzz_assert(tg_request_model_valid(rq.model, rq.model_len));
        /* the prompt text never outgrows the body it was allocated for */
        fuzz_assert(rq.prompt_len <= in.len && rq.prompt_size == in.len + 2);

    } else {
        fuzz_assert(rq.error[0] != '\0');
    }

    tg_request_free(&rq);
    free(body);
    free(uri);

    return 0;
}
