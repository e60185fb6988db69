/* core pieces of the ledger: limits, the key space, periods */

#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tg_keys.h"
#include "tg_limit.h"


static int64_t
limit(const char *s, int *kind)
{
    tg_limit_t  l;

    if (tg_limit_parse(s, strlen(s), &l) != 0) {
        return -1;
    }

    *kind = l.kind;

    return l.value;
}


static const char *
prefix(char scope, const char *name, size_t len)
{
    size_t       n;
    static char  buf[TG_KEY_PREFIX_MAX + 1];

    n = tg_key_prefix(scope, name, len, buf);
    buf[n] = '\0';

    return n ? buf : "(none)";
}


void
test_ledger_core(void)
{
    int                k;
    char               month[8], day[11];
    char               name[300];

    is_int(limit("1500usd", &k), 1500000000, "limit: 1500usd in micro-USD");
    is_int(k, TG_LIMIT_USD, "limit: usd kind");
    is_int(limit("0.25usd", &k), 250000, "limit: 0.25usd");
    is_int(limit("0.000001usd", &k), 1, "limit: a micro-dollar");
    is_int(limit("2000000tokens", &k), 2000000, "limit: tokens");
    is_int(k, TG_LIMIT_TOKENS, "limit: tokens kind");
    is_int(limit("500requests", &k), 500, "limit: requests");
    is_int(limit("0.0000001usd", &k), -1, "limit: finer than micro refused");
    is_int(limit("1.5tokens", &k), -1, "limit: fractional tokens refused");
    is_int(limit("usd", &k), -1, "limit: no number");
    is_int(limit("-5usd", &k), -1, "limit: negative");
    is_int(limit("5eur", &k), -1, "limit: unknown unit");
    is_int(limit("1.2.3usd", &k), -1, "limit: two dots");
    is_int(limit("99999999999999999999usd", &k), -1, "limit: overflow");
    is_int(limit("1000000000usd", &k), 1000000000000000LL,
           "limit: a billion dollars");
    is_int(limit("1000000000.000001usd", &k), -1,
           "limit: over a billion dollars");
    is_int(limit("100000000000000usd", &k), -1,
           "limit: no overflow scaling to micro-USD (fuzz)");
    is_int(limit("1000000000000000tokens", &k), 1000000000000000LL,
           "limit: a quadrillion tokens");

    is_str(prefix('u', "alice", 5), "tg:{u:alice}", "keys: plain name");
    is_str(prefix('t', "a.b_c@d-e", 9), "tg:{t:a.b_c@d-e}", "keys: safe bytes");
    is_str(prefix('u', "a}b:c\n*%", 8), "tg:{u:a%7Db%3Ac%0A%2A%25}",
           "keys: hostile bytes escaped");
    is_str(prefix('u', "bob}:x{u:alice", 14),
           "tg:{u:bob%7D%3Ax%7Bu%3Aalice}", "keys: cannot reach alice");
    memset(name, 'a', 257);
    is_str(prefix('u', name, 257), "(none)", "keys: over 256 bytes refused");
    is_str(prefix('u', "", 0), "(none)", "keys: empty refused");

    tg_period_month(1795046400, month);        /* 2026-11-19 00:00 UTC */
    tg_period_day(1795046400, day);
    is_str(month, "2026-11", "period: month");
    is_str(day, "2026-11-19", "period: day");
    is_int(tg_period_day_reset(1795046400 + 3600), 86400 - 3600,
           "period: day reset");
    is_int(tg_period_month_reset(1795046400), 12 * 86400,
           "period: month reset");
    tg_period_month(1798675200, month);        /* 2026-12-31 */
    is_str(month, "2026-12", "period: december");
    is_int(tg_period_month_reset(1798675200 + 86399), 1,
           "period: new year");
}
