#include <stdio.h>
#include <string.h>

#include "tg_route_cond.h"


typedef struct {
    const char      *name;
    tg_cond_type_e   type;
} tg_cond_flag_t;


static const tg_cond_flag_t  tg_cond_flags[] = {
    { "tools", TG_COND_TOOLS },
    { "stream", TG_COND_STREAM },
    { "sandbox", TG_COND_SANDBOX },
    { NULL, 0 }
};


/* a decimal in [0, max], the whole of s..s+len */
static int
tg_parse_number(const char *s, size_t len, int64_t max, int64_t *out)
{
    size_t   i;
    int64_t  n;

    if (len == 0) {
        return -1;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        n = n * 10 + (s[i] - '0');

        if (n > max) {
            return -1;
        }
    }

    *out = n;

    return 0;
}


#define tg_prefix(s, len, p)                                                 \
    ((len) >= sizeof(p) - 1 && memcmp(s, p, sizeof(p) - 1) == 0)


int
tg_cond_parse(const char *s, size_t len, tg_cond_t *c, char *err,
    size_t errlen)
{
    size_t                 n;
    const tg_cond_flag_t  *f;

    memset(c, 0, sizeof(tg_cond_t));

    if (tg_prefix(s, len, "prompt~")) {
        c->type = TG_COND_PROMPT;
        c->regex = s + sizeof("prompt~") - 1;
        c->regex_len = len - (sizeof("prompt~") - 1);

        if (c->regex_len == 0) {
            snprintf(err, errlen, "\"prompt~\" needs a regular expression");
            return -1;
        }

        return 0;
    }

    if (tg_prefix(s, len, "prompt_tokens<") || tg_prefix(s, len,
                                                         "prompt_tokens>"))
    {
        c->type = (s[sizeof("prompt_tokens") - 1] == '<')
                  ? TG_COND_TOKENS_LT : TG_COND_TOKENS_GT;
        n = sizeof("prompt_tokens<") - 1;

        if (tg_parse_number(s + n, len - n, 1000000000000LL, &c->number)
            != 0)
        {
            snprintf(err, errlen, "\"%.*s\" needs a token count",
                     (int) n, s);
            return -1;
        }

        return 0;
    }

    if (tg_prefix(s, len, "budget>=")) {
        c->type = TG_COND_BUDGET_GE;
        n = sizeof("budget>=") - 1;

        if (len < n + 2 || s[len - 1] != '%'
            || tg_parse_number(s + n, len - n - 1, 100, &c->number) != 0)
        {
            snprintf(err, errlen, "\"budget>=\" needs a percentage from 0%%"
                     " to 100%%, as \"budget>=80%%\"");
            return -1;
        }

        return 0;
    }

    if (len > 0 && s[0] == '!') {
        c->negate = 1;
        s++;
        len--;
    }

    for (f = tg_cond_flags; f->name; f++) {
        if (len == strlen(f->name) && memcmp(s, f->name, len) == 0) {
            c->type = f->type;
            return 0;
        }
    }

    snprintf(err, errlen, "unknown condition; expected prompt~REGEX,"
             " prompt_tokens<N, prompt_tokens>N, budget>=P%%, [!]tools,"
             " [!]stream or [!]sandbox");

    return -1;
}


int
tg_cond_holds(const tg_cond_t *c, const tg_cond_facts_t *f)
{
    int  v;

    switch (c->type) {

    case TG_COND_TOKENS_LT:
        return f->prompt_tokens < c->number;

    case TG_COND_TOKENS_GT:
        return f->prompt_tokens > c->number;

    case TG_COND_BUDGET_GE:
        /* unknown spend never holds: a route must not fire by accident */
        return f->budget_pct >= 0 && f->budget_pct >= c->number;

    case TG_COND_TOOLS:
        v = f->tools;
        break;

    case TG_COND_STREAM:
        v = f->stream;
        break;

    case TG_COND_SANDBOX:
        v = f->sandbox;
        break;

    default:
        return 0;
    }

    return c->negate ? !v : !!v;
}
