/*
 * A small JSON parser for the request and response bodies read on every
 * request: one pass, nodes in one growing array (inside the document for
 * small inputs), strings left in the input unless they hold escapes, no
 * allocation per value.  It checks what jansson checks
 * (UTF-8, escapes, numbers, nesting, duplicate keys when asked) and never
 * quotes the input in its errors.  Pure C, no nginx headers.
 */

#ifndef TG_JSON_H
#define TG_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>


typedef enum {
    TG_JSON_NULL = 0,
    TG_JSON_FALSE,
    TG_JSON_TRUE,
    TG_JSON_NUMBER,
    TG_JSON_STRING,
    TG_JSON_ARRAY,
    TG_JSON_OBJECT
} tg_json_type_e;


typedef struct tg_json_s  tg_json_t;

/*
 * 32 bytes a value: the first child, when there is one, is the next node
 * (nodes are in document order), and a number keeps only its text.
 */
struct tg_json_s {
    const char      *str;       /* a string, decoded: in the input when it
                                   has no escape, so not NUL-terminated;
                                   any other value as it is in the input */
    const char      *key;       /* a member's decoded key, as str */
    uint32_t         len;       /* of str */
    uint32_t         key_len;
    int32_t          next;      /* to the next sibling, in nodes; 0: none */
    uint32_t         type:3;    /* tg_json_type_e */
    uint32_t         child:1;   /* the next node is the first child */
    uint32_t         count:28;  /* children of an array or object */
};


/* the nodes a document holds without an allocation: 2 KB */
#define TG_JSON_SMALL  64


/*
 * The values point into the input, which must outlive them, and into the
 * document itself (small), which must not be copied or moved meanwhile.
 */
typedef struct {
    tg_json_t       *nodes;     /* small, or malloc()ed once it is full */
    size_t           n;
    size_t           nalloc;
    size_t           max;       /* nodes allowed, TG_JSON_BOUNDED */
    size_t           hint;      /* nodes to allocate once small is full */
    char            *strings;   /* decoded strings; malloc()ed at the
                                   first escape */
    size_t           slen;
    size_t           ssize;
    int              nomem;
    size_t           position;  /* of an error, in bytes */
    char             error[64];
    tg_json_t        small[TG_JSON_SMALL];
} tg_json_doc_t;


#define TG_JSON_REJECT_DUPLICATES  0x1
#define TG_JSON_ALLOW_NUL          0x2      /* "\u0000" in strings */
#define TG_JSON_ONE_VALUE          0x4      /* whatever follows is ignored */

/*
 * The numbers of an array are checked and counted but get no node (token
 * ids), and an input may have at most TG_JSON_NODES_MAX(len) nodes: the
 * nodes then take at most 8 times the input's size plus 128 KB.
 */
#define TG_JSON_BOUNDED            0x8
#define TG_JSON_NODES_MAX(len)     ((len) / 4 + 4096)

#define TG_JSON_MAX_DEPTH          2048


/* NULL on error: doc->error and doc->position, or doc->nomem */
tg_json_t *tg_json_parse(tg_json_doc_t *doc, const char *s, size_t len,
    int flags);
void tg_json_free(tg_json_doc_t *doc);

/* a number's value (parsed again from its text: few are ever read) */
double tg_json_number(const tg_json_t *v);

/*
 * The member "key" of an object; NULL if v is not an object or has none.
 * A literal key's length is known at compile time.
 */
tg_json_t *tg_json_getn(const tg_json_t *v, const char *key, size_t len);

#define tg_json_get(v, key)  tg_json_getn(v, key, strlen(key))

/*
 * A decoded string (s, len) read as the NUL-terminated literal w: up to
 * its first NUL, as strcmp() read the NUL-terminated strings this parser
 * used to give ("tool\u0000x" is "tool").
 */
#define tg_json_eq(s, len, w)                                                 \
    ((len) >= sizeof(w) - 1 && memcmp(s, w, sizeof(w) - 1) == 0               \
     && ((len) == sizeof(w) - 1 || (s)[sizeof(w) - 1] == '\0'))

/* v is a string that reads as the literal w */
#define tg_json_string_is(v, w)                                               \
    (tg_json_is_string(v) && tg_json_eq((v)->str, (v)->len, w))

#define tg_json_first(v)                                                      \
    ((v) != NULL && (v)->child ? (tg_json_t *) (v) + 1 : NULL)
#define tg_json_next(v)   ((v)->next ? (tg_json_t *) (v) + (v)->next : NULL)

/* the elements of an array (members of an object); none for a scalar */
#define tg_json_foreach(a, v)                                                 \
    for ((v) = tg_json_first(a); (v) != NULL; (v) = tg_json_next(v))
#define tg_json_array_foreach(a, i, v)                                        \
    for ((i) = 0, (v) = tg_json_first(a); (v) != NULL;                       \
         (i)++, (v) = tg_json_next(v))

#define tg_json_string_value(v)   ((v)->str)
#define tg_json_string_length(v)  ((v)->len)
#define tg_json_number_value(v)   tg_json_number(v)
#define tg_json_array_size(v)     ((size_t) (v)->count)

#define tg_json_is(v, t)                                                      \
    ((v) != NULL && (tg_json_type_e) (v)->type == (t))
#define tg_json_is_null(v)      tg_json_is(v, TG_JSON_NULL)
#define tg_json_is_true(v)      tg_json_is(v, TG_JSON_TRUE)
#define tg_json_is_boolean(v)                                                 \
    (tg_json_is(v, TG_JSON_TRUE) || tg_json_is(v, TG_JSON_FALSE))
#define tg_json_is_number(v)    tg_json_is(v, TG_JSON_NUMBER)
#define tg_json_is_string(v)    tg_json_is(v, TG_JSON_STRING)
#define tg_json_is_array(v)     tg_json_is(v, TG_JSON_ARRAY)
#define tg_json_is_object(v)    tg_json_is(v, TG_JSON_OBJECT)

/*
 * The value's text without the whitespace between tokens (a malloc()ed,
 * NUL-terminated copy), for values counted as text: tool arguments.  Not
 * for a string, whose str is already decoded.
 */
char *tg_json_compact(const tg_json_t *v, size_t *len);

/*
 * The pieces of JSON's text that tg_scan.c decodes too (escaped documents
 * inside strings): the length of the UTF-8 character at s (n bytes left),
 * 0 if it is not one; a code point written as UTF-8 at d, its length (at
 * most 4); the byte a one-letter escape ("\n") stands for, -1 for none;
 * four hex digits at s, -1 if they are not.
 */
size_t tg_json_utf8_len(const char *s, size_t n);
size_t tg_json_utf8_put(char *d, uint32_t c);
int tg_json_escape(char c);
int tg_json_hex4(const char *s, uint32_t *out);

/*
 * How many bytes at s a string holds as they are: none of '"', '\\',
 * controls or non-ASCII.  With SSE2 where the compiler has it; the
 * portable version is what other machines run (and the tests compare).
 */
size_t tg_json_plain_span(const char *s, size_t len);
size_t tg_json_plain_span_portable(const char *s, size_t len);

#endif /* TG_JSON_H */
