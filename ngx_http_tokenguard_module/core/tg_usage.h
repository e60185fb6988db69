/*
 * Token usage as each provider reports it, from a JSON response body or
 * from stream events, in one shape.  Pure C (jansson), no nginx headers.
 */

#ifndef TG_USAGE_H
#define TG_USAGE_H

#include <stddef.h>
#include <stdint.h>

#include "tg_endpoint.h"
#include "tg_jscan.h"


/* the longest response model name kept (gen_ai.response.model) */
#define TG_USAGE_MODEL  128


/*
 * Every unit a price can name (core/tg_prices.c): each is a part of the
 * one above it in this list that it names (cache_audio_read of cached and
 * of input_audio, both of input), never added to it.
 */
typedef struct {
    int64_t   input;            /* every input token, cached included */
    int64_t   cached;           /* read from a prompt cache */
    int64_t   cache_write;      /* written to a prompt cache */
    int64_t   cache_write_5m;   /* of cache_write: with a 5-minute TTL */
    int64_t   cache_write_1h;   /* of cache_write: with a 1-hour TTL */
    int64_t   input_audio;
    int64_t   cache_audio_read;
    int64_t   input_image;      /* images and documents */
    int64_t   cache_image_read;
    int64_t   input_video;
    int64_t   cache_video_read;
    int64_t   output;           /* reasoning and thoughts included */
    int64_t   reasoning;        /* of output */
    int64_t   output_audio;
    int64_t   output_image;
    int64_t   output_video;
    int64_t   web_searches;     /* server-side tool calls */

    /* Anthropic reports the parts of the input apart, in two events */
    int64_t   a_input;
    int64_t   a_read;
    int64_t   a_write;

    unsigned  has_input:1;
    unsigned  has_output:1;
    unsigned  background:1;     /* a Responses call answered later */

    /* the model the response names, NUL-ended; "" when it names none */
    char      model[TG_USAGE_MODEL];
} tg_usage_t;


/* a body, or one stream event after another, scanned as it passes */
typedef struct {
    tg_api_e    api;
    int         event;
    unsigned    model;          /* bit i: path i names the model */
    tg_jscan_t  js;
} tg_usage_scan_t;


/* event: 1 for stream events' data, 0 for a whole response body */
void tg_usage_scan_init(tg_usage_scan_t *s, tg_api_e api, int event);
void tg_usage_scan_feed(tg_usage_scan_t *s, const char *p, size_t len);

/*
 * The document (body or event) ended: updates u from its usage if it was
 * complete and of the kind that carries the final usage; returns 1 then.
 * The scan is ready for the next event.
 */
int tg_usage_scan_end(tg_usage_scan_t *s, tg_usage_t *u);
void tg_usage_scan_free(tg_usage_scan_t *s);


/*
 * A whole JSON response body (whole 0: a tail, never believed).  Returns
 * 1 if usage was found.  Gemini's non-SSE stream is a JSON array of
 * chunks: the last usage wins.
 */
int tg_usage_from_body(tg_api_e api, const char *body, size_t len,
    int whole, tg_usage_t *u);

/* one SSE event's data; updates u when it carries usage */
void tg_usage_from_event(tg_api_e api, const char *data, size_t len,
    tg_usage_t *u);

#endif /* TG_USAGE_H */
