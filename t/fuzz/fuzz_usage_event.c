/*
 * tg_usage_from_event() per API, on the events of an SSE stream, as the
 * body filter calls it: usage accumulates over the events.  Input: one
 * byte for the API, then the stream.
 */

#include "fuzz.h"
#include "tg_sse.h"
#include "tg_usage.h"


static const tg_api_e  fuzz_apis[] = {
    TG_API_CHAT, TG_API_COMPLETIONS, TG_API_RESPONSES, TG_API_EMBEDDINGS,
    TG_API_MESSAGES, TG_API_GENERATE, TG_API_NONE, TG_API_CHAT
};


typedef struct {
    tg_api_e     api;
    tg_usage_t   u;
} fuzz_ctx_t;


static void
fuzz_usage_check(const tg_usage_t *u)
{
    fuzz_assert(u->input >= 0 && u->cached >= 0 && u->cache_write >= 0
                && u->output >= 0);
    fuzz_assert(u->cached <= u->input);
    fuzz_assert(u->cache_write <= u->input);
    fuzz_assert(u->input <= 3000000000000LL && u->output <= 3000000000000LL);
}


static void
fuzz_on_event(void *data, const char *event, size_t event_len,
    const char *payload, size_t len)
{
    char        *p;
    fuzz_ctx_t  *ctx = data;

    (void) event;
    (void) event_len;

    /* exactly the event's bytes, so that ASan sees a read past them */
    p = fuzz_dup(payload, len);
    tg_usage_from_event(ctx->api, p, len, &ctx->u);
    free(p);

    fuzz_usage_check(&ctx->u);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char          *p;
    tg_sse_t       sse;
    fuzz_ctx_t     ctx;
    fuzz_input_t   in;

    in.p = data;
    in.len = size;

    memset(&ctx, 0, sizeof(fuzz_ctx_t));
    ctx.api = fuzz_apis[fuzz_byte(&in) & 7];

    p = fuzz_dup(in.p, in.len);

    tg_sse_init(&sse, 1024 * 1024);
    fuzz_assert(tg_sse_feed(&sse, p, in.len, fuzz_on_event, &ctx) == 0);
    tg_sse_finish(&sse, fuzz_on_event, &ctx);
    tg_sse_free(&sse);

    /* the whole input as one event's data too */
    memset(&ctx.u, 0, sizeof(tg_usage_t));
    fuzz_on_event(&ctx, NULL, 0, p, in.len);

    free(p);

    return 0;
}
