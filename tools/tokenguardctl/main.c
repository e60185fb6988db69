/*
 * tokenguardctl: the command line.
 *
 *   tokenguardctl [-r ADDR] [-a PASSWORD] [--db N] [--json] COMMAND ...
 *
 * Options may stand anywhere on the line; "--" ends them, so a name that
 * starts with "-" can be given.  Each command checks its words before it
 * connects, so a bad command line is exit 2 whether Redis is there or not.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tgc.h"


static const char  tgc_usage_text[] =
"usage: tokenguardctl [-r ADDR] [--cluster] [--tls ...] [--user NAME]\n"
"                     [-a PASSWORD] [--db N] [--json] COMMAND\n"
"\n"
"commands:\n"
"  usage user|team NAME [--period P]\n"
"                 spent, reserved, limit, remaining, tokens, requests,\n"
"                 sandbox, by model, by category\n"
"  top [--by user|team|model|category] [--sort spend|share] [--period P]\n"
"      [-n N] [--watch]\n"
"                 the biggest spenders (default: users, 10); --sort share:\n"
"                 by the share of the cap used; --watch refreshes every\n"
"                 2 s until Ctrl-C\n"
"  limit get|set|clear user|team NAME [FIELD [VALUE]]\n"
"                 the ops overrides in tg:{u:NAME}:limits; usd fields in\n"
"                 dollars; VALUE \"none\" stores -1 (no cap at all)\n"
"  sandbox grant user NAME AMOUNT [month|day]\n"
"                 the user's sandbox allowance, in dollars\n"
"  report [--period P] [--html FILE] [-n N]\n"
"                 the spend audit: one self-contained HTML file (charts\n"
"                 inline), or --json for the same numbers\n"
"\n"
"options:\n"
"  -r ADDR        Redis, host:port or unix:/path (default 127.0.0.1:6379)\n"
"  --cluster      Redis Cluster: ADDR is a seed node (as tokenguard_redis\n"
"                 cluster)\n"
"  -a PASSWORD    Redis password (default: $TOKENGUARD_REDIS_PASSWORD)\n"
"  --user NAME    Redis ACL user: AUTH NAME PASSWORD (as user=NAME)\n"
"  --db N         Redis database (as tokenguard_redis db=N)\n"
"  --tls          TLS to Redis, verified (as tokenguard_redis ... tls):\n"
"    --ssl-trusted-certificate FILE  the CA (default: the system's)\n"
"    --ssl-verify on|off             verify the certificate (default on)\n"
"    --ssl-name NAME                 SNI and the name verified (default:\n"
"                                    the host of -r)\n"
"    --ssl-certificate FILE, --ssl-certificate-key FILE\n"
"                                    a client certificate\n"
"  --json         machine-readable output, amounts in dollars\n"
"  --period P     UTC month YYYY-MM (default: this month) or day YYYY-MM-DD\n"
"  -n N           rows shown (top: 10, report: 20)\n"
"\n"
"limit fields: usd_month usd_day tokens_month tokens_day requests_month\n"
"  requests_day sandbox_usd_month sandbox_usd_day\n"
"\n"
"exit status: 0 done, 1 Redis error reply or file not written, 2 bad\n"
"  command line, 3 Redis unreachable, too slow or authentication failed\n";


void
tgc_error(const char *fmt, ...)
{
    va_list  ap;

    fflush(stdout);
    fputs("tokenguardctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}


int
tgc_usage_error(const char *fmt, ...)
{
    va_list  ap;

    fflush(stdout);
    fputs("tokenguardctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(tokenguardctl --help shows the usage)\n", stderr);

    return TGC_EUSAGE;
}


/* the value of an option: "--opt=V", or the next word */
static const char *
tgc_opt_value(int argc, char **argv, int *i, const char *arg, size_t n)
{
    if (arg[n] == '=') {
        return arg + n + 1;
    }

    if (arg[n] != '\0' || *i + 1 >= argc) {
        return NULL;
    }

    return argv[++*i];
}


/* "-r", "--redis", "--redis=V": 1, and *n the length of the name */
static int
tgc_opt_is(const char *arg, const char *short_name, const char *long_name,
    size_t *n)
{
    size_t  len;

    if (short_name && strcmp(arg, short_name) == 0) {
        *n = strlen(arg);
        return 1;
    }

    len = strlen(long_name);

    if (strncmp(arg, long_name, len) == 0
        && (arg[len] == '\0' || arg[len] == '='))
    {
        *n = len;
        return 1;
    }

    return 0;
}


static int
tgc_long_parse(const char *s, long min, long max, long *v)
{
    char  *end;

    errno = 0;
    *v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || errno || *v < min || *v > max) {
        return -1;
    }

    return 0;
}


/* user|team NAME of a command: args[0], args[1] */
int
tgc_scope_arg(tgc_opts_t *o, const char *what, char *scope)
{
    size_t  len;

    if (strcmp(o->args[0], "user") == 0) {
        *scope = TG_SCOPE_USER;

    } else if (strcmp(o->args[0], "team") == 0) {
        *scope = TG_SCOPE_TEAM;

    } else {
        return tgc_usage_error("%s: \"%s\" is not user or team", what,
                               o->args[0]);
    }

    len = strlen(o->args[1]);

    if (len == 0 || len > 256) {
        return tgc_usage_error("%s: a name is 1 to 256 bytes (tokenguard "
                               "refuses others)", what);
    }

    return TGC_OK;
}


typedef struct {
    const char  *name;
    int        (*handler)(tgc_t *c);
    unsigned     allowed;          /* TGC_OPT_* the command takes */
} tgc_command_t;


static const tgc_command_t  tgc_commands[] = {
    { "usage", tgc_cmd_usage, TGC_OPT_PERIOD },
    { "top", tgc_cmd_top, TGC_OPT_PERIOD | TGC_OPT_BY | TGC_OPT_N
                          | TGC_OPT_WATCH | TGC_OPT_SORT },
    { "limit", tgc_cmd_limit, 0 },
    { "sandbox", tgc_cmd_sandbox, 0 },
    { "report", tgc_cmd_report, TGC_OPT_PERIOD | TGC_OPT_HTML | TGC_OPT_N },
    { NULL, NULL, 0 }
};


static const char *
tgc_opt_name(unsigned opt)
{
    switch (opt) {
    case TGC_OPT_PERIOD:
        return "--period";
    case TGC_OPT_BY:
        return "--by";
    case TGC_OPT_N:
        return "-n";
    case TGC_OPT_WATCH:
        return "--watch";
    case TGC_OPT_SORT:
        return "--sort";
    default:
        return "--html";
    }
}


int
main(int argc, char **argv)
{
    int                    i, nargs, done, rc;
    long                   v;
    char                  *name;
    size_t                 n;
    char                 **args;
    unsigned               bit;
    const char            *arg, *val;
    tgc_t                  c;
    tgc_opts_t             o;
    const tgc_command_t   *cmd;

    memset(&o, 0, sizeof(tgc_opts_t));
    o.addr = TGC_DEFAULT_ADDR;
    o.password = getenv(TGC_PASSWORD_ENV);
    o.db = -1;

    if (o.password && o.password[0] == '\0') {
        o.password = NULL;
    }

    args = calloc(argc + 1, sizeof(char *));
    if (args == NULL) {
        tgc_error("out of memory");
        return TGC_ERROR;
    }

    nargs = 0;
    done = 0;

    for (i = 1; i < argc; i++) {
        arg = argv[i];

        /* words, "-" alone, and negative numbers (refused by the command) */
        if (done || arg[0] != '-' || arg[1] == '\0'
            || (arg[1] >= '0' && arg[1] <= '9') || arg[1] == '.')
        {
            args[nargs++] = argv[i];
            continue;
        }

        if (strcmp(arg, "--") == 0) {
            done = 1;
            continue;
        }

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(tgc_usage_text, stdout);
            free(args);
            return TGC_OK;
        }

        if (strcmp(arg, "--json") == 0) {
            o.json = 1;
            continue;
        }

        if (strcmp(arg, "--cluster") == 0) {
            o.cluster = 1;
            continue;
        }

        if (strcmp(arg, "--watch") == 0) {
            o.watch = 1;
            o.given |= TGC_OPT_WATCH;
            continue;
        }

        if (strcmp(arg, "--tls") == 0) {
            o.tls = 1;
            continue;
        }

        if (strncmp(arg, "--user", 6) == 0 || strncmp(arg, "--ssl-", 6) == 0) {
            n = strcspn(arg, "=");
            val = tgc_opt_value(argc, argv, &i, arg, n);
            name = strndup(arg, n);
            rc = name ? tgc_tls_option(&o, name, val) : -1;
            free(name);

            if (rc < 0) {
                free(args);
                return TGC_EUSAGE;
            }

            if (rc > 0) {
                continue;
            }
        }

        if (tgc_opt_is(arg, "-r", "--redis", &n)) {
            val = tgc_opt_value(argc, argv, &i, arg, n);
            if (val == NULL || val[0] == '\0') {
                free(args);
                return tgc_usage_error("%s needs an address", arg);
            }
            o.addr = val;

        } else if (tgc_opt_is(arg, "-a", "--password", &n)) {
            val = tgc_opt_value(argc, argv, &i, arg, n);
            if (val == NULL) {
                free(args);
                return tgc_usage_error("%s needs a password", arg);
            }
            o.password = val[0] ? val : NULL;

        } else if (tgc_opt_is(arg, NULL, "--db", &n)) {
            val = tgc_opt_value(argc, argv, &i, arg, n);
            if (val == NULL || tgc_long_parse(val, 0, 1000000, &v) != 0) {
                free(args);
                return tgc_usage_error("--db needs a database number");
            }
            o.db = (int) v;

        } else if (tgc_opt_is(arg, NULL, "--period", &n)) {
            val = tgc_opt_value(argc, argv, &i, arg, n);
            if (val == NULL) {
                free(args);
                return tgc_usage_error("--period needs YYYY-MM or "
                                       "YYYY-MM-DD");
            }
            o.period_arg = val;
            o.given |= TGC_OPT_PERIOD;

        } else if (tgc_opt_is(arg, NULL, "--by", &n)) {
            val = tgc_opt_value(argc, argv, &i, arg, n);
            if (val == NULL) {
                free(args);
                return tgc_usage_error("--by needs user, team, model or "
                                       "category");
            }
            o.by = val;
            o.given |= TGC_OPT_BY;

        } else if (tgc_opt_is(arg, NULL, "--sort", &n)) {
            val = tgc_opt_value(argc, argv, &i, arg, n);
            if (val == NULL
                || (strcmp(val, "spend") != 0 && strcmp(val, "share") != 0))
            {
                free(args);
                return tgc_usage_error("--sort needs spend or share");
            }
            o.sort = val;
            o.given |= TGC_OPT_SORT;

        } else if (tgc_opt_is(arg, "-n", "--top", &n)) {
            val = tgc_opt_value(argc, argv, &i, arg, n);
            if (val == NULL || tgc_long_parse(val, 1, 1000000, &v) != 0) {
                free(args);
                return tgc_usage_error("-n needs a number of rows (1 or "
                                       "more)");
            }
            o.n = v;
            o.given |= TGC_OPT_N;

        } else if (tgc_opt_is(arg, NULL, "--html", &n)) {
            val = tgc_opt_value(argc, argv, &i, arg, n);
            if (val == NULL || val[0] == '\0') {
                free(args);
                return tgc_usage_error("--html needs a file name");
            }
            o.html = val;
            o.given |= TGC_OPT_HTML;

        } else {
            free(args);
            return tgc_usage_error("unknown option \"%s\"", arg);
        }

    }

    if (o.cluster && o.db > 0) {
        free(args);
        return tgc_usage_error("--db cannot be used with --cluster: Redis "
                               "Cluster has db 0 only");
    }

    if (nargs == 0) {
        fputs(tgc_usage_text, stderr);
        free(args);
        return TGC_EUSAGE;
    }

    for (cmd = tgc_commands; cmd->name; cmd++) {
        if (strcmp(cmd->name, args[0]) == 0) {
            break;
        }
    }

    if (cmd->name == NULL) {
        i = tgc_usage_error("unknown command \"%s\" (commands: usage, top, "
                            "limit, sandbox, report)", args[0]);
        free(args);
        return i;
    }

    for (bit = 1; bit <= TGC_OPT_HTML; bit <<= 1) {
        if ((o.given & bit) && !(cmd->allowed & bit)) {
            i = tgc_usage_error("%s is not an option of \"%s\"",
                                tgc_opt_name(bit), cmd->name);
            free(args);
            return i;
        }
    }

    if (o.period_arg) {
        if (tgc_period_check(o.period_arg, &o.period_day) != 0) {
            i = tgc_usage_error("bad period \"%s\": use a UTC month YYYY-MM "
                                "or a day YYYY-MM-DD", o.period_arg);
            free(args);
            return i;
        }
        strcpy(o.period, o.period_arg);

    } else {
        tgc_period_current(0, o.period);
    }

    o.args = args + 1;
    o.nargs = nargs - 1;

    memset(&c, 0, sizeof(tgc_t));
    c.opts = &o;

    i = cmd->handler(&c);

    tgc_disconnect(&c);
    free(args);

    if (fflush(stdout) != 0 || ferror(stdout)) {
        tgc_error("cannot write the output: %s", strerror(errno));
        return i ? i : TGC_ERROR;
    }

    return i;
}
