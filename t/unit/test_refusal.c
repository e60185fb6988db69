#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tg_refusal.h"


void
test_refusal(void)
{
    char    *b;
    size_t   len;

    b = tg_refusal_body(TG_PROVIDER_OPENAI, TG_REFUSE_BUDGET, "no \"money\"",
                        &len);
    is_str(b, "{\"error\":{\"message\":\"no \\\"money\\\"\",\"type\":"
              "\"tokenguard_error\",\"code\":\"budget_exceeded\","
              "\"param\":null}}", "refusal: openai shape");
    is_int(len, strlen(b), "refusal: length");
    free(b);

    b = tg_refusal_body(TG_PROVIDER_ANTHROPIC, TG_REFUSE_PROMPT, "m", &len);
    is_str(b, "{\"type\":\"error\",\"error\":{\"type\":\"permission_error\","
              "\"message\":\"m\"}}", "refusal: anthropic shape");
    free(b);

    b = tg_refusal_body(TG_PROVIDER_GEMINI, TG_REFUSE_IDENTITY, "m", &len);
    is_str(b, "{\"error\":{\"code\":401,\"message\":\"m\",\"status\":"
              "\"UNAUTHENTICATED\"}}", "refusal: gemini shape");
    free(b);

    /* fuzz: a Latin-1 user name made json_pack() fail: a 500, no 429 */
    b = tg_refusal_body(TG_PROVIDER_OPENAI, TG_REFUSE_BUDGET,
                        "user \"m\xfcller\" is over", &len);
    is_str(b, "{\"error\":{\"message\":\"user \\\"m?ller\\\" is over\","
              "\"type\":\"tokenguard_error\",\"code\":\"budget_exceeded\","
              "\"param\":null}}", "refusal: a message that is not UTF-8");
    free(b);

    b = tg_refusal_body(TG_PROVIDER_GEMINI, TG_REFUSE_MODEL,
                        "mod\xc3\xa8le \xe2\x82", &len);
    is_str(b, "{\"error\":{\"code\":403,\"message\":\"mod??le ??\","
              "\"status\":\"PERMISSION_DENIED\"}}",
           "refusal: a message cut inside a character");
    free(b);

    b = tg_refusal_body(TG_PROVIDER_ANTHROPIC, TG_REFUSE_MODEL,
                        "mod\xc3\xa8le", &len);
    is_str(b, "{\"type\":\"error\",\"error\":{\"type\":"
              "\"permission_error\",\"message\":\"mod\xc3\xa8le\"}}",
           "refusal: UTF-8 kept");
    free(b);

    is_int(tg_refusal_info(TG_REFUSE_TOO_LARGE)->status, 413,
           "refusal: body_too_large is 413");
    is_str(tg_refusal_info(TG_REFUSE_STORE)->decision, "store_error",
           "refusal: store decision");
}
