#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tg_request.h"


static int
inspect(const char *uri, const char *body, tg_request_t *rq)
{
    tg_endpoint_t  ep;

    tg_endpoint_detect(uri, strlen(uri), TG_PROVIDER_AUTO, &ep);

    return tg_request_inspect(&ep, uri, body, strlen(body), rq);
}


static void
invalid(const char *uri, const char *body, const char *name)
{
    tg_request_t  rq;

    ok(inspect(uri, body, &rq) == TG_INVALID && rq.error[0] != '\0',
       "request: invalid: %s (%s)", name, rq.error);
    tg_request_free(&rq);
}


void
test_request(void)
{
    int            i;
    char          *deep;
    tg_request_t   rq;
    const char    *chat = "/v1/chat/completions";

    ok(inspect(chat, "{\"model\":\"gpt-4o\",\"stream\":true,"
               "\"max_completion_tokens\":300,\"max_tokens\":10,\"n\":2,"
               "\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
               "{\"role\":\"user\",\"content\":[{\"type\":\"text\","
               "\"text\":\"Summarise this\"},{\"type\":\"image_url\","
               "\"image_url\":{\"url\":\"x\"}}]}]}", &rq) == TG_OK,
       "request: openai chat parses");
    is_str(rq.model, "gpt-4o", "request: chat model");
    ok(rq.stream, "request: chat stream");
    is_int(rq.max_output, 300, "request: the larger of the two limits");
    is_int(rq.choices, 2, "request: n");
    ok(!rq.tools, "request: chat without tools");
    /* an image URL is read as it is (the provider fetches it) */
    is_str(rq.prompt, "Be brief.\nSummarise this\nx", "request: chat prompt");
    /* 26 text bytes = 7 tokens, 2 messages x 4, one image 1000 */
    is_int(rq.prompt_tokens, 7 + 8 + 1000, "request: chat estimate");
    tg_request_drop_prompt(&rq);
    ok(rq.prompt == NULL && rq.prompt_len == 0,
       "request: the prompt dropped after the decision");
    is_str(rq.model, "gpt-4o", "request: the model kept");
    is_int(rq.prompt_tokens, 7 + 8 + 1000, "request: the estimate kept");
    tg_request_free(&rq);

    /* red team: a reservation for what any server may read */
    ok(inspect(chat, "{\"model\":\"m\",\"max_tokens\":90000,"
               "\"max_completion_tokens\":5,\"best_of\":4,\"messages\":"
               "[{\"role\":\"user\",\"content\":\"x\"}]}", &rq) == TG_OK,
       "request: chat with two limits parses");
    is_int(rq.max_output, 90000, "request: max_tokens larger than"
           " max_completion_tokens is reserved");
    is_int(rq.choices, 4, "request: best_of reserved as choices");
    tg_request_free(&rq);
    ok(inspect("/v1/completions", "{\"model\":\"m\",\"prompt\":\"x\","
               "\"max_tokens\":10,\"n\":2,\"best_of\":20}", &rq) == TG_OK,
       "request: completions with best_of parses");
    is_int(rq.choices, 20, "request: completions best_of generated, billed");
    tg_request_free(&rq);
    ok(inspect("/v1beta/models/g:generateContent", "{\"contents\":[{"
               "\"parts\":[{\"text\":\"x\"}]}],\"generationConfig\":{"
               "\"maxOutputTokens\":5,\"max_output_tokens\":9000,"
               "\"candidate_count\":3}}", &rq) == TG_OK,
       "request: gemini with both spellings parses");
    is_int(rq.max_output, 9000, "request: gemini the larger spelling");
    is_int(rq.choices, 3, "request: gemini candidate_count");
    tg_request_free(&rq);
    ok(inspect("/v1/responses", "{\"model\":\"m\",\"input\":\"x\","
               "\"background\":true}", &rq) == TG_OK && rq.background,
       "request: responses background known from the request");
    tg_request_free(&rq);

    /* input the provider keeps is named, not sent */
    ok(inspect("/v1/responses", "{\"model\":\"m\",\"input\":\"x\","
               "\"previous_response_id\":\"resp_1\"}", &rq) == TG_OK
       && rq.stored, "request: responses previous_response_id is stored input");
    tg_request_free(&rq);
    ok(inspect("/v1/responses", "{\"model\":\"m\",\"input\":\"x\","
               "\"conversation\":{\"id\":\"conv_1\"}}", &rq) == TG_OK
       && rq.stored, "request: responses conversation is stored input");
    tg_request_free(&rq);
    ok(inspect("/v1/responses", "{\"model\":\"m\",\"prompt\":{\"id\":"
               "\"pmpt_1\",\"variables\":{\"a\":\"b\"}}}", &rq) == TG_OK
       && rq.stored, "request: responses prompt template is stored input");
    tg_request_free(&rq);
    ok(inspect("/v1/responses", "{\"model\":\"m\",\"input\":[{\"id\":"
               "\"msg_1\"}]}", &rq) == TG_OK && rq.stored,
       "request: responses item by id alone is stored input");
    tg_request_free(&rq);
    ok(inspect("/v1/responses", "{\"model\":\"m\",\"input\":[{\"type\":"
               "\"item_reference\",\"id\":\"msg_1\"}],\"prompt\":null}",
               &rq) == TG_OK && rq.stored,
       "request: responses item_reference is stored input, a null prompt"
       " does not undo it");
    tg_request_free(&rq);
    ok(inspect("/v1/responses", "{\"model\":\"m\",\"input\":[{\"type\":"
               "\"compaction\",\"encrypted_content\":\"x\"}]}", &rq)
       == TG_OK && rq.stored, "request: responses compaction is stored input");
    tg_request_free(&rq);
    ok(inspect("/v1/responses", "{\"model\":\"m\",\"input\":[{\"role\":"
               "\"user\",\"content\":\"hi\",\"id\":\"msg_1\"}]}", &rq)
       == TG_OK && !rq.stored,
       "request: responses message with its content and an id is sent input");
    tg_request_free(&rq);
    ok(inspect(chat, "{\"model\":\"gemini-2.5-flash\",\"messages\":[{"
               "\"role\":\"user\",\"content\":\"q\"}],\"extra_body\":{"
               "\"google\":{\"cached_content\":\"cachedContents/c\"}}}", &rq)
       == TG_OK && rq.stored,
       "request: chat with Gemini's cached_content is stored input");
    tg_request_free(&rq);
    ok(inspect("/v1beta/models/g:generateContent", "{\"contents\":[{"
               "\"parts\":[{\"text\":\"x\"}]}],\"cached_content\":"
               "\"cachedContents/c1\"}", &rq) == TG_OK && rq.stored,
       "request: gemini cached_content is stored input");
    tg_request_free(&rq);

    /* files the provider reads by id or URL: stored; images: bounded */
    ok(inspect("/v1/responses", "{\"model\":\"m\",\"input\":[{\"role\":"
               "\"user\",\"content\":[{\"type\":\"input_file\","
               "\"file_id\":\"file-1\"}]}]}", &rq) == TG_OK && rq.stored,
       "request: responses input_file by id is stored input");
    tg_request_free(&rq);
    ok(inspect("/v1/responses", "{\"model\":\"m\",\"input\":[{\"role\":"
               "\"user\",\"content\":[{\"type\":\"input_image\","
               "\"image_url\":\"https://x/i.png\"}]}]}", &rq) == TG_OK
       && !rq.stored, "request: responses image by URL is media");
    tg_request_free(&rq);
    ok(inspect(chat, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
               "\"content\":[{\"type\":\"file\",\"file\":{\"file_id\":"
               "\"file-1\"}}]}]}", &rq) == TG_OK && rq.stored,
       "request: chat file by id is stored input");
    tg_request_free(&rq);
    ok(inspect("/v1/messages", "{\"model\":\"c\",\"max_tokens\":5,"
               "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
               "\"document\",\"source\":{\"type\":\"url\",\"url\":"
               "\"https://x/a.pdf\"}}]}]}", &rq) == TG_OK && rq.stored,
       "request: anthropic document by URL is stored input");
    tg_request_free(&rq);
    ok(inspect("/v1/messages", "{\"model\":\"c\",\"max_tokens\":5,"
               "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
               "\"image\",\"source\":{\"type\":\"url\",\"url\":"
               "\"https://x/a.png\"}}]}]}", &rq) == TG_OK && !rq.stored,
       "request: anthropic image by URL is media");
    tg_request_free(&rq);
    ok(inspect("/v1beta/models/g:generateContent", "{\"contents\":[{"
               "\"parts\":[{\"fileData\":{\"mimeType\":\"video/mp4\","
               "\"fileUri\":\"gs://b/v.mp4\"}}]}]}", &rq) == TG_OK
       && rq.stored, "request: gemini video by URI is stored input");
    tg_request_free(&rq);
    ok(inspect("/v1beta/models/g:generateContent", "{\"contents\":[{"
               "\"parts\":[{\"file_data\":{\"mime_type\":\"IMAGE/png\","
               "\"file_uri\":\"gs://b/i.png\"}}]}]}", &rq) == TG_OK
       && !rq.stored, "request: gemini image by URI is media");
    tg_request_free(&rq);
    ok(inspect("/v1/responses", "{\"model\":\"m\",\"input\":[{\"role\":"
               "\"user\",\"content\":[{\"type\":\"input_image\","
               "\"file_id\":\"file-1\"}]}]}", &rq) == TG_OK && !rq.stored,
       "request: responses image by file id is media");
    tg_request_free(&rq);
    ok(inspect("/v1/responses", "{\"model\":\"m\",\"input\":[{\"type\":"
               "\"function_call_output\",\"call_id\":\"c\",\"output\":[{"
               "\"type\":\"input_file\",\"file_url\":\"https://x/a.pdf\"}"
               "]}]}", &rq) == TG_OK && rq.stored,
       "request: responses file in a tool's output is stored input");
    tg_request_free(&rq);
    ok(inspect("/v1/responses", "{\"model\":\"m\",\"input\":[{\"role\":"
               "\"user\",\"content\":[{\"type\":\"input_file\",\"text\":"
               "\"\",\"file_id\":\"file-1\"}]}]}", &rq) == TG_OK
       && rq.stored, "request: a file with a text beside it is stored input");
    tg_request_free(&rq);
    ok(inspect("/v1/responses", "{\"model\":\"m\",\"input\":[{\"id\":"
               "\"msg_1\",\"content\":null}]}", &rq) == TG_OK && rq.stored,
       "request: responses item by id with a null content is stored input");
    tg_request_free(&rq);
    ok(inspect("/v1beta/models/g:generateContent", "{\"contents\":[{"
               "\"parts\":[{\"functionResponse\":{\"name\":\"f\","
               "\"response\":{},\"parts\":[{\"fileData\":{\"mimeType\":"
               "\"application/pdf\",\"fileUri\":\"gs://b/a.pdf\"}}]}}]}]}",
               &rq) == TG_OK && rq.stored,
       "request: gemini file in a function response is stored input");
    tg_request_free(&rq);
    ok(inspect("/v1beta/models/g:generateContent", "{\"contents\":[{"
               "\"parts\":[{\"text\":\"x\",\"fileData\":{"
               "\"fileUri\":\"gs://b/a\"}}]}]}", &rq) == TG_OK && rq.stored,
       "request: gemini file of no type beside a text is stored input");
    tg_request_free(&rq);
    ok(inspect("/v1/responses", "{\"model\":\"m\",\"input\":\"x\","
               "\"previous_response_id\":null}", &rq) == TG_OK
       && !rq.stored, "request: responses without stored input");
    tg_request_free(&rq);
    ok(inspect("/v1beta/models/g:generateContent", "{\"contents\":[{"
               "\"parts\":[{\"text\":\"x\"}]}],\"cachedContent\":"
               "\"cachedContents/c1\"}", &rq) == TG_OK && rq.stored,
       "request: gemini cachedContent is stored input");
    tg_request_free(&rq);
    ok(inspect(chat, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"q\"}],\"previous_response_id\":\"r\"}", &rq)
       == TG_OK && !rq.stored,
       "request: chat keeps nothing, whatever the body says");
    tg_request_free(&rq);

    ok(inspect(chat, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"q\"},{\"role\":\"assistant\",\"content\":null,"
               "\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":"
               "\"{\\\"a\\\":1}\"}}]},{\"role\":\"tool\",\"content\":\"r\"}]}",
               &rq) == TG_OK && rq.tools, "request: chat tool calls");
    is_str(rq.prompt, "q\nf\n{\"a\":1}\nr",
           "request: tool name and arguments counted");
    is_int(rq.max_output, -1, "request: no limit named");
    ok(!rq.stream, "request: stream absent");
    tg_request_free(&rq);

    ok(inspect(chat, "{\"model\":\"m\",\"tools\":[{\"type\":\"function\"}],"
               "\"messages\":[]}", &rq) == TG_OK && rq.tools,
       "request: chat tools defined");
    tg_request_free(&rq);

    ok(inspect("/v1/completions", "{\"model\":\"davinci\",\"prompt\":"
               "[\"one\",\"two\"],\"max_tokens\":5}", &rq) == TG_OK,
       "request: completions parses");
    is_str(rq.prompt, "one\ntwo", "request: completions prompt");
    is_int(rq.max_output, 5, "request: completions max_tokens");
    tg_request_free(&rq);

    ok(inspect("/v1/completions", "{\"model\":\"m\",\"prompt\":[1,2,3]}", &rq)
       == TG_OK && rq.prompt_tokens == 3, "request: token id prompt");
    tg_request_free(&rq);

    ok(inspect("/v1/responses", "{\"model\":\"o3\",\"instructions\":\"Sys\","
               "\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
               "\"input_text\",\"text\":\"Hello\"}]},{\"type\":"
               "\"function_call_output\",\"call_id\":\"c\",\"output\":\"42\"}],"
               "\"max_output_tokens\":77,\"stream\":true}", &rq) == TG_OK,
       "request: responses parses");
    is_str(rq.prompt, "Sys\nHello\nc\n42", "request: responses prompt");
    ok(rq.tools && rq.stream, "request: responses tools and stream");
    is_int(rq.max_output, 77, "request: max_output_tokens");
    tg_request_free(&rq);

    ok(inspect("/v1/responses", "{\"model\":\"o3\",\"input\":\"Hi\"}", &rq)
       == TG_OK, "request: responses string input");
    is_str(rq.prompt, "Hi", "request: responses string prompt");
    tg_request_free(&rq);

    ok(inspect("/v1/embeddings", "{\"model\":\"text-embedding-3-small\","
               "\"input\":\"embed me\"}", &rq) == TG_OK,
       "request: embeddings parses");
    ok(rq.embeddings && rq.max_output == 0, "request: embeddings no output");
    tg_request_free(&rq);

    ok(inspect("/v1/messages", "{\"model\":\"claude-sonnet-4-5\","
               "\"max_tokens\":1024,\"system\":[{\"type\":\"text\",\"text\":"
               "\"You are terse.\"}],\"messages\":[{\"role\":\"user\","
               "\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":"
               "[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":"
               "{\"q\":1}}]},{\"role\":\"user\",\"content\":[{\"type\":"
               "\"tool_result\",\"tool_use_id\":\"t\",\"content\":[{\"type\":"
               "\"text\",\"text\":\"ok\"}]}]}],\"stream\":true}", &rq)
       == TG_OK, "request: anthropic parses");
    is_str(rq.model, "claude-sonnet-4-5", "request: anthropic model");
    /* tool input is free-form: its keys and numbers are text too */
    is_str(rq.prompt, "You are terse.\nHi\nt\nf\nq\n1\nt\nok",
           "request: anthropic prompt");
    ok(rq.tools && rq.stream, "request: anthropic tools and stream");
    is_int(rq.max_output, 1024, "request: anthropic max_tokens");
    tg_request_free(&rq);

    ok(inspect("/v1beta/models/gemini-2.0-flash:streamGenerateContent",
               "{\"systemInstruction\":{\"parts\":[{\"text\":\"Sys\"}]},"
               "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":"
               "\"Hello\"},{\"inlineData\":{}}]},{\"role\":\"model\","
               "\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{}}}]}],"
               "\"generationConfig\":{\"maxOutputTokens\":64,"
               "\"candidateCount\":3}}", &rq) == TG_OK,
       "request: gemini parses");
    is_str(rq.model, "gemini-2.0-flash", "request: gemini model from URI");
    is_str(rq.prompt, "Sys\nHello\nf", "request: gemini prompt");
    ok(rq.stream && rq.tools, "request: gemini stream and tools");
    is_int(rq.max_output, 64, "request: gemini maxOutputTokens");
    is_int(rq.choices, 3, "request: gemini candidateCount");
    tg_request_free(&rq);

    ok(inspect("/v1beta/models/gemini-pro:generateContent",
               "{\"contents\":[],\"generation_config\":"
               "{\"max_output_tokens\":9}}", &rq) == TG_OK
       && rq.max_output == 9 && !rq.stream, "request: gemini snake_case");
    tg_request_free(&rq);

    ok(inspect(chat, "{\"model\":\"m\",\"messages\":[],\"seed\":"
               "123456789012345678901234567890}", &rq) == TG_OK,
       "request: huge integers elsewhere are accepted");
    tg_request_free(&rq);

    invalid(chat, "", "empty body");
    invalid(chat, "not json", "not JSON");
    invalid(chat, "[1,2]", "an array");
    invalid(chat, "{\"messages\":[]}", "no model");
    invalid(chat, "{\"model\":7,\"messages\":[]}", "model not a string");
    invalid(chat, "{\"model\":\"\",\"messages\":[]}", "empty model");
    invalid(chat, "{\"model\":\"m\"}", "no messages");
    invalid(chat, "{\"model\":\"m\",\"messages\":{}}", "messages an object");
    invalid(chat, "{\"model\":\"m\",\"messages\":[1]}", "message a number");
    invalid(chat, "{\"model\":\"m\",\"messages\":[{\"content\":5}]}",
            "content a number");
    invalid(chat, "{\"model\":\"m\",\"messages\":[],\"stream\":\"yes\"}",
            "stream a string");
    invalid(chat, "{\"model\":\"m\",\"messages\":[],\"max_tokens\":-1}",
            "negative max_tokens");
    invalid(chat, "{\"model\":\"m\",\"messages\":[],\"max_tokens\":1.5}",
            "fractional max_tokens");
    invalid(chat, "{\"model\":\"a\",\"model\":\"b\",\"messages\":[]}",
            "duplicate model");
    invalid("/v1/messages", "{\"model\":\"m\",\"messages\":[{\"role\":"
            "\"user\",\"content\":[3]}]}", "anthropic block a number");
    invalid("/v1beta/models/g:generateContent", "{}", "gemini no contents");
    invalid("/v1beta/models/g x:generateContent", "{\"contents\":[]}",
            "gemini model with a space");

    deep = malloc(200003);
    deep[0] = '{';
    memcpy(deep + 1, "\"model\":\"m\",\"messages\":", 23);
    for (i = 24; i < 200000; i++) {
        deep[i] = '[';
    }
    deep[200000] = '\0';
    invalid(chat, deep, "absurd nesting");
    free(deep);
}
