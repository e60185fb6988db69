#include <string.h>

#include "tg_template.h"


static int
tg_template_add(tg_template_t *t, const char *text, size_t len, int capture)
{
    tg_template_part_t  *p;

    if (text != NULL && len == 0) {
        return 0;
    }

    if (t->nparts == TG_TEMPLATE_MAX_PARTS) {
        return -1;
    }

    p = &t->parts[t->nparts++];
    p->text = text;
    p->len = len;
    p->capture = capture;

    if (text == NULL && capture > t->max_capture) {
        t->max_capture = capture;
    }

    return 0;
}


int
tg_template_parse(const char *s, size_t len, tg_template_t *t)
{
    size_t  i, lit;

    memset(t, 0, sizeof(tg_template_t));
    t->max_capture = -1;

    if (len == 0) {
        return -1;
    }

    lit = 0;

    for (i = 0; i < len; i++) {
        if (s[i] != '$') {
            continue;
        }

        if (i + 1 >= len) {
            return -1;
        }

        if (s[i + 1] == '$') {
            /* the literal so far plus one dollar */
            if (tg_template_add(t, s + lit, i + 1 - lit, 0) != 0) {
                return -1;
            }

        } else if (s[i + 1] >= '0' && s[i + 1] <= '9') {
            if (tg_template_add(t, s + lit, i - lit, 0) != 0
                || tg_template_add(t, NULL, 0, s[i + 1] - '0') != 0)
            {
                return -1;
            }

        } else {
            return -1;
        }

        i++;
        lit = i + 1;
    }

    return tg_template_add(t, s + lit, len - lit, 0);
}


long
tg_template_expand(const tg_template_t *t, const char *subject,
    const int *caps, int ncaps, char *buf, size_t size)
{
    int                        i;
    size_t                     n, len;
    const char                *src;
    const tg_template_part_t  *p;

    len = 0;

    for (i = 0; i < t->nparts; i++) {
        p = &t->parts[i];

        if (p->text) {
            src = p->text;
            n = p->len;

        } else if (p->capture < ncaps && caps[2 * p->capture] >= 0) {
            src = subject + caps[2 * p->capture];
            n = caps[2 * p->capture + 1] - caps[2 * p->capture];

        } else {
            continue;
        }

        if (len + n > size) {
            return -1;
        }

        memcpy(buf + len, src, n);
        len += n;
    }

    return (long) len;
}
