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
      "UNAVAILABLE" }
};


const tg_refusal_info_t *
tg_refusal_info(tg_refusal_e r)
{
    return &tg_refusals[r];
}


char *
tg_refusal_body(tg_provider_e provider, tg_refusal_e r, const char *message,
    size_t *len)
{
    char                     *s;
    json_t                   *root;
    const tg_refusal_info_t  *info;

    info = &tg_refusals[r];

    switch (provider) {

    case TG_PROVIDER_ANTHROPIC:
        root = json_pack("{s:s, s:{s:s, s:s}}",
                         "type", "error",
                         "error", "type", info->anthropic_type,
                                  "message", message);
        break;

    case TG_PROVIDER_GEMINI:
        root = json_pack("{s:{s:i, s:s, s:s}}",
                         "error", "code", info->status,
                                  "message", message,
                                  "status", info->gemini_status);
        break;

    default:
        root = json_pack("{s:{s:s, s:s, s:s, s:n}}",
                         "error", "message", message,
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
