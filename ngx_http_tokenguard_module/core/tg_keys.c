#include <string.h>

#include "tg_keys.h"


size_t
tg_key_escape(const char *name, size_t len, char *out)
{
    size_t          i, n;
    unsigned char   c;
    static const char  hex[] = "0123456789ABCDEF";

    n = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) name[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@'
            || c == '-')
        {
            out[n++] = (char) c;

        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 0xf];
        }
    }

    return n;
}


size_t
tg_key_prefix(char scope, const char *name, size_t len, char *out)
{
    size_t  n;

    if (len == 0 || len > 256) {
        return 0;
    }

    memcpy(out, "tg:{", 4);
    out[4] = scope;
    out[5] = ':';
    n = 6 + tg_key_escape(name, len, out + 6);
    out[n++] = '}';

    return n;
}


void
tg_period_month(time_t t, char out[8])
{
    struct tm  tm;

    gmtime_r(&t, &tm);
    strftime(out, 8, "%Y-%m", &tm);
}


void
tg_period_day(time_t t, char out[11])
{
    struct tm  tm;

    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}


int64_t
tg_period_month_reset(time_t t)
{
    struct tm  tm;

    gmtime_r(&t, &tm);

    tm.tm_mday = 1;
    tm.tm_hour = 0;
    tm.tm_min = 0;
    tm.tm_sec = 0;

    if (++tm.tm_mon == 12) {
        tm.tm_mon = 0;
        tm.tm_year++;
    }

    return (int64_t) (timegm(&tm) - t);
}


int64_t
tg_period_day_reset(time_t t)
{
    return 86400 - (int64_t) (t % 86400);
}
