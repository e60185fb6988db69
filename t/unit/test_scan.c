#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tg_json.h"
#include "tg_request.h"
#include "tg_scan.h"


/* the scanned text of a body, parts a line; "" for none, NULL on error */
static char *
scan(const char *body, int64_t *tokens)
{
    char           *text;
    tg_json_t      *root;
    tg_scan_t       sc;
    tg_json_doc_t   doc;

    root = tg_json_parse(&doc, body, strlen(body), TG_JSON_BOUNDED);
    if (root == NULL) {
        tg_json_free(&doc);
        return NULL;
    }

    memset(&sc, 0, sizeof(tg_scan_t));
    tg_scan_body(&sc, root);
    tg_json_free(&doc);

    if (tokens) {
        *tokens = tg_estimate_tokens(&sc.est);
    }

    text = sc.text ? sc.text : strdup("");

    return text;
}


static void
scanned(const char *body, const char *want, const char *name)
{
    char  *got;

    got = scan(body, NULL);
    is_str(got, want, name);
    free(got);
}


static void
unescaped(const char *in, const char *want, const char *name)
{
    char    buf[256];
    size_t  n;

    n = strlen(in);
    memcpy(buf, in, n);
    n = tg_scan_unescape(buf, n);
    buf[n] = '\0';
    is_str(buf, want, name);
}


void
test_scan(void)
{
    char           *s, *big;
    size_t          i, n;
    int64_t         tokens;
    tg_json_t      *v, *e;
    tg_json_doc_t   doc;

    /* the general rule: structure left out, text and free-form kept */
    scanned("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
            "\"content\":\"hi\"}],\"max_tokens\":5,\"stream\":true}",
            "hi", "scan: model, role, settings left out");
    scanned("{\"model\":\"m\",\"messages\":[{\"role\":\"AKIA\","
            "\"content\":\"x\"}]}", "AKIA\nx",
            "scan: a role that is no tag is read");
    scanned("{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
            "\"parameters\":{\"type\":\"object\",\"properties\":{\"KEY\":"
            "{\"type\":\"string\",\"maxLength\":9}}}}}]}",
            "type\nfunction\nfunction\nname\nf\nparameters\ntype\nobject\n"
            "properties\nKEY\ntype\nstring\nmaxLength\n9",
            "scan: tools are free-form: keys, tags and numbers read");
    scanned("{\"messages\":[{\"content\":[{\"type\":\"tool_use\",\"input\":"
            "{\"type\":\"image\",\"source\":{\"media_type\":\"image/png\","
            "\"data\":\"SECRET\"}}}]}]}",
            "type\nimage\nsource\nmedia_type\nimage/png\ndata\nSECRET",
            "scan: a media shape in tool input is read");
    scanned("{\"messages\":[{\"content\":[{\"type\":\"image\",\"source\":"
            "{\"type\":\"base64\",\"media_type\":\"image/png\","
            "\"data\":\"iVBORw0KGgo=\"}}]}]}", "image/png",
            "scan: image data left out");
    scanned("{\"messages\":[{\"content\":[{\"type\":\"document\",\"source\":"
            "{\"type\":\"base64\",\"media_type\":\"text/plain\","
            "\"data\":\"QUtJQQ==\"}}]}]}", "text/plain\nAKIA",
            "scan: base64 text document decoded");
    scanned("{\"messages\":[{\"content\":[{\"type\":\"document\",\"source\":"
            "{\"type\":\"text\",\"media_type\":\"text/plain\","
            "\"data\":\"QUtJQQ==\"}}]}]}", "text/plain\nQUtJQQ==",
            "scan: a text source is plain");
    scanned("{\"messages\":[{\"content\":[{\"type\":\"document\",\"source\":"
            "{\"type\":\"base64\",\"media_type\":\"text/plain\","
            "\"data\":\"*** ?!\"}}]}]}", "text/plain\n*** ?!",
            "scan: text media without a base64 byte is read as sent");
    /* Python's b64decode and Node's Buffer skip what is not base64 */
    scanned("{\"messages\":[{\"content\":[{\"type\":\"document\",\"source\":"
            "{\"type\":\"base64\",\"media_type\":\"text/plain\","
            "\"data\":\"QU*t=JQQ==\"}}]}]}", "text/plain\nAKIA",
            "scan: base64 with bytes a lenient decoder skips, decoded");
    scanned("{\"contents\":[{\"parts\":[{\"inlineData\":{\"mimeType\":"
            "\"image/png\",\"data\":\"QU!tJQQ\"}}]}]}", "image/png\nAKIA",
            "scan: binary-labelled base64 with junk bytes, read as text");
    scanned("{\"model\":\"m\",\"tools\":[{\"x\":[4111111111111111,"
            "[\"s\",-2.5e3,{\"k\":[7]}],true,\"a\\\"]\"]}]}",
            "x\ns\nk\n7\n-2.5e3\na\"]\n4111111111111111",
            "scan: numbers of free-form arrays are read");
    scanned("{\"model\":\"m\",\"prompt\":[[1,2],[3]]}", "",
            "scan: token ids of a prompt are not text");
    scanned("{\"contents\":[{\"parts\":[{\"inlineData\":{\"mimeType\":"
            "\"image/png\",\"mime_type\":\"text/plain\",\"data\":"
            "\"/0Hg\"}}]}]}", "image/png\ntext/plain\n?A?",
            "scan: text if any of the media type aliases is text");
    /* Responses: parts of a tool's output are free-form, their files too */
    scanned("{\"model\":\"m\",\"input\":[{\"type\":"
            "\"function_call_output\",\"output\":[{\"file_data\":"
            "\"data:text/plain;base64,QUtJQQ==\"}]}]}",
            "file_data\nAKIA",
            "scan: a data: URL in a free-form object is decoded");
    scanned("{\"contents\":[{\"parts\":[{\"inlineData\":{\"mimeType\":"
            "\"text/csv\",\"data\":\"YSxi\"}}]}]}", "text/csv\na,b",
            "scan: gemini inlineData text decoded");
    scanned("{\"contents\":[{\"parts\":[{\"inlineData\":{\"mimeType\":"
            "\"text/plain\",\"data\":\"/0Hg\"}}]}]}", "text/plain\n?A?",
            "scan: bytes of text media that are not UTF-8 read as ?");
    scanned("{\"messages\":[{\"content\":[{\"type\":\"file\",\"file\":"
            "{\"file_data\":\"data:text/plain;base64,QUtJQQ\"}},"
            "{\"type\":\"image_url\",\"image_url\":{\"url\":"
            "\"data:image/png;base64,QUtJQQ==\"}},{\"type\":\"image_url\","
            "\"image_url\":{\"url\":\"data:,A%4bIA\"}},{\"type\":"
            "\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,"
            "iVBORw0KGgo=\"}}]}]}", "AKIA\nAKIA\nAKIA",
            "scan: data URLs: text decoded (an \"image\" that is text"
            " too), images left out");
    scanned("{\"contents\":[{\"parts\":[{\"inlineData\":{\"mimeType\":"
            "\"application/x-unknown\",\"data\":\"QUtJQQ==\"}},"
            "{\"inlineData\":{\"mimeType\":\"audio/wav\",\"data\":"
            "\"UklGRiQAAABXQVZF\"}}]}]}", "application/x-unknown\nAKIA\n"
            "audio/wav", "scan: any label, UTF-8 text is read");
    scanned("{\"messages\":[{\"content\":"
            "\"data:image/png;base64,QUtJQQ==\"}]}",
            "data:image/png;base64,QUtJQQ==",
            "scan: a data URL as text is text");
    scanned("{\"messages\":[{\"content\":[{\"type\":\"thinking\",\"thinking\":"
            "\"t\",\"signature\":\"Ep0B\"},{\"type\":\"redacted_thinking\","
            "\"data\":\"EmwK\"}]}]}", "t",
            "scan: signatures and redacted thinking left out");

    /* encrypted turns are billed as input: by their size, never read */
    big = malloc(8200);
    n = (size_t) sprintf(big, "{\"input\":[{\"type\":\"reasoning\","
                         "\"encrypted_content\":\"");
    memset(big + n, 'E', 4000);
    n += 4000;
    n += (size_t) sprintf(big + n, "\"},{\"type\":\"redacted_thinking\","
                          "\"data\":\"");
    memset(big + n, 'R', 4000);
    n += 4000;
    strcpy(big + n, "\"}]}");
    s = scan(big, &tokens);
    is_str(s, "", "scan: encrypted content never read as text");
    is_int(tokens, 2000, "scan: encrypted content estimated by its size");
    free(s);
    free(big);
    scanned("{\"messages\":[{\"content\":[{\"type\":\"new_part\","
            "\"data\":\"D\",\"x\":{\"y\":\"Z\"}}]}]}", "D\ny\nZ",
            "scan: an unknown part is read");
    scanned("{\"a\":\"{\\\"k\\\":\\\"\\\\u0041KIA\\\"}\"}", "{\"k\":\"AKIA\"}",
            "scan: an escaped JSON document decoded");
    scanned("{\"a\":\"plain \\\\u0041\"}", "plain \\u0041",
            "scan: escapes in plain text kept as written");

    s = scan("{\"a\":\"{\\\"k\\\":\\\"\\\\u0041\\\"}\"}", &tokens);
    /* {"k":"\u0041"} is 14 bytes as sent: 4 tokens, not 3 */
    is_int(tokens, 4, "scan: the estimate counts arguments as sent");
    free(s);

    unescaped("\\u0041\\u00e9\\ud83d\\ude00\\n\\\"",
              "A\xc3\xa9\xf0\x9f\x98\x80\n\"",
              "unescape: \\u, a pair, \\n, \\\"");
    unescaped("{\\\"a\\\":\\\"{\\\\\\\"b\\\\\\\":"
              "\\\\\\\"\\\\\\\\u0041\\\\\\\"}\\\"}",
              "{\"a\":\"{\"b\":\"A\"}\"}", "unescape: three levels");
    unescaped("\\ud800x \\uZZZZ \\q \\", "\\ud800x \\uZZZZ \\q \\",
              "unescape: invalid escapes kept");

    ok(tg_scan_text_media("text/markdown", 13), "media: text/markdown");
    ok(tg_scan_text_media("application/json; charset=utf-8", 31),
       "media: JSON with a charset");
    ok(tg_scan_text_media("application/vnd.api+json", 24), "media: +json");
    ok(tg_scan_text_media("TEXT/PLAIN", 10), "media: case");
    ok(!tg_scan_text_media("image/png", 9), "media: image/png is not text");
    ok(!tg_scan_text_media("application/pdf", 15), "media: PDF is not text");
    ok(!tg_scan_text_media("application/octet-stream", 24),
       "media: octet-stream is not text");

    /* bounded parsing: numbers of arrays counted without nodes */
    v = tg_json_parse(&doc, "[1,{\"a\":2},3,[4,5]]", 19, TG_JSON_BOUNDED);
    ok(tg_json_is_array(v) && tg_json_array_size(v) == 4,
       "json bounded: four elements counted");
    i = 0;
    tg_json_foreach(v, e) {
        i++;
    }
    is_int(i, 2, "json bounded: two of them have nodes");
    is_int(doc.n, 4, "json bounded: four nodes in all");
    is_int(tg_json_number_value(tg_json_get(tg_json_first(v), "a")), 2,
           "json bounded: a member's number has its node");
    tg_json_free(&doc);

    n = 400000;
    big = malloc(3 * n + 2);
    big[0] = '[';
    for (i = 0; i < n; i++) {
        memcpy(big + 1 + 3 * i, "[],", 3);
    }
    big[3 * n] = ']';
    big[3 * n + 1] = '\0';
    ok(tg_json_parse(&doc, big, 3 * n + 1, TG_JSON_BOUNDED) == NULL
       && strcmp(doc.error, "too many values for the size of the input") == 0,
       "json bounded: a node per 3 bytes refused (%s)", doc.error);
    ok(doc.n <= TG_JSON_NODES_MAX(3 * n + 1), "json bounded: nodes stopped"
       " at the bound");
    tg_json_free(&doc);
    ok(tg_json_parse(&doc, big, 3 * n + 1, 0) != NULL,
       "json: unbounded parses it");
    tg_json_free(&doc);

    for (i = 0; i < n; i++) {
        memcpy(big + 1 + 3 * i, "12,", 3);
    }
    big[3 * n] = ']';
    ok(tg_json_parse(&doc, big, 3 * n + 1, TG_JSON_BOUNDED) != NULL
       && doc.n == 1, "json bounded: 400000 token ids, one node");
    tg_json_free(&doc);
    free(big);

    is_int(sizeof(tg_json_t), 32, "json: a node is 32 bytes");

    ok(tg_request_model_valid("gpt-4o", 6), "model name: gpt-4o");
    ok(tg_request_model_valid("a\"b\\c~!", 7), "model name: printable");
    ok(!tg_request_model_valid("x\r\nSet-Cookie: a", 16), "model name: CRLF");
    ok(!tg_request_model_valid("a b", 3), "model name: a space");
    ok(!tg_request_model_valid("a\x7f", 2), "model name: DEL");
    ok(!tg_request_model_valid("\xc3\xa9", 2), "model name: non-ASCII");
    ok(!tg_request_model_valid("", 0), "model name: empty");
    ok(!tg_request_model_valid("m", TG_MODEL_MAX + 1), "model name: long");
}
