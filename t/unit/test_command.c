/* the bounded Redis command builder and the random ids */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "tap.h"
#include "tg_command.h"
#include "tg_id.h"
#include "tg_keys.h"


/* a RESP array of bulk strings back into its arguments: the count, or -1 */
static long
parse(const char *s, long len, char **argv, size_t *argvlen, long max)
{
    long         n, i;
    char        *end;
    const char  *p, *last;

    p = s;
    last = s + len;

    if (len < 4 || *p != '*') {
        return -1;
    }

    n = strtol(p + 1, &end, 10);
    if (end[0] != '\r' || end[1] != '\n' || n > max) {
        return -1;
    }

    p = end + 2;

    for (i = 0; i < n; i++) {
        if (p >= last || *p != '$') {
            return -1;
        }

        argvlen[i] = strtoul(p + 1, &end, 10);
        if (end[0] != '\r' || end[1] != '\n') {
            return -1;
        }

        p = end + 2;

        if ((size_t) (last - p) < argvlen[i] + 2
            || p[argvlen[i]] != '\r' || p[argvlen[i] + 1] != '\n')
        {
            return -1;
        }

        argv[i] = (char *) p;
        p += argvlen[i] + 2;
    }

    return p == last ? n : -1;
}


static void
test_simple(void)
{
    long          n;
    char         *out, copy[256];
    tg_command_t  c;

    tg_command_init(&c, 0);
    tg_command_str(&c, "SET");
    tg_command_arg(&c, "k", 1);
    tg_command_arg(&c, "", 0);
    tg_command_int(&c, -42);
    tg_command_int(&c, INT64_MIN);
    tg_command_key(&c, "tg:{u:alice}", 12, "2026-11");

    n = tg_command_finish(&c, &out);
    ok(n > 0, "command: built");

    /* the RESP is no C string: a copy with a NUL to compare */
    memcpy(copy, out, n);
    copy[n] = '\0';
    free(out);

    is_int(n, (long) strlen(copy), "command: length is the bytes written");
    is_str(copy, "*6\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n$3\r\n-42\r\n"
                "$20\r\n-9223372036854775808\r\n"
                "$20\r\ntg:{u:alice}:2026-11\r\n",
           "command: RESP of every argument kind");

    /* the builder is empty again and can be used at once */
    tg_command_str(&c, "PING");
    n = tg_command_finish(&c, &out);
    ok(n == 14 && memcmp(out, "*1\r\n$4\r\nPING\r\n", 14) == 0,
       "command: the builder is reusable after a finish");
    free(out);

    tg_command_init(&c, 0);
    is_int(tg_command_finish(&c, &out), -1, "command: no argument: refused");
    is_int(c.error, TG_COMMAND_EMPTY, "command: and says why");
}


/* integers are written as printf's "%lld" would, at every magnitude */
static void
test_ints(void)
{
    int           i, bad;
    long          n;
    char         *out, want[64];
    int64_t       v;
    size_t        w;
    tg_command_t  c;

    static const int64_t  edge[] = {
        0, 1, -1, 9, 10, -10, 99, 100, 999999, 1000000, INT64_MAX,
        INT64_MAX - 1, INT64_MIN, INT64_MIN + 1
    };

    bad = 0;
    v = 1;

    for (i = 0; i < 14 + 2 * 63; i++) {
        if (i < 14) {
            v = edge[i];
        } else {
            /* powers of two and one less, signs alternating */
            v = (int64_t) (1ULL << ((i - 14) / 2)) - ((i - 14) % 2);
            v = i % 4 < 2 ? v : -v;
        }

        tg_command_init(&c, 0);
        tg_command_int(&c, v);
        n = tg_command_finish(&c, &out);

        w = (size_t) snprintf(want, sizeof(want), "%lld", (long long) v);
        w = (size_t) snprintf(want, sizeof(want), "*1\r\n$%zu\r\n%lld\r\n",
                              w, (long long) v);

        if (n != (long) w || memcmp(out, want, w) != 0) {
            bad++;
        }

        free(out);
    }

    is_int(bad, 0, "command: integers and lengths as printf writes them");
}


static void
test_grows(void)
{
    long          n, i, bad;
    char         *out, arg[100], **argv;
    size_t       *len;
    tg_command_t  c;

    enum { N = 5000 };

    argv = malloc(N * sizeof(char *));
    len = malloc(N * sizeof(size_t));

    tg_command_init(&c, 0);

    for (i = 0; i < N; i++) {
        memset(arg, 'a' + i % 26, sizeof(arg));
        tg_command_arg(&c, arg, (size_t) (i % 100));
    }

    n = tg_command_finish(&c, &out);
    ok(n > 0, "command: 5000 arguments grow the buffer");
    is_int(parse(out, n, argv, len, N), N,
           "command: and parse back as 5000 arguments");

    bad = 0;

    for (i = 0; i < N; i++) {
        if (len[i] != (size_t) (i % 100)
            || (len[i] && (argv[i][0] != 'a' + i % 26
                           || argv[i][len[i] - 1] != 'a' + i % 26)))
        {
            bad++;
        }
    }

    is_int(bad, 0, "command: each argument whole, in order");

    free(out);
    free(argv);
    free(len);
}


static void
test_bound(void)
{
    long          n;
    char         *out, big[200];
    tg_command_t  c;

    memset(big, 'x', sizeof(big));

    tg_command_init(&c, 100);    /* 16 + 13 + 47 = 76 fit */
    tg_command_str(&c, "EVALSHA");
    tg_command_arg(&c, big, 40);
    ok(c.error == TG_COMMAND_OK, "bound: under the bound: fine");

    tg_command_arg(&c, big, 20);
    is_int(c.error, TG_COMMAND_TOO_LONG, "bound: past it: failed");

    /* sticky: a later small argument does not make a half command */
    tg_command_str(&c, "1");
    n = tg_command_finish(&c, &out);
    is_int(n, -1, "bound: the command is never finished half built");
    is_int(c.error, TG_COMMAND_TOO_LONG, "bound: and says why");
    ok(strstr(tg_command_strerror(c.error), "bound") != NULL,
       "bound: a message that names the bound");

    /* lengths that would wrap a size_t sum */
    tg_command_init(&c, 0);
    tg_command_arg(&c, big, SIZE_MAX);
    is_int(c.error, TG_COMMAND_TOO_LONG, "bound: SIZE_MAX: refused");
    tg_command_free(&c);

    tg_command_init(&c, 0);
    tg_command_key(&c, big, SIZE_MAX - 1, "x");
    is_int(c.error, TG_COMMAND_TOO_LONG, "bound: a key of SIZE_MAX-1: refused");
    tg_command_free(&c);

    /* exactly at the bound is allowed: 16 head + "$3\r\nabc\r\n" = 25 */
    tg_command_init(&c, 25);
    tg_command_str(&c, "abc");
    n = tg_command_finish(&c, &out);
    ok(n == 13 && memcmp(out, "*1\r\n$3\r\nabc\r\n", 13) == 0,
       "bound: a command that fills its bound exactly is built");
    free(out);
}


/* the longest legal ledger key: 256 bytes that are all escaped */
static void
test_longest_key(void)
{
    long          n;
    char          name[256], prefix[TG_KEY_PREFIX_MAX], *out, *argv[2];
    size_t        plen, len[2];
    tg_command_t  c;

    memset(name, '}', sizeof(name));
    plen = tg_key_prefix('u', name, sizeof(name), prefix);
    is_int(plen, TG_KEY_PREFIX_MAX - 1,
           "longest key: 256 escaped bytes fill the prefix");

    tg_command_init(&c, 0);
    tg_command_str(&c, "GET");
    tg_command_key(&c, prefix, plen, "resv:exp");
    n = tg_command_finish(&c, &out);

    ok(n > 0 && parse(out, n, argv, len, 2) == 2, "longest key: built");
    ok(len[1] == plen + 9 && memcmp(argv[1], prefix, plen) == 0
       && memcmp(argv[1] + plen, ":resv:exp", 9) == 0,
       "longest key: whole, not truncated");
    free(out);
}


static int
cmp(const void *a, const void *b)
{
    return memcmp(a, b, TG_ID_LEN);
}


static void
test_ids(void)
{
    int     i, j, form, dup, seen[16][16];
    char   *ids;

    enum { N = 10000 };

    ids = malloc((size_t) N * (TG_ID_LEN + 1));
    memset(seen, 0, sizeof(seen));
    form = 1;

    for (i = 0; i < N; i++) {
        /* half from getrandom() alone, half with the device open */
        if (i == N / 2) {
            ok(tg_id_open() == 0, "ids: /dev/urandom opens");
        }

        if (tg_id_new(ids + i * (TG_ID_LEN + 1)) != 0) {
            form = 0;
            break;
        }

        for (j = 0; j < TG_ID_LEN; j++) {
            char  h = ids[i * (TG_ID_LEN + 1) + j];

            if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f'))) {
                form = 0;
            }

            if (j < 16) {
                seen[j][h <= '9' ? h - '0' : h - 'a' + 10]++;
            }
        }

        if (ids[i * (TG_ID_LEN + 1) + TG_ID_LEN] != '\0') {
            form = 0;
        }
    }

    tg_id_close();

    ok(form, "ids: 10000 ids of 32 lower-case hex digits");

    qsort(ids, N, TG_ID_LEN + 1, cmp);
    dup = 0;

    for (i = 1; i < N; i++) {
        if (memcmp(ids + (i - 1) * (TG_ID_LEN + 1),
                   ids + i * (TG_ID_LEN + 1), TG_ID_LEN) == 0)
        {
            dup++;
        }
    }

    is_int(dup, 0, "ids: all 10000 distinct");

    /* every digit of every place shows up: not a counter, not a clock */
    form = 1;

    for (i = 0; i < 16; i++) {
        for (j = 0; j < 16; j++) {
            if (seen[i][j] < N / 32) {
                form = 0;
            }
        }
    }

    ok(form, "ids: each of the first 16 places takes all 16 digits evenly");

    free(ids);

    /* a worker forked with part of the pool: after its tg_id_open() its
     * ids are not its parent's */
    {
        int    pipefd[2], status;
        pid_t  pid = -1;
        char   mine[TG_ID_LEN + 1], theirs[TG_ID_LEN + 1];

        (void) tg_id_new(mine);             /* the pool is filled */

        if (pipe(pipefd) == 0 && (pid = fork()) == 0) {
            (void) tg_id_open();
            (void) tg_id_new(theirs);
            (void) write(pipefd[1], theirs, sizeof(theirs));
            _exit(0);
        }

        (void) tg_id_new(mine);
        memset(theirs, 0, sizeof(theirs));
        (void) read(pipefd[0], theirs, sizeof(theirs));
        if (pid > 0) {
            (void) waitpid(pid, &status, 0);
        }
        close(pipefd[0]);
        close(pipefd[1]);
        tg_id_close();

        ok(strlen(theirs) == TG_ID_LEN && strcmp(mine, theirs) != 0,
           "ids: a forked process that opens draws its own bits");
    }
}


void
test_command(void)
{
    test_simple();
    test_ints();
    test_grows();
    test_bound();
    test_longest_key();
    test_ids();
}
