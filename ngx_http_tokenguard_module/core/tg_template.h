/*
 * Route targets with regex captures: "gpt-4o-mini$1" -> parts.
 * Pure C, no nginx headers.
 */

#ifndef TG_TEMPLATE_H
#define TG_TEMPLATE_H

#include <stddef.h>


#define TG_TEMPLATE_MAX_PARTS  16


typedef struct {
    const char  *text;          /* literal text, or NULL for a capture */
    size_t       len;
    int          capture;       /* 0..9 */
} tg_template_part_t;


typedef struct {
    tg_template_part_t  parts[TG_TEMPLATE_MAX_PARTS];
    int                 nparts;
    int                 max_capture;    /* -1: none used */
} tg_template_t;


/* "$N" (N a digit) is capture N, "$$" a dollar; returns 0 or -1 */
int tg_template_parse(const char *s, size_t len, tg_template_t *t);

/*
 * Expands into buf (size bytes); caps[2*i], caps[2*i+1] are the offsets
 * of capture i in subject, -1 for an unset group.  Returns the length,
 * or -1 if buf is too small.
 */
long tg_template_expand(const tg_template_t *t, const char *subject,
    const int *caps, int ncaps, char *buf, size_t size);

#endif /* TG_TEMPLATE_H */
