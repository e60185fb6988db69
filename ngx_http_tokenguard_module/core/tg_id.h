/*
 * Reservation and lease ids: 128 random bits as 32 lower-case hex digits,
 * so that no two nginx instances, workers or restarts ever share one (a
 * settle whose id was seen before is dropped as a replay).  The bits come
 * from getrandom(2) without blocking, 4 KB at a time, or from
 * /dev/urandom when the kernel's pool is not ready yet or the call is
 * missing.  Pure C, no nginx headers.
 */

#ifndef TG_ID_H
#define TG_ID_H


#define TG_ID_LEN  32


/*
 * once per process, after any fork: drops the bits it inherited and
 * opens the fallback source; 0, or -1 (getrandom only)
 */
int tg_id_open(void);
void tg_id_close(void);

/* TG_ID_LEN hex digits and a NUL into out; 0, or -1 with no source */
int tg_id_new(char *out);

#endif /* TG_ID_H */
