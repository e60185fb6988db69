#include <string.h>

#include "tap.h"
#include "tg_template.h"


static const char *
expand(const char *tpl, const char *subject, const int *caps, int ncaps)
{
    long            n;
    tg_template_t   t;
    static char     buf[64];

    if (tg_template_parse(tpl, strlen(tpl), &t) != 0) {
        return "(parse error)";
    }

    n = tg_template_expand(&t, subject, caps, ncaps, buf, sizeof(buf) - 1);
    if (n < 0) {
        return "(too long)";
    }

    buf[n] = '\0';

    return buf;
}


void
test_template(void)
{
    tg_template_t  t;
    int            caps[] = { 0, 13, 7, 13, -1, -1 };

    is_str(expand("gpt-4o-mini", "x", caps, 0), "gpt-4o-mini",
           "template: literal");
    is_str(expand("claude-$1", "gpt-4o-latest", caps, 2), "claude-latest",
           "template: capture");
    is_str(expand("a$0b", "gpt-4o-latest", caps, 2), "agpt-4o-latestb",
           "template: whole match");
    is_str(expand("m$2", "gpt-4o-latest", caps, 3), "m",
           "template: unset group is empty");
    is_str(expand("cost$$", "x", caps, 0), "cost$", "template: $$");

    ok(tg_template_parse("m$", 2, &t) != 0, "template: trailing $ refused");
    ok(tg_template_parse("m$x", 3, &t) != 0, "template: $x refused");
    ok(tg_template_parse("", 0, &t) != 0, "template: empty refused");
    ok(tg_template_parse("$1$2", 4, &t) == 0 && t.max_capture == 2,
       "template: highest capture");
    is_str(expand("$1$1$1$1$1$1$1$1$1$1$1", "gpt-4o-latest", caps, 2),
           "(too long)", "template: output bounded");
}
