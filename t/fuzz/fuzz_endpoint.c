/*
 * tg_endpoint_detect().  Input: a byte for the configured provider
 * (tokenguard_provider), then the URI path.
 */

#include "fuzz.h"
#include "tg_endpoint.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char           *uri;
    size_t          len;
    fuzz_input_t    in;
    tg_provider_e   forced;
    tg_endpoint_t   ep, again;

    in.p = data;
    in.len = size;

    forced = (tg_provider_e) (fuzz_byte(&in) % 4);

    len = in.len;
    uri = fuzz_dup(in.p, len);

    fuzz_assert(tg_endpoint_detect(uri, len, forced, &ep) == 0);

    fuzz_assert(ep.provider != TG_PROVIDER_AUTO);
    fuzz_assert(ep.api >= TG_API_NONE && ep.api <= TG_API_GENERATE);
    fuzz_assert(forced == TG_PROVIDER_AUTO || ep.provider == forced);
    fuzz_assert(strcmp(tg_provider_name(ep.provider), "auto") != 0);

    if (ep.api == TG_API_GENERATE) {
        fuzz_assert(ep.provider == TG_PROVIDER_GEMINI);
        fuzz_assert(ep.model_len > 0 && ep.model_off + ep.model_len < len);
        fuzz_assert(memchr(uri + ep.model_off, '/', ep.model_len) == NULL);

    } else {
        fuzz_assert(ep.model_off == 0 && ep.model_len == 0);
    }

    if (ep.api != TG_API_NONE) {
        /* auto finds what the provider it found would find */
        fuzz_assert(tg_endpoint_detect(uri, len, ep.provider, &again) == 0);
        fuzz_assert(again.api == ep.api && again.provider == ep.provider
                    && again.stream == ep.stream
                    && again.model_off == ep.model_off
                    && again.model_len == ep.model_len);
    }

    free(uri);

    return 0;
}
