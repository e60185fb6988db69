#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tg_refusal.h"


static const tg_refusal_info_t  tg_refusals[] = {
    { "identity_required", 401, "deny_identity", "authentication_error",
      "UNAUTHENTICATED" },
    { "invalid_request", 400, "deny_invalid", "invalid_request_error",
      "INVALID_ARGUMENT" },
    { "body_too_large", 413, "deny_invalid", "invalid_request_error",
      "INVALID_ARGUMENT" },
    { "model_not_allowed", 403, "deny_policy", "permission_error",
      "PERMISSION_DENIED" },
    { "prompt_denied", 403, "deny_policy", "permission_error",
      "PERMISSION_DENIED" },
    { "budget_exceeded", 429, "deny_budget", "rate_limit_error",
      "RESOURCE_EXHAUSTED" },
    { "sandbox_exhausted", 429, "deny_sandbox", "rate_limit_error",
      "RESOURCE_EXHAUSTED" },
    { "store_unavailable", 503, "store_error", "api_error",
      "UNAVAILABLE" },
    { "endpoint_not_allowed", 403, "deny_endpoint", "permission_error",
      "PERMISSION_DENIED" }
};


const tg_refusal_info_t *
tg_refusal_info(tg_refusal_e r)
{
    return &tg_refusals[r];
}


/*
 * A message names what the caller sent (a user name, a model) and may be
 * cut short: JSON strings must be UTF-8, so a message that is not loses
 * its non-ASCII bytes rather than the whole refusal.
 */
static json_t *
tg_refusal_message(const char *message)
{
    char    *p;
    size_t   i;
    json_t  *s;

    s = json_string(message);
    if (s != NULL) {
        return s;
    }

    p = strdup(message);
    if (p == NULL) {
        return NULL;
    }

    for (i = 0; p[i]; i++) {
        if ((unsigned char) p[i] >= 0x80) {
            p[i] = '?';
        }
    }

    s = json_string(p);
    free(p);

    return s;
}


char *
tg_refusal_body(tg_provider_e provider, tg_refusal_e r, const char *message,
    size_t *len)
{
    char                     *s;
    json_t                   *root, *msg;
    const tg_refusal_info_t  *info;

    info = &tg_refusals[r];

    msg = tg_refusal_message(message);
    if (msg == NULL) {
        return NULL;
    }

    /* "o" takes the message's reference, also when json_pack() fails */

    switch (provider) {

    case TG_PROVIDER_ANTHROPIC:
        root = json_pack("{s:s, s:{s:s, s:o}}",
                         "type", "error",
                         "error", "type", info->anthropic_type,
                                  "message", msg);
        break;

    case TG_PROVIDER_GEMINI:
        root = json_pack("{s:{s:i, s:o, s:s}}",
                         "error", "code", info->status,
                                  "message", msg,
                                  "status", info->gemini_status);
        break;

    default:
        root = json_pack("{s:{s:o, s:s, s:s, s:n}}",
                         "error", "message", msg,
                                  "type", "tokenguard_error",
                                  "code", info->code,
                                  "param");
        break;
    }

    if (root == NULL) {
        return NULL;
    }

    s = json_dumps(root, JSON_COMPACT);
    json_decref(root);

    if (s != NULL) {
        *len = strlen(s);
    }

    return s;
}
