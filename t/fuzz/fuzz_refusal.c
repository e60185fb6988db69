/*
 * tg_refusal_body().  Input: a byte for the provider, one for the
 * refusal, then the message (it names what the caller sent: any bytes).
 * The body is JSON in the provider's shape, whatever the message.
 */

#include <jansson.h>

#include "fuzz.h"
#include "tg_refusal.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                     *message, *body;
    size_t                    len, n;
    json_t                   *root, *err, *m, *s;
    fuzz_input_t              in;
    json_error_t              jerr;
    tg_refusal_e              r;
    tg_provider_e             provider;
    const tg_refusal_info_t  *info;

    in.p = data;
    in.len = size;

    provider = (tg_provider_e) (fuzz_byte(&in) % 4);
    r = (tg_refusal_e) (fuzz_byte(&in) % (TG_REFUSE_STORE + 1));
    info = tg_refusal_info(r);

    /* a C string, as the module passes it */
    n = in.len;
    message = malloc(n + 1);
    fuzz_assert(message != NULL);
    memcpy(message, in.p, n);
    message[n] = '\0';
    n = strlen(message);

    body = tg_refusal_body(provider, r, message, &len);
    fuzz_assert(body != NULL && strlen(body) == len);

    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    fuzz_assert(root != NULL);

    err = json_object_get(root, "error");
    fuzz_assert(json_is_object(err));

    m = json_object_get(err, "message");
    fuzz_assert(json_is_string(m) && json_string_length(m) == n);

    /* a UTF-8 message goes out as it is */
    s = json_string(message);
    if (s != NULL) {
        fuzz_assert(json_equal(s, m));
        json_decref(s);
    }

    switch (provider) {

    case TG_PROVIDER_ANTHROPIC:
        fuzz_assert(strcmp(json_string_value(json_object_get(err, "type")),
                           info->anthropic_type) == 0);
        break;

    case TG_PROVIDER_GEMINI:
        fuzz_assert(json_integer_value(json_object_get(err, "code"))
                    == info->status);
        break;

    default:
        fuzz_assert(strcmp(json_string_value(json_object_get(err, "code")),
                           info->code) == 0);
        break;
    }

    json_decref(root);
    free(body);
    free(message);

    return 0;
}
