/*
 * tg_key_escape() and tg_key_prefix(): the escaped name uses only the
 * safe bytes and "%XX", fits in 3 bytes per byte, and decodes back to the
 * name, so no two names share a key.
 */

#include "fuzz.h"
#include "tg_keys.h"


static int
fuzz_hex(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    fuzz_assert(c >= 'A' && c <= 'F');

    return c - 'A' + 10;
}


static int
fuzz_safe(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@'
           || c == '-';
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char    *name, *out, *dec;
    size_t   i, n, d;

    name = fuzz_dup(data, size);

    /* exactly the documented worst case: ASan sees a write past it */
    out = malloc(size ? 3 * size : 1);
    dec = malloc(size ? size : 1);
    fuzz_assert(out != NULL && dec != NULL);

    n = tg_key_escape(name, size, out);
    fuzz_assert(n >= size && n <= 3 * size);

    d = 0;

    for (i = 0; i < n; i++) {
        fuzz_assert(d < size);

        if (out[i] == '%') {
            fuzz_assert(i + 2 < n);
            dec[d++] = (char) (fuzz_hex(out[i + 1]) << 4
                               | fuzz_hex(out[i + 2]));
            fuzz_assert(!fuzz_safe((unsigned char) dec[d - 1]));
            i += 2;

        } else {
            fuzz_assert(fuzz_safe((unsigned char) out[i]));
            dec[d++] = out[i];
        }
    }

    fuzz_assert(d == size && memcmp(dec, name, size) == 0);

    free(out);

    out = malloc(TG_KEY_PREFIX_MAX);
    fuzz_assert(out != NULL);

    n = tg_key_prefix(TG_SCOPE_USER, name, size, out);

    if (size == 0 || size > 256) {
        fuzz_assert(n == 0);

    } else {
        fuzz_assert(n > 7 && n <= TG_KEY_PREFIX_MAX);
        fuzz_assert(memcmp(out, "tg:{u:", 6) == 0 && out[n - 1] == '}');
    }

    free(out);
    free(dec);
    free(name);

    return 0;
}
