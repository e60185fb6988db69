#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tap.h"


static int  tap_n, tap_failed;


void
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list  args;

    tap_n++;
    printf("%sok %d - ", pass ? "" : "not ", tap_n);

    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);

    printf("\n");

    if (!pass) {
        tap_failed++;
        printf("#   failed at %s line %d\n", file, line);
    }
}


void
tap_is_str(const char *got, const char *want, const char *file, int line,
    const char *name)
{
    int  pass;

    pass = (got == NULL && want == NULL)
           || (got != NULL && want != NULL && strcmp(got, want) == 0);

    tap_ok(pass, file, line, "%s", name);

    if (!pass) {
        printf("#          got: %s\n#     expected: %s\n",
               got ? got : "(null)", want ? want : "(null)");
    }
}


void
tap_is_int(int64_t got, int64_t want, const char *file, int line,
    const char *name)
{
    tap_ok(got == want, file, line, "%s", name);

    if (got != want) {
        printf("#          got: %lld\n#     expected: %lld\n",
               (long long) got, (long long) want);
    }
}


int
main(void)
{
    test_endpoint();
    test_estimate();
    test_estimate_paths();
    test_request();
    test_json();
    test_json_numbers();
    test_json_plain_span();
    test_json_decode_runs();
    test_json_duplicates();
    test_json_storage();
    test_json_edit();
    test_route_cond();
    test_template();
    test_refusal();
    test_ledger_core();
    test_prices();
    test_usage();
    test_jscan();
    test_scan();
    test_command();
    test_slot();

    printf("1..%d\n", tap_n);

    return tap_failed ? 1 : 0;
}
