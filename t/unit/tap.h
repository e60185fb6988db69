/* A minimal TAP producer for the core unit tests. */

#ifndef TAP_H
#define TAP_H

#include <stdint.h>

void tap_ok(int pass, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void tap_is_str(const char *got, const char *want, const char *file,
    int line, const char *name);
void tap_is_int(int64_t got, int64_t want, const char *file, int line,
    const char *name);
int tap_done(void);

#define ok(cond, ...)  tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(g, w, name)  tap_is_str(g, w, __FILE__, __LINE__, name)
#define is_int(g, w, name)  tap_is_int(g, w, __FILE__, __LINE__, name)

void test_endpoint(void);
void test_estimate(void);
void test_estimate_paths(void);
void test_request(void);
void test_json(void);
void test_json_numbers(void);
void test_json_plain_span(void);
void test_json_decode_runs(void);
void test_json_duplicates(void);
void test_json_storage(void);
void test_json_edit(void);
void test_route_cond(void);
void test_template(void);
void test_refusal(void);
void test_ledger_core(void);
void test_prices(void);
void test_usage(void);
void test_jscan(void);
void test_scan(void);
void test_command(void);
void test_slot(void);

#endif
