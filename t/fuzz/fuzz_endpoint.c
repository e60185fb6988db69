/*
 * tg_endpoint_classify().  Input: a byte for the configured provider
 * (tokenguard_provider), a byte for the method (GET, POST, other), then
 * the decoded URI path.
 *
 * The property: a call is metered as the provider will route it, or
 * refused.  A simple reference, written apart from the classifier,
 * normalises the path as a lenient provider might (percent-decode until
 * nothing changes, "\" as "/", ";params" dropped, repeated slashes
 * collapsed, dot segments resolved, case folded, a trailing slash
 * dropped) and says which API the result is.  Unless the classifier
 * refused the path as AMBIGUOUS:
 *   - the reference normalisation changes nothing but case;
 *   - a POST the reference reads as a generation call is METERED, with
 *     the same API; a call the reference reads as free is FREE;
 *   - METERED and FREE are what the reference reads;
 *   - the path in another case is the same call, or refused;
 *   - a configured provider only narrows what AUTO meters.
 */

#include <ctype.h>

#include "fuzz.h"
#include "tg_endpoint.h"


#define REF_MAX  4096


/* the reference normaliser: returns the length of out, or 0 if too long */
static size_t
ref_normalise(const char *in, size_t len, char *out)
{
    int     pass, changed;
    char    a[REF_MAX], b[REF_MAX];
    size_t  i, n, m, seg;

    if (len >= REF_MAX) {
        return 0;
    }

    memcpy(a, in, len);
    n = len;

    /* percent-decoding, as often as it changes something (bounded) */
    for (pass = 0; pass < 4; pass++) {
        changed = 0;
        m = 0;

        for (i = 0; i < n; i++) {
            if (a[i] == '%' && i + 2 < n && isxdigit((unsigned char) a[i + 1])
                && isxdigit((unsigned char) a[i + 2]))
            {
                char  hex[3] = { a[i + 1], a[i + 2], '\0' };

                b[m++] = (char) strtol(hex, NULL, 16);
                i += 2;
                changed = 1;

            } else {
                b[m++] = a[i];
            }
        }

        memcpy(a, b, m);
        n = m;

        if (!changed) {
            break;
        }
    }

    /* "\" as "/", ";..." up to the next "/" dropped, case folded */
    m = 0;

    for (i = 0; i < n; i++) {
        if (a[i] == ';') {
            while (i < n && a[i] != '/' && a[i] != '\\') {
                i++;
            }

            if (i == n) {
                break;
            }
        }

        b[m++] = (a[i] == '\\') ? '/' : (char) tolower((unsigned char) a[i]);
    }

    /* segments: empty ones and "." dropped, ".." pops */
    n = 0;
    i = 0;

    while (i < m) {
        while (i < m && b[i] == '/') {
            i++;
        }

        seg = i;

        while (i < m && b[i] != '/') {
            i++;
        }

        if (i == seg || (i - seg == 1 && b[seg] == '.')) {
            continue;
        }

        if (i - seg == 2 && b[seg] == '.' && b[seg + 1] == '.') {
            while (n > 0 && a[n - 1] != '/') {
                n--;
            }

            if (n > 0) {
                n--;
            }

            continue;
        }

        a[n++] = '/';
        memcpy(a + n, b + seg, i - seg);
        n += i - seg;
    }

    if (n == 0) {
        a[n++] = '/';
    }

    memcpy(out, a, n);

    return n;
}


static int
ref_ends(const char *p, size_t n, const char *s)
{
    size_t  k;

    k = strlen(s);

    return n >= k && memcmp(p + n - k, s, k) == 0;
}


/* the last segment's "MODEL:ACTION" after "/models/", or NULL */
static const char *
ref_action(const char *p, size_t n, size_t *model_start)
{
    size_t  i, colon, start;

    start = n;

    while (start > 0 && p[start - 1] != '/') {
        start--;
    }

    colon = n;

    for (i = n; i > start; i--) {
        if (p[i - 1] == ':') {
            colon = i - 1;
            break;
        }
    }

    if (colon == n || colon == start || start < 8
        || memcmp(p + start - 8, "/models/", 8) != 0)
    {
        return NULL;
    }

    *model_start = start;

    return p + colon + 1;
}


typedef enum {
    REF_NONE = 0,
    REF_METERED,
    REF_FREE_POST,
    REF_FREE_GET_SHAPE      /* ends like a model listing */
} ref_kind_e;


/*
 * ".../models" or ".../models/ID": a model listing or retrieval when it
 * is a GET, whatever ID holds (OpenAI's fine-tuned ids have colons, so
 * "models/x:countTokens" is one too)
 */
static int
ref_get_shape(const char *p, size_t n)
{
    size_t  start;

    if (ref_ends(p, n, "/models")) {
        return 1;
    }

    start = n;

    while (start > 0 && p[start - 1] != '/') {
        start--;
    }

    return start > 8 && memcmp(p + start - 8, "/models/", 8) == 0;
}


/* which API a normalised, lower-case path is (provider auto) */
static ref_kind_e
ref_classify(const char *p, size_t n, tg_api_e *api)
{
    size_t       i, start, end;
    const char  *act;

    static const struct {
        const char  *suffix;
        tg_api_e     api;
    } metered[] = {
        { "/v1/chat/completions", TG_API_CHAT },
        { "/v1/completions", TG_API_COMPLETIONS },
        { "/v1/responses", TG_API_RESPONSES },
        { "/v1/responses/compact", TG_API_RESPONSES },
        { "/v1/embeddings", TG_API_EMBEDDINGS },
        { "/v1/messages", TG_API_MESSAGES },
        { "/v1beta/openai/chat/completions", TG_API_CHAT },
        { "/v1beta/openai/embeddings", TG_API_EMBEDDINGS },
        { "/endpoints/openapi/chat/completions", TG_API_CHAT },
        { NULL, TG_API_NONE }
    }, azure[] = {
        { "/chat/completions", TG_API_CHAT },
        { "/completions", TG_API_COMPLETIONS },
        { "/embeddings", TG_API_EMBEDDINGS },
        { "/responses", TG_API_RESPONSES },
        { NULL, TG_API_NONE }
    };

    *api = TG_API_NONE;

    act = ref_action(p, n, &start);

    if (act != NULL) {
        size_t  k = (size_t) (p + n - act);

        if ((k == 15 && memcmp(act, "generatecontent", 15) == 0)
            || (k == 21 && memcmp(act, "streamgeneratecontent", 21) == 0))
        {
            *api = TG_API_GENERATE;
            return REF_METERED;
        }

        if ((k == 10 && memcmp(act, "rawpredict", 10) == 0)
            || (k == 16 && memcmp(act, "streamrawpredict", 16) == 0))
        {
            if (start >= 29
                && memcmp(p + start - 29, "/publishers/anthropic/models/", 29)
                   == 0)
            {
                *api = TG_API_MESSAGES;
                return REF_METERED;
            }

        } else if ((k == 11 && memcmp(act, "counttokens", 11) == 0)
                   || (k == 13 && memcmp(act, "computetokens", 13) == 0))
        {
            return REF_FREE_POST;
        }
    }

    for (i = 0; azure[i].suffix; i++) {
        if (!ref_ends(p, n, azure[i].suffix)) {
            continue;
        }

        end = n - strlen(azure[i].suffix);
        start = end;

        while (start > 0 && p[start - 1] != '/') {
            start--;
        }

        if (start < end && start >= 20
            && memcmp(p + start - 20, "/openai/deployments/", 20) == 0)
        {
            *api = azure[i].api;
            return REF_METERED;
        }
    }

    for (i = 0; metered[i].suffix; i++) {
        if (ref_ends(p, n, metered[i].suffix)) {
            *api = metered[i].api;
            return REF_METERED;
        }
    }

    if (ref_ends(p, n, "/v1/messages/count_tokens")
        || ref_ends(p, n, "/v1/responses/input_tokens"))
    {
        return REF_FREE_POST;
    }

    return ref_get_shape(p, n) ? REF_FREE_GET_SHAPE : REF_NONE;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                *uri, *lower, norm[REF_MAX];
    size_t               len, i, n, trimmed;
    tg_api_e             api;
    ref_kind_e           ref;
    tg_method_e          method;
    fuzz_input_t         in;
    tg_provider_e        forced;
    tg_endpoint_t        ep, again, any;
    tg_endpoint_kind_e   kind;

    in.p = data;
    in.len = size;

    forced = (tg_provider_e) (fuzz_byte(&in) % 4);
    method = (tg_method_e) (fuzz_byte(&in) % 3);

    len = in.len;
    uri = fuzz_dup(in.p, len);

    kind = tg_endpoint_classify(uri, len, method, forced, &ep);

    /* the folded reading, skipped where it cannot matter, agrees */
    (void) tg_endpoint_classify_folding(uri, len, method, forced, &any, 1);
    fuzz_assert(any.kind == ep.kind && any.provider == ep.provider
                && any.api == ep.api && any.stream == ep.stream
                && any.google == ep.google && any.azure == ep.azure
                && any.vertex == ep.vertex && any.model_off == ep.model_off
                && any.model_len == ep.model_len && any.why == ep.why);

    fuzz_assert(kind == ep.kind);
    fuzz_assert(ep.provider != TG_PROVIDER_AUTO);
    fuzz_assert(strcmp(tg_provider_name(ep.provider), "auto") != 0);
    fuzz_assert(ep.api >= TG_API_NONE && ep.api <= TG_API_GENERATE);
    fuzz_assert(kind != TG_ENDPOINT_METERED || ep.api != TG_API_NONE);
    fuzz_assert(ep.api == TG_API_NONE || kind == TG_ENDPOINT_METERED
                || (kind == TG_ENDPOINT_FREE && method == TG_METHOD_POST));
    fuzz_assert((kind == TG_ENDPOINT_AMBIGUOUS) == (ep.why != NULL));

    if (kind == TG_ENDPOINT_METERED) {
        fuzz_assert(method == TG_METHOD_POST);
    }

    if (ep.api != TG_API_NONE) {
        if (ep.model_len) {
            fuzz_assert(ep.model_off + ep.model_len < len);
            fuzz_assert(memchr(uri + ep.model_off, '/', ep.model_len)
                        == NULL);
        }

        fuzz_assert(ep.api != TG_API_GENERATE || ep.model_len > 0);

    } else {
        fuzz_assert(ep.model_off == 0 && ep.model_len == 0);
    }

    if (kind == TG_ENDPOINT_AMBIGUOUS) {
        free(uri);
        return 0;
    }

    /* not refused: what a lenient provider normalises is the same path */

    trimmed = (len > 1 && uri[len - 1] == '/') ? len - 1 : len;

    n = ref_normalise(uri, len, norm);

    if (n > 0) {
        fuzz_assert(n == trimmed);

        for (i = 0; i < n; i++) {
            fuzz_assert(norm[i] == tolower((unsigned char) uri[i]));
        }

        ref = ref_classify(norm, n, &api);

        if (forced == TG_PROVIDER_AUTO) {
            if (ref == REF_METERED && method == TG_METHOD_POST) {
                fuzz_assert(kind == TG_ENDPOINT_METERED && ep.api == api);
            }

            if (kind == TG_ENDPOINT_METERED) {
                fuzz_assert(ref == REF_METERED && ep.api == api);
            }

            if (ref == REF_FREE_POST && method == TG_METHOD_POST) {
                fuzz_assert(kind == TG_ENDPOINT_FREE);
            }
        }

        if (kind == TG_ENDPOINT_FREE) {
            fuzz_assert(method == TG_METHOD_POST
                        ? ref == REF_FREE_POST
                        : ref_get_shape(norm, n));
        }
    }

    /* another case of the path is the same call, or refused */
    lower = fuzz_dup((const uint8_t *) uri, len);

    for (i = 0; i < len; i++) {
        lower[i] = (char) (islower((unsigned char) uri[i])
                           ? toupper((unsigned char) uri[i])
                           : tolower((unsigned char) uri[i]));
    }

    if (tg_endpoint_classify(lower, len, method, forced, &again)
        != TG_ENDPOINT_AMBIGUOUS)
    {
        fuzz_assert(again.kind == kind && again.api == ep.api);
    }

    for (i = 0; i < len; i++) {
        lower[i] = (char) tolower((unsigned char) uri[i]);
    }

    if (tg_endpoint_classify(lower, len, method, forced, &again)
        != TG_ENDPOINT_AMBIGUOUS)
    {
        fuzz_assert(again.kind == kind && again.api == ep.api);
    }

    /* a configured provider narrows what auto meters, never widens it */
    if (kind == TG_ENDPOINT_METERED && forced != TG_PROVIDER_AUTO) {
        fuzz_assert(tg_endpoint_classify(uri, len, method, TG_PROVIDER_AUTO,
                                         &any) == TG_ENDPOINT_METERED);
        fuzz_assert(any.api == ep.api);
    }

    free(lower);
    free(uri);

    return 0;
}
