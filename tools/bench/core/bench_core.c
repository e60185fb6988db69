/*
 * make bench-core: the core/ parsers alone, on one core, as the glue
 * calls them per request (ngx_http_tokenguard_access.c,
 * ngx_http_tokenguard_policy.c, ngx_http_tokenguard_usage.c):
 *
 *   inspect   tg_endpoint_classify + tg_request_inspect + tg_request_free
 *             of each agentic body (parse, prompt text, token estimate)
 *   + policy  the same, then PCRE2 (JIT, the glue's match limits) of
 *             side B's prompt regexes over the prompt text: the two
 *             deny rules, the classify rule and the prompt~ route
 *   usage     the response side: each canned SSE stream through
 *             tg_sse (streaming) into tg_usage_scan, in 4 KB reads, and
 *             each JSON answer through tg_usage_scan: the short answer
 *             of make bench, and the realistic sizes (a 2 KB body and a
 *             200-event stream, an 8 KB body and a 2000-event stream)
 *
 * Prints MB/s of input per second of this process's CPU time (so that
 * other load on the machine costs less accuracy than wall time would)
 * and the machine.  Usage: bench_core DIR [SECONDS]; DIR holds what
 * tools/bench/agentic.pl writes.  With BENCH_RUNS=N in the environment
 * it runs each response cell whose name holds BENCH_ONLY N times,
 * untimed, and prints its bytes: what tools/bench/core/ir.sh counts
 * instructions of under callgrind.
 */

#define _GNU_SOURCE
#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tg_endpoint.h"
#include "tg_request.h"
#include "tg_sse.h"
#include "tg_usage.h"


#define BENCH_READ        4096      /* bytes per read of the response */
#define BENCH_MATCH_LIMIT 100000    /* NGX_HTTP_TOKENGUARD_MATCH_LIMIT */
#define BENCH_MATCH_DEPTH 10000     /* NGX_HTTP_TOKENGUARD_MATCH_DEPTH */


typedef struct {
    const char  *name;
    const char  *uri;
    tg_api_e     api;
} bench_dialect_t;


static const bench_dialect_t  bench_dialects[] = {
    { "chat", "/v1/chat/completions", TG_API_CHAT },
    { "responses", "/v1/responses", TG_API_RESPONSES },
    { "messages", "/v1/messages", TG_API_MESSAGES },
    { "gemini", "/v1beta/models/gemini-2.5-flash:generateContent",
      TG_API_GENERATE },
};


/* side B's prompt regexes (tools/bench/b.conf) */
static const char  *bench_regexes[] = {
    "-----BEGIN ([A-Z]+ )?PRIVATE KEY-----",
    "\\b(AKIA|ASIA)[0-9A-Z]{16}\\b",
    "(?i)\\bsummar",
    "(?i)^summari[sz]e",
};

#define BENCH_NREGEX  (sizeof(bench_regexes) / sizeof(bench_regexes[0]))


static pcre2_code           *bench_re[BENCH_NREGEX];
static pcre2_match_data     *bench_md;
static pcre2_match_context  *bench_mctx;
static double                bench_seconds = 1.0;


static double
bench_cpu(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static char *
bench_read(const char *dir, const char *name, size_t *len)
{
    char    path[4096];
    char   *buf;
    long    n;
    FILE   *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);

    f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);

    buf = malloc(n + 1);
    if (buf == NULL || fread(buf, 1, n, f) != (size_t) n) {
        fprintf(stderr, "%s: read failed\n", path);
        exit(1);
    }

    fclose(f);
    buf[n] = '\0';
    *len = n;

    return buf;
}


/* one request as the glue handles it; returns the prompt's size */
static size_t
bench_inspect(const bench_dialect_t *d, const char *body, size_t len,
    int policy, int64_t *tokens)
{
    int             rc;
    size_t          i, plen;
    tg_request_t    rq;
    tg_endpoint_t   ep;

    tg_endpoint_classify(d->uri, strlen(d->uri), TG_METHOD_POST,
                         TG_PROVIDER_AUTO, &ep);

    rc = tg_request_inspect(&ep, d->uri, body, len, &rq);
    if (rc != TG_OK) {
        fprintf(stderr, "%s: tg_request_inspect: %d %s\n", d->name, rc,
                rq.error);
        exit(1);
    }

    plen = rq.prompt_len;
    *tokens = rq.prompt_tokens;

    for (i = 0; policy && i < BENCH_NREGEX; i++) {
        rc = pcre2_match(bench_re[i], (PCRE2_SPTR) rq.prompt, rq.prompt_len,
                         0, 0, bench_md, bench_mctx);
        if (rc != PCRE2_ERROR_NOMATCH) {
            fprintf(stderr, "%s: regex %zu: %d (a match, or an error)\n",
                    d->name, i, rc);
            exit(1);
        }
    }

    tg_request_free(&rq);

    return plen;
}


/* what the glue's ctx holds for the body filter */
typedef struct {
    tg_usage_scan_t  scan;
    tg_usage_t       u;
    size_t           events;
} bench_usage_ctx_t;


static size_t  bench_events;        /* of the last stream */


static void
bench_usage_event(void *data, const char *event, size_t event_len,
    const char *payload, size_t len)
{
    bench_usage_ctx_t  *c = data;

    c->events++;
    (void) tg_usage_scan_end(&c->scan, &c->u);
}


static void
bench_usage_data(void *data, const char *p, size_t len)
{
    bench_usage_ctx_t  *c = data;

    tg_usage_scan_feed(&c->scan, p, len);
}


/*
 * one response as the body filter follows it; returns 1 with usage (never
 * inlined: ir.sh counts its instructions by name)
 */
static int __attribute__((noinline))
bench_usage(const bench_dialect_t *d, const char *resp, size_t len,
    int sse)
{
    size_t             off, n;
    tg_sse_t           s;
    bench_usage_ctx_t  c;

    memset(&c.u, 0, sizeof(tg_usage_t));
    c.events = 0;
    tg_usage_scan_init(&c.scan, d->api, sse);

    if (sse) {
        tg_sse_init_stream(&s, bench_usage_data);
    }

    for (off = 0; off < len; off += n) {
        n = len - off < BENCH_READ ? len - off : BENCH_READ;

        if (!sse) {
            tg_usage_scan_feed(&c.scan, resp + off, n);

        } else if (tg_sse_feed(&s, resp + off, n, bench_usage_event, &c)
                   != 0)
        {
            fprintf(stderr, "%s: tg_sse_feed failed\n", d->name);
            exit(1);
        }
    }

    if (sse) {
        tg_sse_finish(&s, bench_usage_event, &c);
        tg_sse_free(&s);

    } else {
        (void) tg_usage_scan_end(&c.scan, &c.u);
    }

    tg_usage_scan_free(&c.scan);
    bench_events = c.events;

    return c.u.has_input && c.u.has_output;
}


/* runs f until bench_seconds of CPU; returns MB/s and the µs per call */
#define BENCH_LOOP(call, bytes, mbs, us)                                    \
    do {                                                                    \
        double  t0_, t_;                                                    \
        long    n_ = 0;                                                     \
        t0_ = bench_cpu();                                                  \
        do {                                                                \
            int k_;                                                         \
            for (k_ = 0; k_ < 50; k_++) { call; }                           \
            n_ += 50;                                                       \
            t_ = bench_cpu() - t0_;                                         \
        } while (t_ < bench_seconds);                                       \
        mbs = (double) (bytes) * n_ / t_ / 1e6;                             \
        us = t_ / n_ * 1e6;                                                 \
    } while (0)


static const char  *bench_answers[] = { "", "-200", "-2000" };

#define BENCH_NANSWER  (sizeof(bench_answers) / sizeof(bench_answers[0]))
#define BENCH_NDIALECT (sizeof(bench_dialects) / sizeof(bench_dialects[0]))


/* a canned answer: "sse" or "json" of answer a of dialect d */
static char *
bench_answer(const char *dir, size_t a, const bench_dialect_t *d,
    const char *kind, size_t *len)
{
    char  name[256];

    snprintf(name, sizeof(name), "canned/agentic%s-%s.%s", bench_answers[a],
             d->name, kind);

    return bench_read(dir, name, len);
}


static void
bench_responses(const char *dir)
{
    char                   *sse, *json;
    size_t                  a, i, slen, jlen, events;
    double                  mbs, us, mbs2, us2;
    const bench_dialect_t  *d;

    printf("\n| dialect | answer | SSE bytes | events | usage from SSE MB/s"
           " | SSE µs | JSON bytes | usage from JSON MB/s | JSON µs |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");

    for (a = 0; a < BENCH_NANSWER; a++) {
        for (i = 0; i < BENCH_NDIALECT; i++) {
            d = &bench_dialects[i];
            sse = bench_answer(dir, a, d, "sse", &slen);
            json = bench_answer(dir, a, d, "json", &jlen);

            if (!bench_usage(d, json, jlen, 0)
                || !bench_usage(d, sse, slen, 1))
            {
                fprintf(stderr, "%s%s: no usage found in the canned answers\n",
                        d->name, bench_answers[a]);
                exit(1);
            }

            BENCH_LOOP(bench_usage(d, sse, slen, 1), slen, mbs, us);
            events = bench_events;
            BENCH_LOOP(bench_usage(d, json, jlen, 0), jlen, mbs2, us2);

            printf("| %s | %s | %zu | %zu | %.0f | %.1f | %zu | %.0f"
                   " | %.2f |\n", d->name,
                   a ? bench_answers[a] + 1 : "make bench", slen, events,
                   mbs, us, jlen, mbs2, us2);
            fflush(stdout);
            free(sse);
            free(json);
        }
    }
}


/* BENCH_RUNS: each cell named DIALECT-ANSWER-KIND ("chat-2000-sse") */
static int
bench_runs(const char *dir, long runs, const char *only)
{
    char                    cell[64];
    char                   *resp;
    size_t                  a, i, k, len;
    long                    n;
    const bench_dialect_t  *d;
    static const char      *kinds[] = { "sse", "json" };

    for (a = 0; a < BENCH_NANSWER; a++) {
        for (i = 0; i < BENCH_NDIALECT; i++) {
            for (k = 0; k < 2; k++) {
                d = &bench_dialects[i];
                snprintf(cell, sizeof(cell), "%s-%s-%s", d->name,
                         a ? bench_answers[a] + 1 : "bench", kinds[k]);

                if (only != NULL && strstr(cell, only) == NULL) {
                    continue;
                }

                resp = bench_answer(dir, a, d, kinds[k], &len);

                for (n = 0; n < runs; n++) {
                    (void) bench_usage(d, resp, len, k == 0);
                }

                printf("%s %zu\n", cell, len);
                free(resp);
            }
        }
    }

    return 0;
}


static void
bench_machine(void)
{
    char   line[512], *p;
    FILE  *f;

    f = fopen("/proc/cpuinfo", "r");

    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) == 0
            && (p = strchr(line, ':')) != NULL)
        {
            p[strcspn(p, "\n")] = '\0';
            printf("Machine: %s, gcc %s, `%s`\n\n", p + 2, __VERSION__,
                   BENCH_CFLAGS);
            break;
        }
    }

    if (f) {
        fclose(f);
    }
}


int
main(int argc, char **argv)
{
    int                     err;
    char                    name[256];
    char                   *body;
    size_t                  i, blen, plen, eoff;
    double                  mbs, us, mbs2, us2;
    int64_t                 tokens;
    const bench_dialect_t  *d;

    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [SECONDS]\n", argv[0]);
        return 2;
    }

    if (argc > 2) {
        bench_seconds = atof(argv[2]);
    }

    if (getenv("BENCH_RUNS") != NULL) {
        return bench_runs(argv[1], atol(getenv("BENCH_RUNS")),
                          getenv("BENCH_ONLY"));
    }

    for (i = 0; i < BENCH_NREGEX; i++) {
        bench_re[i] = pcre2_compile((PCRE2_SPTR) bench_regexes[i],
                                    PCRE2_ZERO_TERMINATED, 0, &err, &eoff,
                                    NULL);
        if (bench_re[i] == NULL
            || pcre2_jit_compile(bench_re[i], PCRE2_JIT_COMPLETE) != 0)
        {
            fprintf(stderr, "regex %zu does not compile\n", i);
            return 1;
        }
    }

    bench_md = pcre2_match_data_create(10, NULL);
    bench_mctx = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(bench_mctx, BENCH_MATCH_LIMIT);
    pcre2_set_depth_limit(bench_mctx, BENCH_MATCH_DEPTH);

    printf("### core/ micro-benchmark (tools/bench/core/bench_core.c)\n\n");
    bench_machine();

    printf("| dialect | body bytes | prompt bytes | prompt tokens (est.)"
           " | inspect MB/s | inspect µs | + policy regexes MB/s"
           " | + policy µs |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- | --- |\n");

    for (i = 0; i < sizeof(bench_dialects) / sizeof(bench_dialects[0]);
         i++)
    {
        d = &bench_dialects[i];
        snprintf(name, sizeof(name), "agentic-%s.json", d->name);
        body = bench_read(argv[1], name, &blen);

        plen = bench_inspect(d, body, blen, 1, &tokens);

        BENCH_LOOP(bench_inspect(d, body, blen, 0, &tokens), blen, mbs, us);
        BENCH_LOOP(bench_inspect(d, body, blen, 1, &tokens), blen, mbs2, us2);

        printf("| %s | %zu | %zu | %lld | %.0f | %.1f | %.0f | %.1f |\n",
               d->name, blen, plen, (long long) tokens, mbs, us, mbs2, us2);
        fflush(stdout);
        free(body);
    }

    bench_responses(argv[1]);

    printf("\nMB/s: input bytes per second of CPU time of one thread;"
           " %.1f s of CPU per cell.\n\n", bench_seconds);

    return 0;
}
