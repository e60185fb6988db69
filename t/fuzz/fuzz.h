/*
 * Helpers shared by the libFuzzer targets (t/fuzz/fuzz_*.c): taking
 * parameters off the front of the input, and a check that aborts so that
 * libFuzzer keeps the input as a crash.
 */

#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define fuzz_assert(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,       \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)


typedef struct {
    const uint8_t  *p;
    size_t          len;
} fuzz_input_t;


/* one byte off the front, 0 when the input is used up */
static inline unsigned
fuzz_byte(fuzz_input_t *in)
{
    unsigned  c;

    if (in->len == 0) {
        return 0;
    }

    c = in->p[0];
    in->p++;
    in->len--;

    return c;
}


/* the bytes up to the first LF (not included), or all that is left */
static inline const char *
fuzz_line(fuzz_input_t *in, size_t *len)
{
    const char     *s;
    const uint8_t  *lf;

    s = (const char *) in->p;
    lf = memchr(in->p, '\n', in->len);

    if (lf == NULL) {
        *len = in->len;
        in->p += in->len;
        in->len = 0;
        return s;
    }

    *len = lf - in->p;
    in->len -= *len + 1;
    in->p = lf + 1;

    return s;
}


/* a copy in its own allocation, so that ASan sees any read past it */
static inline char *
fuzz_dup(const void *p, size_t len)
{
    char  *d;

    d = malloc(len ? len : 1);
    if (d == NULL) {
        abort();
    }

    memcpy(d, p, len);

    return d;
}


/* a small deterministic generator, seeded from the input */
static inline uint32_t
fuzz_rand(uint32_t *state)
{
    uint32_t  x;

    x = *state ? *state : 0x9e3779b9;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;

    return x;
}

#endif /* FUZZ_H */
