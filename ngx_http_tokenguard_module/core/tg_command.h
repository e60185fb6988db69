/*
 * One bounded Redis command builder for every command tokenguard sends
 * (ledger scripts, lease calls, the index, the handshake): arguments are
 * appended with their length straight as RESP into one buffer that grows
 * by doubling up to a hard bound.  Past the bound, or out of memory, the
 * builder fails once and for all and the command is never sent half
 * built.  Pure C, no nginx headers; the buffer is malloc()ed, so hiredis'
 * redisFreeCommand() (free()) releases a finished command.
 */

#ifndef TG_COMMAND_H
#define TG_COMMAND_H

#include <stddef.h>
#include <stdint.h>


/* the largest command tokenguard builds: far above any legal one */
#define TG_COMMAND_MAX   (1024 * 1024)

/* room left at the start for "*ARGC\r\n", moved into place at the end */
#define TG_COMMAND_HEAD  16


typedef enum {
    TG_COMMAND_OK = 0,
    TG_COMMAND_TOO_LONG,
    TG_COMMAND_NOMEM,
    TG_COMMAND_EMPTY
} tg_command_error_e;


typedef struct {
    char                *buf;
    size_t               len;           /* written, head room included */
    size_t               size;
    size_t               max;
    int                  argc;
    tg_command_error_e   error;
} tg_command_t;


/* max 0 is TG_COMMAND_MAX */
void tg_command_init(tg_command_t *c, size_t max);

void tg_command_arg(tg_command_t *c, const void *data, size_t len);
void tg_command_str(tg_command_t *c, const char *s);
void tg_command_int(tg_command_t *c, int64_t v);

/* one argument made of prefix ":" suffix ("tg:{u:alice}" ":2026-11") */
void tg_command_key(tg_command_t *c, const char *prefix, size_t prefix_len,
    const char *suffix);

/*
 * The RESP bytes into *out (malloc()ed, the caller's) and their length;
 * -1 if the builder failed (tg_command_strerror() says why), with
 * nothing to free.  The builder is empty afterwards either way.
 */
long tg_command_finish(tg_command_t *c, char **out);

/* drops what was built (a command given up before its finish) */
void tg_command_free(tg_command_t *c);

const char *tg_command_strerror(tg_command_error_e error);

#endif /* TG_COMMAND_H */
