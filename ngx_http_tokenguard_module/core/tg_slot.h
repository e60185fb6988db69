/*
 * Redis Cluster's key space: the CRC16 slot of a key (hash tags
 * included), the slot of a RESP command's keys, and a worker's slot map
 * (which node owns each slot).  Pure C, no nginx headers: the glue walks
 * the CLUSTER SLOTS reply and fills the map through tg_slot_map_set().
 */

#ifndef TG_SLOT_H
#define TG_SLOT_H

#include <stddef.h>
#include <stdint.h>


#define TG_SLOTS           16384

/* what tg_slot_of_command() returns besides a slot */
#define TG_SLOT_NONE       -1      /* no key: any node answers */
#define TG_SLOT_INVALID    -2      /* not a RESP command we can read */
#define TG_SLOT_CROSS      -3      /* keys of more than one slot */

/* no node known for a slot */
#define TG_SLOT_UNKNOWN    0xff

/* the most nodes a map names (masters; the map is bounded by it) */
#define TG_SLOT_NODES_MAX  64


typedef struct {
    uint8_t   owner[TG_SLOTS];     /* a node index, or TG_SLOT_UNKNOWN */
} tg_slot_map_t;


/* CRC16-CCITT (XMODEM), the one Redis Cluster uses */
unsigned tg_slot_crc16(const void *buf, size_t len);

/* the slot of a key: only the part inside the first non-empty {...} */
unsigned tg_slot_of_key(const void *key, size_t len);

/*
 * The slot of a RESP command ("*N\r\n$L\r\narg\r\n..."): EVAL/EVALSHA
 * by their keys (all of one slot, or TG_SLOT_CROSS), keyless commands
 * (AUTH, SELECT, SCRIPT, PING, CLUSTER, ASKING, INFO) TG_SLOT_NONE, every
 * other command by its first argument.
 */
int tg_slot_of_command(const char *cmd, size_t len);

void tg_slot_map_init(tg_slot_map_t *map);

/* slots start..end are owned by node; -1 if the range or node is bad */
int tg_slot_map_set(tg_slot_map_t *map, long start, long end, long node);

/* how many slots have an owner */
unsigned tg_slot_map_covered(const tg_slot_map_t *map);

/*
 * "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381": the slot and
 * where the address starts and its length; -1 if it is neither.
 */
int tg_slot_redirect(const char *err, size_t len, int *ask, unsigned *slot,
    const char **addr, size_t *addr_len);

#endif /* TG_SLOT_H */
