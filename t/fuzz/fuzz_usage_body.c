/*
 * tg_usage_from_body() per API, on a whole body and on a kept tail.
 * Input: one byte (API, and whether the body is whole), then the body.
 */

#include "fuzz.h"
#include "tg_usage.h"


static const tg_api_e  fuzz_apis[] = {
    TG_API_CHAT, TG_API_COMPLETIONS, TG_API_RESPONSES, TG_API_EMBEDDINGS,
    TG_API_MESSAGES, TG_API_GENERATE, TG_API_NONE, TG_API_CHAT
};


/* what the ledger may rely on, whatever a provider sends */
static void
fuzz_usage_check(const tg_usage_t *u)
{
    fuzz_assert(u->input >= 0 && u->cached >= 0 && u->cache_write >= 0
                && u->output >= 0);
    fuzz_assert(u->cached <= u->input);
    fuzz_assert(u->cache_write <= u->input);

    /* three parts of at most a trillion tokens each */
    fuzz_assert(u->input <= 3000000000000LL && u->output <= 3000000000000LL);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int           found, whole;
    char         *body;
    unsigned      c;
    tg_api_e      api;
    tg_usage_t    u;
    fuzz_input_t  in;

    in.p = data;
    in.len = size;

    c = fuzz_byte(&in);
    api = fuzz_apis[c & 7];
    whole = (c & 8) == 0;

    body = fuzz_dup(in.p, in.len);

    memset(&u, 0, sizeof(tg_usage_t));
    found = tg_usage_from_body(api, body, in.len, whole, &u);

    fuzz_assert(found == 0 || found == 1);
    fuzz_assert(!found || u.has_input || u.has_output);
    fuzz_usage_check(&u);

    free(body);

    return 0;
}
