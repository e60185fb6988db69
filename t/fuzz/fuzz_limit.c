/*
 * tg_limit_parse() and tg_period_parse(), the arguments of
 * tokenguard_cap and tokenguard_sandbox_allowance.  A parsed limit,
 * printed back in its canonical form, parses to the same value.
 */

#include <inttypes.h>

#include "fuzz.h"
#include "tg_limit.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          rc;
    char        *s, buf[64];
    size_t       n;
    tg_limit_t   limit, again;
    tg_period_e  period;

    s = fuzz_dup(data, size);

    rc = tg_period_parse(s, size, &period);
    fuzz_assert(rc == -1
                || (rc == 0 && (period == TG_PERIOD_MONTH
                                || period == TG_PERIOD_DAY)));

    rc = tg_limit_parse(s, size, &limit);
    fuzz_assert(rc == 0 || rc == -1);

    if (rc == 0) {
        fuzz_assert(limit.kind >= TG_LIMIT_USD
                    && limit.kind <= TG_LIMIT_REQUESTS);

        /* a billion dollars, a quadrillion tokens or requests */
        fuzz_assert(limit.value >= 0
                    && limit.value <= 1000000000000000LL);

        if (limit.kind == TG_LIMIT_USD) {
            n = snprintf(buf, sizeof(buf), "%" PRId64 ".%06" PRId64 "usd",
                         limit.value / 1000000, limit.value % 1000000);

        } else {
            n = snprintf(buf, sizeof(buf), "%" PRId64 "%s", limit.value,
                         tg_limit_kind_name(limit.kind));
        }

        fuzz_assert(n < sizeof(buf));
        fuzz_assert(tg_limit_parse(buf, n, &again) == 0);
        fuzz_assert(again.kind == limit.kind && again.value == limit.value);
    }

    free(s);

    return 0;
}
