/*
 * tokenguardctl sandbox grant user NAME AMOUNT [month|day]
 *
 * The user's experiment budget: sandbox_usd_month (or sandbox_usd_day) in
 * tg:{u:NAME}:limits, AMOUNT in dollars.  It wins over
 * tokenguard_sandbox_allowance and counts only requests that
 * tokenguard_sandbox marks.
 */

#include <string.h>

#include "tgc.h"


int
tgc_cmd_sandbox(tgc_t *c)
{
    int          rc, field;
    char         scope;
    int64_t      value;
    tgc_opts_t  *o, sub;

    o = c->opts;

    if (o->nargs < 4 || o->nargs > 5 || strcmp(o->args[0], "grant") != 0) {
        return tgc_usage_error("usage: tokenguardctl sandbox grant user NAME "
                               "AMOUNT [month|day]");
    }

    sub = *o;
    sub.args = o->args + 1;

    rc = tgc_scope_arg(&sub, "sandbox grant", &scope);
    if (rc != TGC_OK) {
        return rc;
    }

    if (scope != TG_SCOPE_USER) {
        return tgc_usage_error("sandbox grant: allowances are per user "
                               "(sandbox requests skip the team)");
    }

    field = TGC_LIM_SANDBOX_USD_MONTH;

    if (o->nargs == 5) {
        if (strcmp(o->args[4], "day") == 0) {
            field = TGC_LIM_SANDBOX_USD_DAY;

        } else if (strcmp(o->args[4], "month") != 0) {
            return tgc_usage_error("sandbox grant: \"%s\" is not month or "
                                   "day", o->args[4]);
        }
    }

    if (strcmp(o->args[3], "none") == 0) {
        return tgc_usage_error("sandbox grant: AMOUNT is dollars; \"limit "
                               "clear user NAME %s\" removes the grant",
                               tgc_limit_names[field]);
    }

    rc = tgc_limit_value(field, o->args[3], &value);
    if (rc != TGC_OK) {
        return rc;
    }

    return tgc_limit_write(c, scope, o->args[2], field, value);
}
