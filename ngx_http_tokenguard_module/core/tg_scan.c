/*
 * One general rule rather than a list of fields: every string value of
 * the body is text the provider may read, and so is every key and number
 * of a free-form object (tool arguments, schemas).  Left out are only the
 * values known not to be text, and only where the provider's own
 * structure puts them:
 *
 *   - the top-level "model" (the model policy reads it);
 *   - "type" and "role" tags that are identifiers (lower-case words);
 *   - opaque tokens the provider checks (signature, thoughtSignature);
 *   - encrypted turns (encrypted_content, redacted_thinking's "data"),
 *     which the provider decrypts and bills as input: estimated by their
 *     size, never read;
 *   - binary media: "data" next to a media type that is not text (or of
 *     input_audio), and data: URLs of such a type,
 *     unless it decodes to UTF-8 text: then it is text whatever its label.
 *     The same with a text media type is decoded (base64 or %XX) and read.
 *
 * "Where the provider's structure puts them" is a structural path: from
 * the root through members named in tg_scan_structural[] and array
 * elements.  Any other member (tools, tool_calls, arguments, args,
 * tool_use "input", response_format, an unknown field) starts a free-form
 * subtree where nothing is left out: a client cannot hide text behind a
 * key or a shape that only looks like structure there.
 *
 * A string that looks like a JSON document and holds escapes (tool
 * arguments) is read with its escapes decoded, in place, as often as
 * nested documents need: the model reads "\u0041" as "A".  The estimate
 * counts what the provider counts: the string as sent.
 */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tg_scan.h"


#define TG_SCAN_UNESCAPE_PASSES  4

#if defined __GNUC__
#define TG_SCAN_NOINLINE  __attribute__((noinline))
#else
#define TG_SCAN_NOINLINE
#endif


typedef struct {
    const char  *name;
    size_t       len;
    unsigned     root_only;
} tg_scan_key_t;


#define tg_scan_key(s, r)  { s, sizeof(s) - 1, r }

/* members whose value is the provider's structure, not free text */
static const tg_scan_key_t  tg_scan_structural[] = {
    tg_scan_key("messages", 0),
    tg_scan_key("content", 0),
    tg_scan_key("contents", 0),
    tg_scan_key("parts", 0),
    tg_scan_key("input", 1),            /* tool_use "input" is free-form */
    tg_scan_key("prompt", 1),           /* token ids: counted apart */
    tg_scan_key("system", 0),
    tg_scan_key("systemInstruction", 0),
    tg_scan_key("system_instruction", 0),
    tg_scan_key("source", 0),
    tg_scan_key("inlineData", 0),
    tg_scan_key("inline_data", 0),
    tg_scan_key("fileData", 0),
    tg_scan_key("file_data", 0),
    tg_scan_key("image_url", 0),
    tg_scan_key("input_audio", 0),
    tg_scan_key("file", 0),
    tg_scan_key("tool_calls", 0),
    tg_scan_key("function", 0),
    tg_scan_key("function_call", 0),
    tg_scan_key("functionCall", 0),
    tg_scan_key("functionResponse", 0),
    tg_scan_key("function_response", 0),
    tg_scan_key("cache_control", 0),
    tg_scan_key("citations", 0),
    tg_scan_key("generationConfig", 1),
    tg_scan_key("generation_config", 1),
    tg_scan_key("safetySettings", 1),
    tg_scan_key("safety_settings", 1),
    tg_scan_key("stream_options", 1),
    tg_scan_key("thinking", 1),
    tg_scan_key("thinkingConfig", 0),
    tg_scan_key("thinking_config", 0),
    tg_scan_key("reasoning", 1),
    { NULL, 0, 0 }
};


/* opaque values the provider verifies: never text for the model */
static const tg_scan_key_t  tg_scan_opaque[] = {
    tg_scan_key("signature", 0),
    tg_scan_key("thoughtSignature", 0),
    tg_scan_key("thought_signature", 0),
    { NULL, 0, 0 }
};


static void tg_scan_value(tg_scan_t *sc, const tg_json_t *v,
    const tg_json_t *holder, int structural, unsigned depth);
static void tg_scan_string(tg_scan_t *sc, const tg_json_t *v,
    const tg_json_t *holder, int structural, unsigned depth);
static int tg_scan_url_key(const tg_json_t *v);
static void tg_scan_text(tg_scan_t *sc, const char *s, size_t len);
static size_t tg_scan_document(tg_scan_t *sc, char *p, const char *s,
    size_t len);
static void tg_scan_counted_as(tg_scan_t *sc, const char *stored, size_t n,
    const char *sent, size_t len);
static void tg_scan_base64_media(tg_scan_t *sc, const char *s, size_t len,
    int text);
static void tg_scan_data_url(tg_scan_t *sc, const char *s, size_t len);
static int tg_scan_is_text(const char *s, size_t len);
static int tg_scan_grow(tg_scan_t *sc, size_t len);
static inline char *tg_scan_part(tg_scan_t *sc, size_t len);
static void tg_scan_end(tg_scan_t *sc, char *p, size_t n);
static int tg_scan_is(const tg_scan_key_t *keys, const char *key,
    size_t len, unsigned depth);
static int tg_scan_eq(const char *s, size_t len, const char *word);
static int tg_scan_identifier(const char *s, size_t len);
static const tg_json_t *tg_scan_media_type(const tg_json_t *holder);
static void tg_scan_numbers(tg_scan_t *sc, const tg_json_t *a);
static size_t tg_scan_decode64(const char *s, size_t len, char *out);
static size_t tg_scan_base64(const char *s, size_t len, char *out,
    int lenient);
static size_t tg_scan_percent(const char *s, size_t len, char *out);
static void tg_scan_scrub(char *s, size_t len);
static int tg_scan_hex(char c);
static int tg_scan_u(const char *s, size_t len, size_t i, uint32_t *out);


int
tg_scan_body(tg_scan_t *sc, const tg_json_t *root)
{
    tg_scan_value(sc, root, NULL, 1, 0);

    if (sc->nomem) {
        return -1;
    }

    /*
     * The estimate adds up byte by byte, so the text is counted in one
     * pass here rather than part by part (hundreds of short runs, each
     * with its tail): the parts counted otherwise are adjusted as they
     * are added, by tg_scan_counted_as().
     */
    if (sc->len) {
        tg_estimate_add(&sc->est, sc->text, sc->len);
    }

    return 0;
}


static void
tg_scan_value(tg_scan_t *sc, const tg_json_t *v, const tg_json_t *holder,
    int structural, unsigned depth)
{
    int               s;
    size_t            n;
    const tg_json_t  *m;

    switch ((tg_json_type_e) v->type) {

    case TG_JSON_OBJECT:
        tg_json_foreach(v, m) {
            if (!structural) {
                tg_scan_text(sc, m->key, m->key_len);
            }

            s = structural
                && (!(m->type == TG_JSON_OBJECT || m->type == TG_JSON_ARRAY)
                    || tg_scan_is(tg_scan_structural, m->key, m->key_len,
                                  depth + 1));

            tg_scan_value(sc, m, v, s, depth + 1);
        }

        break;

    case TG_JSON_ARRAY:
        n = 0;

        tg_json_foreach(v, m) {
            tg_scan_value(sc, m, NULL, structural, depth + 1);
            n++;
        }

        if (!structural && n != v->count) {
            /* arguments and tool results: [4111111111111111] */
            tg_scan_numbers(sc, v);
        }

        break;

    case TG_JSON_STRING:
        tg_scan_string(sc, v, holder, structural, depth);
        break;

    case TG_JSON_NUMBER:
        /* an argument or an enum value; a setting of the provider's not */
        if (!structural) {
            tg_scan_text(sc, v->str, v->len);
        }

        break;

    default:
        break;
    }
}


/*
 * The numbers of an array have no node (TG_JSON_BOUNDED): they are read
 * from the array's text, each other element skipped (a container by its
 * node's length), so that every byte is walked once whatever the nesting.
 */
static void
tg_scan_numbers(tg_scan_t *sc, const tg_json_t *a)
{
    size_t            i, start;
    const char       *s;
    const tg_json_t  *m;

    s = a->str;
    m = tg_json_first(a);

    for (i = 1; i < a->len; /* void */ ) {

        switch (s[i]) {

        case ']':
            return;

        case '"':
            for (i++; i < a->len && s[i] != '"'; i++) {
                if (s[i] == '\\') {
                    i++;
                }
            }

            i++;
            m = m ? tg_json_next(m) : NULL;
            break;

        case '{':
        case '[':
            if (m == NULL || m->str != s + i) {
                /* cannot happen: the elements are the nodes, in order */
                return;
            }

            i += m->len;
            m = tg_json_next(m);
            break;

        case 't':
        case 'f':
        case 'n':
            while (i < a->len && s[i] >= 'a' && s[i] <= 'z') {
                i++;
            }

            m = m ? tg_json_next(m) : NULL;
            break;

        case '-': case '0': case '1': case '2': case '3': case '4':
        case '5': case '6': case '7': case '8': case '9':
            start = i;

            while (i < a->len && s[i] != ',' && s[i] != ']' && s[i] != ' '
                   && s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
            {
                i++;
            }

            tg_scan_text(sc, s + start, i - start);
            break;

        default:
            /* ',' and white space */
            i++;
            break;
        }
    }
}


static void
tg_scan_string(tg_scan_t *sc, const tg_json_t *v, const tg_json_t *holder,
    int structural, unsigned depth)
{
    size_t            start;
    int64_t           media;
    const tg_json_t  *type, *mt;

    if (!structural || holder == NULL) {

        if (tg_scan_url_key(v) && !structural) {
            /*
             * a file in a tool's output or a prompt variable (Responses
             * function_call_output parts, prompt.variables): read as the
             * provider decodes it, counted as sent, as it may be text too
             */
            start = sc->len;
            media = sc->media;

            tg_scan_data_url(sc, v->str, v->len);

            sc->media = media;
            tg_scan_counted_as(sc, sc->len > start ? sc->text + start : NULL,
                               sc->len - start, v->str, v->len);
            return;
        }

        tg_scan_text(sc, v->str, v->len);
        return;
    }

    if (depth == 1 && tg_scan_eq(v->key, v->key_len, "model")) {
        return;
    }

    if ((tg_scan_eq(v->key, v->key_len, "type")
         || tg_scan_eq(v->key, v->key_len, "role"))
        && tg_scan_identifier(v->str, v->len))
    {
        return;
    }

    if (tg_scan_is(tg_scan_opaque, v->key, v->key_len, depth)) {
        return;
    }

    if (tg_scan_eq(v->key, v->key_len, "encrypted_content")) {
        /*
         * reasoning or compacted turns the provider decrypts and bills
         * as input: never text for the policy, estimated by their size
         * (an earlier conversation can be hundreds of kilobytes)
         */
        sc->est.ascii += (int64_t) v->len;
        return;
    }

    if (tg_scan_eq(v->key, v->key_len, "data")) {
        mt = tg_scan_media_type(holder);
        type = tg_json_get(holder, "type");

        if (mt != NULL && tg_scan_text_media(mt->str, mt->len)) {
            /* Anthropic's "text" source is plain, the others base64 */
            if (tg_json_is_string(type)
                && tg_scan_eq(type->str, type->len, "text"))
            {
                tg_scan_text(sc, v->str, v->len);

            } else {
                tg_scan_base64_media(sc, v->str, v->len, 1);
            }

            return;
        }

        if (tg_json_is_string(type)
            && tg_scan_eq(type->str, type->len, "redacted_thinking"))
        {
            /* encrypted thinking, billed as input: by its size, as above */
            sc->est.ascii += (int64_t) v->len;
            return;
        }

        if (mt != NULL
            || tg_scan_eq(holder->key, holder->key_len, "input_audio"))
        {
            tg_scan_base64_media(sc, v->str, v->len, 0);
            return;
        }
    }

    if (tg_scan_url_key(v)) {
        tg_scan_data_url(sc, v->str, v->len);
        return;
    }

    tg_scan_text(sc, v->str, v->len);
}


/* a data: URL under a key that names a file or a URL */
static int
tg_scan_url_key(const tg_json_t *v)
{
    /* the value first: it rules out nearly every string in one byte */
    return v->len > 5 && (v->str[0] | 0x20) == 'd'
           && strncasecmp(v->str, "data:", 5) == 0
           && (tg_scan_eq(v->key, v->key_len, "url")
               || tg_scan_eq(v->key, v->key_len, "image_url")
               || tg_scan_eq(v->key, v->key_len, "file_data")
               || tg_scan_eq(v->key, v->key_len, "audio_url"));
}


/* one part: as it is, or decoded if it is an escaped JSON document */
static void
tg_scan_text(tg_scan_t *sc, const char *s, size_t len)
{
    char    *p;
    size_t   i, n;

    if (len == 0) {
        return;
    }

    p = tg_scan_part(sc, len);
    if (p == NULL) {
        return;
    }

    memcpy(p, s, len);
    n = len;

    for (i = 0; i < len && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r'
                            || s[i] == '\t'); i++)
    {
        /* void */
    }

    if (i < len && (s[i] == '{' || s[i] == '[' || s[i] == '"')
        && memchr(s + i, '\\', len - i) != NULL)
    {
        n = tg_scan_document(sc, p, s, len);
    }

    tg_scan_end(sc, p, n);
}


/*
 * An escaped JSON document copied to p: read decoded, counted as sent.
 * Apart and never inlined, so that the hundreds of parts a body has do
 * not pay for its frame.
 */
static TG_SCAN_NOINLINE size_t
tg_scan_document(tg_scan_t *sc, char *p, const char *s, size_t len)
{
    size_t  n;

    n = tg_scan_unescape(p, len);
    tg_scan_counted_as(sc, p, n, s, len);

    return n;
}


/*
 * The text stored at stored (n bytes, in sc->text) is counted as the
 * text sent instead: the one pass of tg_scan_body() counts what is
 * stored, so the difference is added here.
 */
static void
tg_scan_counted_as(tg_scan_t *sc, const char *stored, size_t n,
    const char *sent, size_t len)
{
    tg_estimate_t  e;

    e.ascii = 0;
    e.other = 0;

    if (n) {
        tg_estimate_add(&e, stored, n);
    }

    sc->est.ascii -= e.ascii;
    sc->est.other -= e.other;

    tg_estimate_add(&sc->est, sent, len);
}


/*
 * Base64 media, read decoded: a text document (text), or media labelled
 * binary, read only if it is UTF-8 text after all.
 */
static void
tg_scan_base64_media(tg_scan_t *sc, const char *s, size_t len, int text)
{
    char    *p;
    size_t   n;

    if (len == 0) {
        return;
    }

    p = tg_scan_part(sc, len);
    if (p == NULL) {
        return;
    }

    n = tg_scan_decode64(s, len, p);

    if (text && n == (size_t) -1) {
        /* not base64 after all: what was sent is what is read */
        memcpy(p, s, len);
        n = len;

    } else if (text) {
        tg_scan_scrub(p, n);

    } else if (n == (size_t) -1 || !tg_scan_is_text(p, n)) {
        /* an image, audio, a PDF: not text, estimated at a flat rate */
        sc->media++;
        n = 0;
    }

    tg_scan_end(sc, p, n);
}


/* "data:[type][;base64],payload" */
static void
tg_scan_data_url(tg_scan_t *sc, const char *s, size_t len)
{
    int          base64, text;
    char        *p;
    size_t       i, n, tlen;
    const char  *comma, *payload;

    comma = memchr(s, ',', len);

    if (comma == NULL) {
        tg_scan_text(sc, s, len);
        return;
    }

    for (tlen = 5; s + tlen < comma && s[tlen] != ';'; tlen++) {
        /* void */
    }

    base64 = 0;

    for (i = tlen; s + i + 7 <= comma; i++) {
        if (strncasecmp(s + i, ";base64", 7) == 0) {
            base64 = 1;
        }
    }

    /* "data:,..." is text/plain */
    text = tlen == 5 || tg_scan_text_media(s + 5, tlen - 5);

    payload = comma + 1;
    len -= payload - s;

    if (base64) {
        tg_scan_base64_media(sc, payload, len, text);
        return;
    }

    if (len == 0) {
        return;
    }

    p = tg_scan_part(sc, len);
    if (p == NULL) {
        return;
    }

    n = tg_scan_percent(payload, len, p);

    if (!text && !tg_scan_is_text(p, n)) {
        sc->media++;
        n = 0;
    }

    tg_scan_scrub(p, n);
    tg_scan_end(sc, p, n);
}


/* valid UTF-8 without control bytes other than tab, CR, LF and FF */
static int
tg_scan_is_text(const char *s, size_t len)
{
    size_t         i, k;
    unsigned char  b;

    for (i = 0; i < len; i += k) {
        b = (unsigned char) s[i];

        if (b < 0x20 && b != '\t' && b != '\n' && b != '\r' && b != '\f') {
            return 0;
        }

        k = tg_json_utf8_len(s + i, len - i);
        if (k == 0) {
            return 0;
        }
    }

    return 1;
}


/*
 * Room for a part of len bytes and its separator: the caller's buffer
 * (the body's size) is enough for a request, so this is rarely called.
 */
static int
tg_scan_grow(tg_scan_t *sc, size_t len)
{
    char    *p;
    size_t   need, size;

    need = sc->len + len + 2;
    size = sc->size ? sc->size : 1024;

    while (size < need) {
        size *= 2;
    }

    p = realloc(sc->text, size);
    if (p == NULL) {
        sc->nomem = 1;
        return -1;
    }

    sc->text = p;
    sc->size = size;

    return 0;
}


static inline char *
tg_scan_part(tg_scan_t *sc, size_t len)
{
    if (sc->len + len + 2 > sc->size && tg_scan_grow(sc, len) != 0) {
        return NULL;
    }

    if (sc->len) {
        sc->text[sc->len++] = '\n';
    }

    return sc->text + sc->len;
}


static void
tg_scan_end(tg_scan_t *sc, char *p, size_t n)
{
    if (n == 0 && p > sc->text) {
        /* nothing after the separator: take it back */
        sc->len--;
    }

    sc->len += n;
    sc->text[sc->len] = '\0';
}


static int
tg_scan_is(const tg_scan_key_t *keys, const char *key, size_t len,
    unsigned depth)
{
    if (len == 0) {
        return 0;
    }

    for ( /* void */ ; keys->name != NULL; keys++) {
        if (keys->len == len && keys->name[0] == key[0]
            && memcmp(keys->name, key, len) == 0)
        {
            return !keys->root_only || depth == 1;
        }
    }

    return 0;
}


static int
tg_scan_eq(const char *s, size_t len, const char *word)
{
    return s != NULL && strlen(word) == len && memcmp(s, word, len) == 0;
}


/* a tag: "user", "input_text", "tool_result", "image/png" is not one */
static int
tg_scan_identifier(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > 64) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '_' || s[i] == '-' || s[i] == '.'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * The media type of the object holding "data": a text one if any of the
 * names a provider may read says text (Gemini takes "mimeType" and
 * "mime_type" alike), else the first there is.
 */
static const tg_json_t *
tg_scan_media_type(const tg_json_t *holder)
{
    size_t            i;
    const tg_json_t  *mt, *first;

    static const char  *names[] = { "media_type", "mimeType", "mime_type" };

    first = NULL;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        mt = tg_json_get(holder, names[i]);

        if (!tg_json_is_string(mt)) {
            continue;
        }

        if (tg_scan_text_media(mt->str, mt->len)) {
            return mt;
        }

        if (first == NULL) {
            first = mt;
        }
    }

    return first;
}


int
tg_scan_text_media(const char *type, size_t len)
{
    size_t       i, n;
    const char  *sub;

    static const char  *text[] = {
        "json", "xml", "javascript", "x-javascript", "ecmascript",
        "yaml", "x-yaml", "toml", "x-toml", "x-python", "x-sh", "sql",
        "graphql", "csv", "x-csv", "rtf", "x-tex", "x-httpd-php",
        "x-ndjson", "ndjson", "jsonl", "x-www-form-urlencoded", NULL
    };

    /* parameters (";charset=...") do not change what the type is */
    for (n = 0; n < len && type[n] != ';' && type[n] != ' '; n++) {
        /* void */
    }

    if (n >= 5 && strncasecmp(type, "text/", 5) == 0) {
        return 1;
    }

    if (n < 12 || strncasecmp(type, "application/", 12) != 0) {
        return 0;
    }

    sub = type + 12;
    n -= 12;

    /* "application/ld+json", "application/atom+xml" */
    if ((n > 5 && strncasecmp(sub + n - 5, "+json", 5) == 0)
        || (n > 4 && strncasecmp(sub + n - 4, "+xml", 4) == 0))
    {
        return 1;
    }

    for (i = 0; text[i] != NULL; i++) {
        if (strlen(text[i]) == n && strncasecmp(sub, text[i], n) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * Base64 as the provider decodes it.  Strict first; a string that is not
 * strict base64 is decoded as the lenient decoders do (Python's
 * b64decode, Node's Buffer): every byte outside the alphabet skipped,
 * "=" included, so "QU*tJQ=Q" still reads "AKI".  -1: no base64 at all.
 */
static size_t
tg_scan_decode64(const char *s, size_t len, char *out)
{
    size_t  n;

    n = tg_scan_base64(s, len, out, 0);

    if (n == (size_t) -1) {
        n = tg_scan_base64(s, len, out, 1);
    }

    return n == 0 ? (size_t) -1 : n;
}


/* RFC 4648 base64, also URL-safe, whitespace skipped; -1 if it is not */
static size_t
tg_scan_base64(const char *s, size_t len, char *out, int lenient)
{
    int            v;
    size_t         i, n, bits;
    uint32_t       acc;
    unsigned char  c;

    acc = 0;
    bits = 0;
    n = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';

        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;

        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;

        } else if (c == '+' || c == '-') {
            v = 62;

        } else if (c == '/' || c == '_') {
            v = 63;

        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t'
                   || lenient)
        {
            continue;

        } else if (c == '=') {
            break;

        } else {
            return (size_t) -1;
        }

        acc = (acc << 6) | (uint32_t) v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            out[n++] = (char) (acc >> bits);
        }
    }

    for ( /* void */ ; i < len; i++) {
        if (s[i] != '=' && s[i] != ' ' && s[i] != '\n' && s[i] != '\r'
            && s[i] != '\t')
        {
            return (size_t) -1;
        }
    }

    return n;
}


static size_t
tg_scan_percent(const char *s, size_t len, char *out)
{
    int     hi, lo;
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len
            && (hi = tg_scan_hex(s[i + 1])) >= 0
            && (lo = tg_scan_hex(s[i + 2])) >= 0)
        {
            out[n++] = (char) (hi << 4 | lo);
            i += 2;

        } else {
            out[n++] = s[i];
        }
    }

    return n;
}


/*
 * Bytes that are not UTF-8 become '?': decoded media is the client's, and
 * the regex engine must be given valid UTF-8 in full, not refuse it.
 */
static void
tg_scan_scrub(char *s, size_t len)
{
    size_t  i, k;

    for (i = 0; i < len; i += k) {
        k = tg_json_utf8_len(s + i, len - i);

        if (k == 0) {
            s[i] = '?';
            k = 1;
        }
    }
}


static int
tg_scan_hex(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* "\\uXXXX" at s + i: its value */
static int
tg_scan_u(const char *s, size_t len, size_t i, uint32_t *out)
{
    if (i + 6 > len || s[i] != '\\' || s[i + 1] != 'u') {
        return -1;
    }

    return tg_json_hex4(s + i + 2, out);
}


/* "\uXXXX" (or a surrogate pair) at s + i: its length, 0 if not one */
static size_t
tg_scan_code_point(const char *s, size_t len, size_t i, uint32_t *c)
{
    uint32_t  lo;

    if (tg_scan_u(s, len, i, c) != 0) {
        return 0;
    }

    if (*c >= 0xd800 && *c <= 0xdbff
        && tg_scan_u(s, len, i + 6, &lo) == 0
        && lo >= 0xdc00 && lo <= 0xdfff)
    {
        *c = 0x10000 + ((*c - 0xd800) << 10) + (lo - 0xdc00);
        return 12;
    }

    if (*c >= 0xd800 && *c <= 0xdfff) {
        /* a lone surrogate is no character: left as written */
        return 0;
    }

    return 6;
}


size_t
tg_scan_unescape(char *s, size_t len)
{
    int        e, changed;
    char      *d;
    size_t     i, n, pass;
    uint32_t   c;

    for (pass = 0; pass < TG_SCAN_UNESCAPE_PASSES; pass++) {
        d = s;
        changed = 0;

        for (i = 0; i < len; i++) {

            if (s[i] != '\\' || i + 1 == len) {
                *d++ = s[i];
                continue;
            }

            e = tg_json_escape(s[i + 1]);

            if (e >= 0) {
                *d++ = (char) e;
                i++;

            } else if ((n = tg_scan_code_point(s, len, i, &c)) != 0) {
                d += tg_json_utf8_put(d, c);
                i += n - 1;

            } else {
                /* not an escape JSON knows: left as written */
                *d++ = s[i];
                continue;
            }

            changed = 1;
        }

        len = d - s;

        if (!changed || memchr(s, '\\', len) == NULL) {
            break;
        }
    }

    return len;
}
