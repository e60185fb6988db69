/*
 * tg_cond_parse() and tg_cond_holds().  Input: the request's facts (a
 * byte of flags, a byte for the budget share, eight bytes of prompt
 * tokens), then the condition as written in tokenguard_route.
 */

#include "fuzz.h"
#include "tg_route_cond.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int               i, rc, holds;
    char             *s, *neg, err[256];
    size_t            len;
    unsigned          flags;
    uint64_t          tokens;
    tg_cond_t         c, n;
    fuzz_input_t      in;
    tg_cond_facts_t   f;

    in.p = data;
    in.len = size;

    flags = fuzz_byte(&in);
    f.tools = flags & 1;
    f.stream = (flags >> 1) & 1;
    f.sandbox = (flags >> 2) & 1;
    f.budget_pct = (int) (fuzz_byte(&in) % 102) - 1;

    tokens = 0;
    for (i = 0; i < 8; i++) {
        tokens = tokens << 8 | fuzz_byte(&in);
    }

    /* an estimate is never negative */
    f.prompt_tokens = (int64_t) (tokens >> 1);

    len = in.len;
    s = fuzz_dup(in.p, len);

    err[0] = '\0';
    rc = tg_cond_parse(s, len, &c, err, sizeof(err));

    fuzz_assert(rc == 0 || rc == -1);

    if (rc == -1) {
        fuzz_assert(err[0] != '\0' && strlen(err) < sizeof(err));
        free(s);
        return 0;
    }

    fuzz_assert(c.type >= TG_COND_PROMPT && c.type <= TG_COND_SANDBOX);

    switch (c.type) {

    case TG_COND_PROMPT:
        fuzz_assert(c.regex > s && c.regex_len > 0
                    && c.regex + c.regex_len == s + len);
        break;

    case TG_COND_TOKENS_LT:
    case TG_COND_TOKENS_GT:
        fuzz_assert(c.number >= 0 && c.number <= 1000000000000LL);
        break;

    case TG_COND_BUDGET_GE:
        fuzz_assert(c.number >= 0 && c.number <= 100);
        break;

    default:
        break;
    }

    holds = tg_cond_holds(&c, &f);
    fuzz_assert(holds == 0 || holds == 1);

    if (c.type == TG_COND_BUDGET_GE && f.budget_pct < 0) {
        fuzz_assert(holds == 0);
    }

    /* "!flag" holds exactly when "flag" does not */
    if (c.type >= TG_COND_TOOLS && !c.negate) {
        neg = malloc(len + 1);
        fuzz_assert(neg != NULL);
        neg[0] = '!';
        memcpy(neg + 1, s, len);

        fuzz_assert(tg_cond_parse(neg, len + 1, &n, err, sizeof(err)) == 0);
        fuzz_assert(n.type == c.type && n.negate);
        fuzz_assert(tg_cond_holds(&n, &f) == !holds);

        free(neg);
    }

    free(s);

    return 0;
}
