/*
 * Periods, UTC: a month "YYYY-MM" or a day "YYYY-MM-DD", as the module
 * names its hashes (core/tg_keys.c computes the current ones).
 */

#include <string.h>
#include <time.h>

#include "tgc.h"


static int
tgc_digits(const char *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }

    return 1;
}


/* 0 if s is a real month or day; *is_day tells which */
int
tgc_period_check(const char *s, int *is_day)
{
    int     year, month, day, mdays;
    size_t  len;

    static const int  days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
                                 30, 31 };

    len = strlen(s);

    if ((len != 7 && len != 10) || !tgc_digits(s, 4) || s[4] != '-'
        || !tgc_digits(s + 5, 2))
    {
        return -1;
    }

    year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10
           + (s[3] - '0');
    month = (s[5] - '0') * 10 + (s[6] - '0');

    if (year < 1970 || month < 1 || month > 12) {
        return -1;
    }

    if (len == 7) {
        *is_day = 0;
        return 0;
    }

    if (s[7] != '-' || !tgc_digits(s + 8, 2)) {
        return -1;
    }

    day = (s[8] - '0') * 10 + (s[9] - '0');
    mdays = days[month - 1];

    if (month == 2
        && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
    {
        mdays = 29;
    }

    if (day < 1 || day > mdays) {
        return -1;
    }

    *is_day = 1;

    return 0;
}


void
tgc_period_current(int day, char out[11])
{
    if (day) {
        tg_period_day(time(NULL), out);

    } else {
        tg_period_month(time(NULL), out);
    }
}


const char *
tgc_period_kind(const tgc_opts_t *o)
{
    return o->period_day ? "UTC day" : "UTC month";
}
