#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include "tg_id.h"


/*
 * Random bits are drawn 4 KB at a time (128 ids): one getrandom() per
 * request was a system call on every request's path.  A pool filled
 * before a fork would give parent and child the same ids, so
 * tg_id_open(), called once per process (nginx: in each worker), drops
 * whatever the process inherited.
 */
#define TG_ID_POOL  4096

static int             tg_id_fd = -1;
static unsigned char   tg_id_pool[TG_ID_POOL];
static size_t          tg_id_pos = TG_ID_POOL;


int
tg_id_open(void)
{
    tg_id_pos = TG_ID_POOL;

    if (tg_id_fd == -1) {
        tg_id_fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    }

    return tg_id_fd == -1 ? -1 : 0;
}


void
tg_id_close(void)
{
    if (tg_id_fd != -1) {
        (void) close(tg_id_fd);
        tg_id_fd = -1;
    }
}


/* n random bytes; never blocks: /dev/urandom does not, ever */
static int
tg_id_random(unsigned char *buf, size_t n)
{
    size_t   got;
    ssize_t  k;

    for (got = 0; got < n; got += (size_t) k) {
        k = getrandom(buf + got, n - got, GRND_NONBLOCK);

        if (k > 0) {
            continue;
        }

        if (k < 0 && errno == EINTR) {
            k = 0;
            continue;
        }

        /* EAGAIN (early boot) or ENOSYS (old kernel): the device */
        if (tg_id_fd == -1 && tg_id_open() != 0) {
            return -1;
        }

        k = read(tg_id_fd, buf + got, n - got);

        if (k < 0 && errno == EINTR) {
            k = 0;
            continue;
        }

        if (k <= 0) {
            return -1;
        }
    }

    return 0;
}


int
tg_id_new(char *out)
{
    int            i;
    unsigned char  bits[TG_ID_LEN / 2];

    static const char  hex[] = "0123456789abcdef";

    if (tg_id_pos + sizeof(bits) > TG_ID_POOL) {
        if (tg_id_random(tg_id_pool, TG_ID_POOL) != 0) {
            return -1;
        }

        tg_id_pos = 0;
    }

    memcpy(bits, tg_id_pool + tg_id_pos, sizeof(bits));
    /* a used id leaves no copy behind */
    memset(tg_id_pool + tg_id_pos, 0, sizeof(bits));
    tg_id_pos += sizeof(bits);

    for (i = 0; i < TG_ID_LEN / 2; i++) {
        out[2 * i] = hex[bits[i] >> 4];
        out[2 * i + 1] = hex[bits[i] & 0xf];
    }

    out[TG_ID_LEN] = '\0';

    return 0;
}
