/*
 * The Redis key space (DESIGN.md "Redis layout"): scope names escaped so
 * that no name can reach another's keys, keys with a hash tag per scope,
 * and UTC period strings.  Pure C, no nginx headers.
 */

#ifndef TG_KEYS_H
#define TG_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>


#define TG_SCOPE_USER  'u'
#define TG_SCOPE_TEAM  't'

/* "tg:{u:" + escaped name + "}" fits in this for names up to 256 bytes */
#define TG_KEY_PREFIX_MAX  (8 + 3 * 256)


/*
 * Letters, digits and "._@-" stay as they are; every other byte becomes
 * %XX (upper-case hex).  Returns the length written (at most 3 * len).
 */
size_t tg_key_escape(const char *name, size_t len, char *out);

/* "tg:{u:NAME}" into out; returns the length, or 0 if name is too long */
size_t tg_key_prefix(char scope, const char *name, size_t len, char *out);

/* "YYYY-MM" (8 bytes with NUL) and "YYYY-MM-DD" (11 bytes) for time t, UTC */
void tg_period_month(time_t t, char out[8]);
void tg_period_day(time_t t, char out[11]);

/* seconds from t to the start of the next UTC month / day */
int64_t tg_period_month_reset(time_t t);
int64_t tg_period_day_reset(time_t t);

#endif /* TG_KEYS_H */
