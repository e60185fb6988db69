/*
 * What an AI request asks for, read from its JSON body by dialect:
 * model, stream flag, output limit, prompt text, tool use and a prompt
 * token estimate.  Pure C (jansson), no nginx headers.
 */

#ifndef TG_REQUEST_H
#define TG_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "tg_endpoint.h"
#include "tg_json_edit.h"


#define TG_OK        0
#define TG_INVALID  -1          /* the request is bad: see rq->error */
#define TG_NOMEM    -2

#define TG_MODEL_MAX  256       /* longer model names are refused */


typedef struct {
    char       *model;          /* malloc()ed, NUL-terminated */
    size_t      model_len;

    int         stream;
    int64_t     max_output;     /* -1: the request names no limit */
    int64_t     choices;        /* n / candidateCount, at least 1 */
    int         tools;          /* tool definitions, calls or results */
    int         embeddings;     /* no output tokens at all */
    int         background;     /* Responses "background": true */
    int         stored;         /* names input the provider keeps (an
                                   earlier response, a conversation, a
                                   cache): its tokens are not in the body */

    char       *prompt;         /* all prompt text, one part a line */
    size_t      prompt_len;
    size_t      prompt_size;

    int64_t     prompt_tokens;  /* estimate, text plus format overhead */

    tg_json_places_t  places;   /* where the body's edits go */

    /* a message safe to show: never contains prompt text */
    char        error[160];
} tg_request_t;


/*
 * Parses body per ep's dialect; uri is the path that ep was detected on
 * (Gemini names the model there).  Returns TG_OK, TG_INVALID or TG_NOMEM.
 * rq must be released with tg_request_free() whatever the result.
 */
int tg_request_inspect(const tg_endpoint_t *ep, const char *uri,
    const char *body, size_t len, tg_request_t *rq);

void tg_request_free(tg_request_t *rq);

/*
 * A model name reaches headers, logs and Redis: 1 to TG_MODEL_MAX bytes
 * of printable ASCII (0x21-0x7e), no space, no control byte.
 */
int tg_request_model_valid(const char *s, size_t len);

/* the prompt text, once policy and routing are done with it */
void tg_request_drop_prompt(tg_request_t *rq);

#endif /* TG_REQUEST_H */
