#include <string.h>

#include "tg_limit.h"


/* at most a billion dollars, a quadrillion tokens or requests */
#define TG_LIMIT_MAX  1000000000000000LL


static const char  *tg_limit_units[] = { "usd", "tokens", "requests" };


int
tg_limit_parse(const char *s, size_t len, tg_limit_t *limit)
{
    int      k, frac, digits;
    size_t   i, n, unit;
    int64_t  v;

    for (k = 0; k < 3; k++) {
        unit = strlen(tg_limit_units[k]);

        if (len > unit
            && memcmp(s + len - unit, tg_limit_units[k], unit) == 0)
        {
            break;
        }
    }

    if (k == 3) {
        return -1;
    }

    n = len - strlen(tg_limit_units[k]);
    v = 0;
    frac = -1;
    digits = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == '.' && frac == -1 && k == TG_LIMIT_USD) {
            frac = 0;
            continue;
        }

        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        if (frac >= 0 && ++frac > 6) {
            return -1;              /* finer than a micro-dollar */
        }

        v = v * 10 + (s[i] - '0');
        digits++;

        if (v > TG_LIMIT_MAX) {
            return -1;
        }
    }

    if (digits == 0) {
        return -1;
    }

    if (k == TG_LIMIT_USD) {
        /* the maximum is in micro-USD: "9999999999999usd" would overflow */
        for (frac = frac < 0 ? 0 : frac; frac < 6; frac++) {
            if (v > TG_LIMIT_MAX / 10) {
                return -1;
            }

            v *= 10;
        }
    }

    limit->kind = (tg_limit_kind_e) k;
    limit->value = v;

    return 0;
}


int
tg_period_parse(const char *s, size_t len, tg_period_e *period)
{
    if (len == 5 && memcmp(s, "month", 5) == 0) {
        *period = TG_PERIOD_MONTH;
        return 0;
    }

    if (len == 3 && memcmp(s, "day", 3) == 0) {
        *period = TG_PERIOD_DAY;
        return 0;
    }

    return -1;
}


const char *
tg_limit_kind_name(tg_limit_kind_e kind)
{
    return tg_limit_units[kind];
}
