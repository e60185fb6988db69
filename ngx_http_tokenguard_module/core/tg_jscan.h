/*
 * A streaming JSON scanner: bytes in, split anywhere, in fixed memory.
 * It follows only nesting and string state, and keeps the values found
 * at a few key paths, each up to its own bound.  A path is the keys from
 * the root joined by '.', "*" standing for any array element: "usage",
 * "response.usage", "*.usageMetadata", "candidates.*.finishReason".
 *
 * What a client wrote reaches a response inside strings, or nested in
 * echoed objects (tool schemas, metadata), never at a short path from the
 * root: a value captured here is the provider's own.  Pure C.
 */

#ifndef TG_JSCAN_H
#define TG_JSCAN_H

#include <stddef.h>
#include <stdint.h>


#define TG_JSCAN_SLOTS   4
#define TG_JSCAN_DEPTH   3          /* the longest path, in keys */
#define TG_JSCAN_KEY     32         /* longer keys match no path */
#define TG_JSCAN_NEST    1024       /* deeper documents are "bad" */


typedef struct {
    const char  *path;
    uint8_t      key_off[TG_JSCAN_DEPTH];   /* its keys in path */
    uint8_t      key_len[TG_JSCAN_DEPTH];
    size_t       max;               /* bytes kept; 0: only "seen" */
    char        *buf;               /* malloc()ed on first use, grown */
    size_t       size;              /* of buf, at most max */
    size_t       len;
    unsigned     seen:1;            /* a value was at this path */
    unsigned     whole:1;           /* the last one was kept whole */
} tg_jscan_slot_t;


typedef struct {
    tg_jscan_slot_t   slot[TG_JSCAN_SLOTS];
    size_t            nslots;

    int               state;
    size_t            depth;
    uint8_t           arrays[TG_JSCAN_NEST / 8];   /* bit: an array */
    char              key[TG_JSCAN_DEPTH][TG_JSCAN_KEY];
    size_t            key_len[TG_JSCAN_DEPTH];     /* over KEY: no match */

    /* bit i: slot i's path holds so far at depth d (match[0]: every one) */
    uint8_t           match[TG_JSCAN_DEPTH + 1];
    uint8_t           star[TG_JSCAN_DEPTH];        /* its key d is "*" */
    uint8_t           ends[TG_JSCAN_DEPTH];        /* it has d + 1 keys */

    tg_jscan_slot_t  *cap;          /* the value being kept */
    const char       *cap_from;     /* its bytes in this feed start here */
    size_t            cap_depth;
    unsigned          cap_over:1;

    unsigned          done:1;       /* the root value is complete */
    unsigned          bad:1;        /* not JSON, or too deep */
} tg_jscan_t;


/* paths: NULL-ended, at most TG_JSCAN_SLOTS; max: each path's bound */
void tg_jscan_init(tg_jscan_t *js, const char *const *paths,
    const size_t *max);

void tg_jscan_feed(tg_jscan_t *js, const char *p, size_t len);

/* a value kept whole at path i, or NULL */
const char *tg_jscan_value(tg_jscan_t *js, size_t i, size_t *len);

/*
 * How many bytes at p hold no '"' or '\\': the part of a string the scan
 * skips or copies whole.  With SSE2 where the compiler has it; the
 * portable version is what other machines run (and the tests compare).
 */
size_t tg_jscan_span(const char *p, size_t len);
size_t tg_jscan_span_portable(const char *p, size_t len);

/* forgets the document, keeps the paths and buffers: the next one */
void tg_jscan_reset(tg_jscan_t *js);

void tg_jscan_free(tg_jscan_t *js);

#endif /* TG_JSCAN_H */
