#include <string.h>

#include "tap.h"
#include "tg_route_cond.h"


static int
parse(const char *s, tg_cond_t *c)
{
    char  err[128];

    return tg_cond_parse(s, strlen(s), c, err, sizeof(err));
}


void
test_route_cond(void)
{
    tg_cond_t        c;
    tg_cond_facts_t  f = { 100, -1, 1, 0, 0 };

    ok(parse("prompt~^summar", &c) == 0 && c.type == TG_COND_PROMPT
       && c.regex_len == 7, "cond: prompt~");
    ok(parse("prompt~", &c) != 0, "cond: prompt~ needs a regex");

    ok(parse("prompt_tokens<200", &c) == 0 && c.type == TG_COND_TOKENS_LT
       && c.number == 200, "cond: prompt_tokens<");
    ok(tg_cond_holds(&c, &f), "cond: 100 < 200 holds");
    ok(parse("prompt_tokens>100", &c) == 0 && !tg_cond_holds(&c, &f),
       "cond: 100 > 100 does not hold");
    ok(parse("prompt_tokens<", &c) != 0, "cond: prompt_tokens< needs N");
    ok(parse("prompt_tokens<1x", &c) != 0, "cond: prompt_tokens<1x refused");

    ok(parse("budget>=80%", &c) == 0 && c.type == TG_COND_BUDGET_GE
       && c.number == 80, "cond: budget>=80%%");
    ok(!tg_cond_holds(&c, &f), "cond: budget unknown never holds");
    f.budget_pct = 85;
    ok(tg_cond_holds(&c, &f), "cond: budget 85%% >= 80%%");
    ok(parse("budget>=80", &c) != 0, "cond: budget needs %%");
    ok(parse("budget>=101%", &c) != 0, "cond: budget over 100%% refused");
    ok(parse("budget>=%", &c) != 0, "cond: budget needs a number");

    ok(parse("tools", &c) == 0 && tg_cond_holds(&c, &f), "cond: tools");
    ok(parse("!tools", &c) == 0 && !tg_cond_holds(&c, &f), "cond: !tools");
    ok(parse("stream", &c) == 0 && !tg_cond_holds(&c, &f), "cond: stream");
    ok(parse("!stream", &c) == 0 && tg_cond_holds(&c, &f), "cond: !stream");
    ok(parse("sandbox", &c) == 0 && !tg_cond_holds(&c, &f), "cond: sandbox");
    ok(parse("!sandbox", &c) == 0 && tg_cond_holds(&c, &f),
       "cond: !sandbox");
    ok(parse("toolz", &c) != 0, "cond: unknown refused");
    ok(parse("!", &c) != 0, "cond: bare ! refused");
}
