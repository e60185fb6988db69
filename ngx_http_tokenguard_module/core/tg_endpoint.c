/*
 * Endpoint classification: deny by default what is not metered.
 *
 * A path is read as the provider will route it, or refused: nginx has
 * decoded %-escapes and resolved dot segments in the path we get, so a
 * path that still holds "%", ";", "\", "?", "#", a dot segment, repeated
 * slashes (merge_slashes off) or a byte outside printable ASCII could be
 * normalised once more upstream, and is AMBIGUOUS.  So is a path that
 * names an API only once letter case is folded: some servers route case
 * insensitively.
 *
 * OpenAI-style paths may carry any prefix before "/v1/" (gateways,
 * "/openai/v1/..."), so metered paths are matched on their tail: a wrong
 * prefix costs a charge, never a free call.  Free paths are anchored at
 * the path's first version segment ("v1", "v1beta" ...), so that no
 * prefix can hide another API in front of them.
 */

#include <string.h>
#include <strings.h>

#include "tg_endpoint.h"


/* the configured providers a surface is recognised under (auto: all) */
#define TG_V_OPENAI     (1 << TG_PROVIDER_OPENAI)
#define TG_V_ANTHROPIC  (1 << TG_PROVIDER_ANTHROPIC)
#define TG_V_GEMINI     (1 << TG_PROVIDER_GEMINI)
#define TG_V_ALL        (TG_V_OPENAI | TG_V_ANTHROPIC | TG_V_GEMINI)


/* what a path is, before its method is looked at */
typedef enum {
    TG_PATH_OTHER = 0,
    TG_PATH_METERED,
    TG_PATH_FREE_GET,
    TG_PATH_FREE_POST
} tg_path_e;


typedef struct {
    const char     *name;
    size_t          len;        /* of name, at compile time */
    unsigned        vendors;
    tg_path_e       path;
    tg_provider_e   provider;
    tg_api_e        api;
    int             stream;
} tg_endpoint_surface_t;


#define tg_name(s)  s, sizeof(s) - 1


/*
 * Matched on the path's tail.  Token counting is free, its body read in
 * the dialect named here so that the policy sees its prompt.
 */
static const tg_endpoint_surface_t  tg_endpoint_suffixes[] = {
    { tg_name("/v1/chat/completions"),
      TG_V_OPENAI | TG_V_ANTHROPIC, TG_PATH_METERED,
      TG_PROVIDER_OPENAI, TG_API_CHAT, 0 },
    { tg_name("/v1/completions"), TG_V_OPENAI, TG_PATH_METERED,
      TG_PROVIDER_OPENAI, TG_API_COMPLETIONS, 0 },
    { tg_name("/v1/responses"), TG_V_OPENAI, TG_PATH_METERED,
      TG_PROVIDER_OPENAI, TG_API_RESPONSES, 0 },
    /* compaction (Codex, long sessions): a Responses request, billed */
    { tg_name("/v1/responses/compact"), TG_V_OPENAI, TG_PATH_METERED,
      TG_PROVIDER_OPENAI, TG_API_RESPONSES, 0 },
    { tg_name("/v1/embeddings"), TG_V_OPENAI, TG_PATH_METERED,
      TG_PROVIDER_OPENAI, TG_API_EMBEDDINGS, 0 },
    { tg_name("/v1/messages"), TG_V_ANTHROPIC, TG_PATH_METERED,
      TG_PROVIDER_ANTHROPIC, TG_API_MESSAGES, 0 },

    /* the OpenAI-compatible endpoints of Gemini and Vertex AI */
    { tg_name("/v1beta/openai/chat/completions"), TG_V_GEMINI, TG_PATH_METERED,
      TG_PROVIDER_OPENAI, TG_API_CHAT, 0 },
    { tg_name("/v1beta/openai/embeddings"), TG_V_GEMINI, TG_PATH_METERED,
      TG_PROVIDER_OPENAI, TG_API_EMBEDDINGS, 0 },
    { tg_name("/endpoints/openapi/chat/completions"),
      TG_V_GEMINI, TG_PATH_METERED,
      TG_PROVIDER_OPENAI, TG_API_CHAT, 0 },

    /* token counting */
    { tg_name("/v1/messages/count_tokens"), TG_V_ANTHROPIC, TG_PATH_FREE_POST,
      TG_PROVIDER_ANTHROPIC, TG_API_MESSAGES, 0 },
    { tg_name("/v1/responses/input_tokens"), TG_V_OPENAI, TG_PATH_FREE_POST,
      TG_PROVIDER_OPENAI, TG_API_RESPONSES, 0 },

    { NULL, 0, 0, TG_PATH_OTHER, TG_PROVIDER_AUTO, TG_API_NONE, 0 }
};


/* Azure OpenAI: ".../openai/deployments/{deployment}" + one of these */
static const tg_endpoint_surface_t  tg_endpoint_azure[] = {
    { tg_name("/chat/completions"), TG_V_OPENAI, TG_PATH_METERED,
      TG_PROVIDER_OPENAI, TG_API_CHAT, 0 },
    { tg_name("/completions"), TG_V_OPENAI, TG_PATH_METERED,
      TG_PROVIDER_OPENAI, TG_API_COMPLETIONS, 0 },
    { tg_name("/embeddings"), TG_V_OPENAI, TG_PATH_METERED,
      TG_PROVIDER_OPENAI, TG_API_EMBEDDINGS, 0 },
    { tg_name("/responses"), TG_V_OPENAI, TG_PATH_METERED,
      TG_PROVIDER_OPENAI, TG_API_RESPONSES, 0 },
    { NULL, 0, 0, TG_PATH_OTHER, TG_PROVIDER_AUTO, TG_API_NONE, 0 }
};


/* ".../models/{model}:ACTION" (Gemini, Vertex AI) */
static const tg_endpoint_surface_t  tg_endpoint_actions[] = {
    { tg_name("generateContent"), TG_V_GEMINI, TG_PATH_METERED,
      TG_PROVIDER_GEMINI, TG_API_GENERATE, 0 },
    { tg_name("streamGenerateContent"), TG_V_GEMINI, TG_PATH_METERED,
      TG_PROVIDER_GEMINI, TG_API_GENERATE, 1 },
    { tg_name("countTokens"), TG_V_GEMINI, TG_PATH_FREE_POST,
      TG_PROVIDER_GEMINI, TG_API_GENERATE, 0 },
    { tg_name("computeTokens"), TG_V_GEMINI, TG_PATH_FREE_POST,
      TG_PROVIDER_GEMINI, TG_API_GENERATE, 0 },

    /* Vertex AI Anthropic: ".../publishers/anthropic/models/{model}:" */
    { tg_name("rawPredict"), TG_V_ANTHROPIC | TG_V_GEMINI, TG_PATH_METERED,
      TG_PROVIDER_ANTHROPIC, TG_API_MESSAGES, 0 },
    { tg_name("streamRawPredict"),
      TG_V_ANTHROPIC | TG_V_GEMINI, TG_PATH_METERED,
      TG_PROVIDER_ANTHROPIC, TG_API_MESSAGES, 1 },

    { NULL, 0, 0, TG_PATH_OTHER, TG_PROVIDER_AUTO, TG_API_NONE, 0 }
};


/* model listings: GET LISTING or LISTING/{id}, at the first version */
static const tg_endpoint_surface_t  tg_endpoint_listings[] = {
    { tg_name("/v1/models"), TG_V_ALL, TG_PATH_FREE_GET,
      TG_PROVIDER_OPENAI, TG_API_NONE, 0 },
    { tg_name("/v1beta/models"), TG_V_GEMINI, TG_PATH_FREE_GET,
      TG_PROVIDER_GEMINI, TG_API_NONE, 0 },
    { tg_name("/v1beta/openai/models"), TG_V_GEMINI, TG_PATH_FREE_GET,
      TG_PROVIDER_OPENAI, TG_API_NONE, 0 },
    { tg_name("/openai/models"), TG_V_OPENAI, TG_PATH_FREE_GET,
      TG_PROVIDER_OPENAI, TG_API_NONE, 0 },
    { NULL, 0, 0, TG_PATH_OTHER, TG_PROVIDER_AUTO, TG_API_NONE, 0 }
};


static int
tg_eq(const char *a, const char *b, size_t n, int fold)
{
    return fold ? strncasecmp(a, b, n) == 0 : memcmp(a, b, n) == 0;
}


static int
tg_ends_with(const char *p, size_t len, const tg_endpoint_surface_t *s,
    int fold)
{
    return len >= s->len && tg_eq(p + len - s->len, s->name, s->len, fold);
}


static int
tg_allowed(const tg_endpoint_surface_t *s, tg_provider_e forced)
{
    return forced == TG_PROVIDER_AUTO || (s->vendors & (1u << forced));
}


static void
tg_found(tg_endpoint_t *ep, const tg_endpoint_surface_t *s)
{
    ep->provider = s->provider;
    ep->api = s->api;
    ep->stream = s->stream;
    ep->google = (s->vendors == TG_V_GEMINI);
}


/*
 * What the provider could read otherwise than we do, or NULL.  *cased:
 * the path has an upper-case letter or a ":" (only then can a match with
 * case folded differ from the exact one: every name compared is lower
 * case, but the actions after a ":").
 */
static const char *
tg_endpoint_ambiguous(const char *p, size_t len, int *cased)
{
    size_t  i, seg;

    *cased = 0;

    if (len == 0 || p[0] != '/') {
        return "path does not start with \"/\"";
    }

    seg = 1;

    for (i = 1; i <= len; i++) {

        if (i == len || p[i] == '/') {

            if (i == seg && i < len) {
                return "path has repeated slashes";
            }

            if ((i - seg == 1 && p[seg] == '.')
                || (i - seg == 2 && p[seg] == '.' && p[seg + 1] == '.'))
            {
                return "path has a \".\" or \"..\" segment";
            }

            seg = i + 1;
            continue;
        }

        if ((unsigned char) p[i] <= ' ' || (unsigned char) p[i] > '~') {
            return "path has a space, a control or a non-ASCII byte";
        }

        if ((p[i] >= 'A' && p[i] <= 'Z') || p[i] == ':') {
            *cased = 1;
        }

        switch (p[i]) {
        case '%':
            return "path has an escape the provider could decode again";
        case ';':
            return "path has a \";\" parameter";
        case '\\':
            return "path has a backslash";
        case '?':
        case '#':
            return "path has an escaped \"?\" or \"#\"";
        }
    }

    return NULL;
}


/* a version segment: "v" and a digit, then letters and digits */
static int
tg_version_segment(const char *p, size_t n, int fold)
{
    size_t  i;

    if (n < 2 || !(p[0] == 'v' || (fold && p[0] == 'V'))
        || p[1] < '0' || p[1] > '9')
    {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'z')
              || (fold && p[i] >= 'A' && p[i] <= 'Z')))
        {
            return 0;
        }
    }

    return 1;
}


/* GET /v1/models[/{id}] and friends, anchored at the first version */
static tg_path_e
tg_endpoint_listing(const char *p, size_t len, tg_provider_e forced,
    int fold, tg_endpoint_t *ep)
{
    size_t                        i, seg, n, rest;
    const char                   *id;
    const tg_endpoint_surface_t  *s;

    /* the first segment that is a version or "openai" */

    seg = 1;

    for (i = 1; i <= len; i++) {
        if (i < len && p[i] != '/') {
            continue;
        }

        if (tg_version_segment(p + seg, i - seg, fold)
            || (i - seg == 6 && tg_eq(p + seg, "openai", 6, fold)))
        {
            break;
        }

        seg = i + 1;
    }

    if (i > len) {
        return TG_PATH_OTHER;
    }

    p += seg - 1;
    len -= seg - 1;

    /* "/openai/v1/models": a gateway's prefix, then the version */
    if (len > 7 && tg_eq(p, "/openai/", 8, fold)) {
        for (i = 8; i < len && p[i] != '/'; i++) { /* void */ }

        if (tg_version_segment(p + 8, i - 8, fold)) {
            p += 7;
            len -= 7;
        }
    }

    for (s = tg_endpoint_listings; s->name; s++) {
        n = s->len;

        if (!tg_allowed(s, forced) || len < n || !tg_eq(p, s->name, n, fold))
        {
            continue;
        }

        rest = len - n;
        id = p + n;

        if (rest == 0
            || (rest > 1 && id[0] == '/'
                && memchr(id + 1, '/', rest - 1) == NULL))
        {
            tg_found(ep, s);
            return s->path;
        }
    }

    return TG_PATH_OTHER;
}


/* ".../models/{model}:ACTION": the model is the last segment's head */
static tg_path_e
tg_endpoint_action(const char *p, size_t len, tg_provider_e forced,
    int fold, tg_endpoint_t *ep)
{
    size_t                        i, colon, start, n;
    const tg_endpoint_surface_t  *s;

    colon = len;

    for (i = len; i > 0; i--) {
        if (p[i - 1] == '/') {
            return TG_PATH_OTHER;
        }

        if (p[i - 1] == ':') {
            colon = i - 1;
            break;
        }
    }

    if (colon == len) {
        return TG_PATH_OTHER;
    }

    start = colon;

    while (start > 0 && p[start - 1] != '/') {
        start--;
    }

    n = sizeof("/models/") - 1;

    if (start == colon || start < n
        || !tg_eq(p + start - n, "/models/", n, fold))
    {
        return TG_PATH_OTHER;
    }

    for (s = tg_endpoint_actions; s->name; s++) {
        if (!tg_allowed(s, forced)
            || s->len != len - colon - 1
            || !tg_eq(p + colon + 1, s->name, len - colon - 1, fold))
        {
            continue;
        }

        if (s->provider == TG_PROVIDER_ANTHROPIC) {
            n = sizeof("/publishers/anthropic/models/") - 1;

            if (start < n
                || !tg_eq(p + start - n, "/publishers/anthropic/models/", n,
                          fold))
            {
                return TG_PATH_OTHER;
            }
        }

        tg_found(ep, s);
        ep->google = 1;

        /* Vertex AI names the publisher; the Gemini API does not */
        n = sizeof("/publishers/") - 1;

        for (i = 0; i + n <= start; i++) {
            if (memcmp(p + i, "/publishers/", n) == 0) {
                ep->vertex = 1;
                break;
            }
        }

        if (s->api != TG_API_NONE) {
            ep->model_off = start;
            ep->model_len = colon - start;
        }

        return s->path;
    }

    return TG_PATH_OTHER;
}


/* ".../openai/deployments/{deployment}/chat/completions" and others */
static tg_path_e
tg_endpoint_deployment(const char *p, size_t len, tg_provider_e forced,
    int fold, tg_endpoint_t *ep)
{
    size_t                        end, start, n;
    const tg_endpoint_surface_t  *s;

    for (s = tg_endpoint_azure; s->name; s++) {
        if (!tg_allowed(s, forced) || !tg_ends_with(p, len, s, fold)) {
            continue;
        }

        end = len - s->len;
        start = end;

        while (start > 0 && p[start - 1] != '/') {
            start--;
        }

        n = sizeof("/openai/deployments/") - 1;

        if (start == end || start < n
            || !tg_eq(p + start - n, "/openai/deployments/", n, fold))
        {
            continue;
        }

        tg_found(ep, s);
        ep->azure = 1;
        ep->model_off = start;
        ep->model_len = end - start;

        return s->path;
    }

    return TG_PATH_OTHER;
}


static tg_path_e
tg_endpoint_path(const char *p, size_t len, tg_provider_e forced, int fold,
    tg_endpoint_t *ep)
{
    tg_path_e                     path;
    const tg_endpoint_surface_t  *s;

    path = tg_endpoint_action(p, len, forced, fold, ep);
    if (path != TG_PATH_OTHER) {
        return path;
    }

    /* before the suffixes: a deployment may be called "v1" */
    path = tg_endpoint_deployment(p, len, forced, fold, ep);
    if (path != TG_PATH_OTHER) {
        return path;
    }

    for (s = tg_endpoint_suffixes; s->name; s++) {
        if (tg_allowed(s, forced) && tg_ends_with(p, len, s, fold)) {
            tg_found(ep, s);
            /* Vertex AI's OpenAI-compatible endpoint */
            ep->vertex = (strncmp(s->name, "/endpoints/", 11) == 0);
            return s->path;
        }
    }

    return tg_endpoint_listing(p, len, forced, fold, ep);
}


/* the error shape of a path that matched nothing */
static tg_provider_e
tg_endpoint_shape(const char *p, size_t len, tg_provider_e forced)
{
    size_t  i;

    if (forced != TG_PROVIDER_AUTO) {
        return forced;
    }

    for (i = 0; i < len; i++) {
        /* every name starts with "/" */
        if (p[i] != '/') {
            continue;
        }

        if (len - i >= sizeof("/publishers/anthropic/") - 1
            && memcmp(p + i, "/publishers/anthropic/",
                      sizeof("/publishers/anthropic/") - 1) == 0)
        {
            return TG_PROVIDER_ANTHROPIC;
        }

        if (len - i >= sizeof("/v1/messages") - 1
            && memcmp(p + i, "/v1/messages", sizeof("/v1/messages") - 1)
               == 0)
        {
            return TG_PROVIDER_ANTHROPIC;
        }

        if ((len - i >= sizeof("/v1beta/") - 1
             && memcmp(p + i, "/v1beta/", sizeof("/v1beta/") - 1) == 0)
            || (len - i >= sizeof("/publishers/google/") - 1
                && memcmp(p + i, "/publishers/google/",
                          sizeof("/publishers/google/") - 1) == 0))
        {
            return TG_PROVIDER_GEMINI;
        }
    }

    return TG_PROVIDER_OPENAI;
}


tg_endpoint_kind_e
tg_endpoint_classify(const char *uri, size_t len, tg_method_e method,
    tg_provider_e forced, tg_endpoint_t *ep)
{
    return tg_endpoint_classify_folding(uri, len, method, forced, ep, 0);
}


tg_endpoint_kind_e
tg_endpoint_classify_folding(const char *uri, size_t len, tg_method_e method,
    tg_provider_e forced, tg_endpoint_t *ep, int always)
{
    int            cased;
    tg_path_e      path, folded;
    tg_provider_e  shape;
    tg_endpoint_t  f;

    memset(ep, 0, sizeof(tg_endpoint_t));

    shape = tg_endpoint_shape(uri, len, forced);
    ep->provider = shape;

    ep->why = tg_endpoint_ambiguous(uri, len, &cased);

    if (ep->why != NULL) {
        ep->kind = TG_ENDPOINT_AMBIGUOUS;
        return ep->kind;
    }

    /* one trailing slash is routed as none; more are repeated slashes */
    if (len > 1 && uri[len - 1] == '/') {
        len--;
    }

    path = tg_endpoint_path(uri, len, forced, 0, ep);

    /* a path of lower case and no ":" reads the same with case folded */
    if (cased || always) {
        memset(&f, 0, sizeof(tg_endpoint_t));
        folded = tg_endpoint_path(uri, len, forced, 1, &f);

    } else {
        folded = path;
        f.api = ep->api;
        f.provider = ep->provider;
    }

    if (folded != path || f.api != ep->api) {
        memset(ep, 0, sizeof(tg_endpoint_t));
        ep->provider = f.provider ? f.provider : shape;
        ep->why = "path names an API only in another letter case";
        ep->kind = TG_ENDPOINT_AMBIGUOUS;
        return ep->kind;
    }

    if ((path == TG_PATH_METERED && method == TG_METHOD_POST)
        || (path == TG_PATH_FREE_POST && method == TG_METHOD_POST)
        || (path == TG_PATH_FREE_GET && method == TG_METHOD_GET))
    {
        ep->kind = (path == TG_PATH_METERED) ? TG_ENDPOINT_METERED
                                             : TG_ENDPOINT_FREE;
        return ep->kind;
    }

    /* another method on an API path is another API: stored completions */
    ep->kind = TG_ENDPOINT_OTHER;
    ep->api = TG_API_NONE;
    ep->stream = 0;
    ep->model_off = 0;
    ep->model_len = 0;

    if (path == TG_PATH_OTHER) {
        ep->provider = shape;
    }

    return ep->kind;
}


/*
 * Google's front end reads system parameters in any API's query string:
 * "fields" (a partial response: no usageMetadata), "alt=proto" or
 * "alt=media", "callback" (JSONP), each also as "$name" or %-escaped.
 * Only names and values known to change nothing we read pass.
 */
const char *
tg_endpoint_google_query(const char *args, size_t len)
{
    size_t       i, end, eq, n, v;
    const char  *p;

    /* some servers split parameters on ";" too */
    if (len && memchr(args, ';', len) != NULL) {
        return "has a \";\" in its query string";
    }

    for (i = 0; i < len; i = end + 1) {
        p = memchr(args + i, '&', len - i);
        end = p ? (size_t) (p - args) : len;

        p = memchr(args + i, '=', end - i);
        eq = p ? (size_t) (p - args) : end;

        n = eq - i;
        v = eq < end ? end - eq - 1 : 0;
        p = args + i;

        if (n == 0 && v == 0) {
            continue;
        }

        if ((n == 3 && memcmp(p, "key", 3) == 0)
            || (n == 11 && memcmp(p, "prettyPrint", 11) == 0))
        {
            continue;
        }

        if ((n == 3 && memcmp(p, "alt", 3) == 0)
            || (n == 4 && memcmp(p, "$alt", 4) == 0))
        {
            if ((v == 3 && memcmp(args + eq + 1, "sse", 3) == 0)
                || (v == 4 && memcmp(args + eq + 1, "json", 4) == 0))
            {
                continue;
            }

            return "has an \"alt\" other than \"sse\" or \"json\"";
        }

        return "has a query parameter other than \"key\", \"alt\" or"
               " \"prettyPrint\" (\"fields\" would drop the usage)";
    }

    return NULL;
}


int
tg_endpoint_detect(const char *uri, size_t len, tg_provider_e forced,
    tg_endpoint_t *ep)
{
    (void) tg_endpoint_classify(uri, len, TG_METHOD_POST, forced, ep);

    return 0;
}


const char *
tg_provider_name(tg_provider_e p)
{
    switch (p) {
    case TG_PROVIDER_OPENAI:
        return "openai";
    case TG_PROVIDER_ANTHROPIC:
        return "anthropic";
    case TG_PROVIDER_GEMINI:
        return "gemini";
    default:
        return "auto";
    }
}


const char *
tg_endpoint_genai_provider(const tg_endpoint_t *ep)
{
    if (ep->api == TG_API_NONE) {
        return NULL;
    }

    if (ep->vertex) {
        return "gcp.vertex_ai";
    }

    if (ep->azure) {
        return "azure.ai.openai";
    }

    if (ep->google) {
        return "gcp.gemini";
    }

    switch (ep->provider) {
    case TG_PROVIDER_ANTHROPIC:
        return "anthropic";
    case TG_PROVIDER_GEMINI:
        return "gcp.gemini";
    default:
        return "openai";
    }
}


const char *
tg_endpoint_genai_operation(const tg_endpoint_t *ep)
{
    switch (ep->api) {
    case TG_API_CHAT:
    case TG_API_RESPONSES:
    case TG_API_MESSAGES:
        return "chat";
    case TG_API_COMPLETIONS:
        return "text_completion";
    case TG_API_EMBEDDINGS:
        return "embeddings";
    case TG_API_GENERATE:
        return "generate_content";
    default:
        return NULL;
    }
}
