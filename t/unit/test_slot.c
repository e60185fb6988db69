/*
 * Redis Cluster slots: every expected value below is what redis-server
 * 7.0.15 answered to CLUSTER KEYSLOT for the same key.
 */

#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tg_command.h"
#include "tg_slot.h"


static int
slot_of(tg_command_t *c)
{
    int    s;
    long   n;
    char  *cmd;

    n = tg_command_finish(c, &cmd);
    if (n < 0) {
        return -100;
    }

    s = tg_slot_of_command(cmd, n);
    free(cmd);

    return s;
}


void
test_slot(void)
{
    int            ask;
    size_t         alen;
    unsigned       i, slot;
    const char    *addr;
    tg_command_t   c;
    tg_slot_map_t  map;

    static const struct {
        const char  *key;
        int          slot;
    } keys[] = {
        { "", 0 },
        { "a", 15495 },
        { "foo", 12182 },
        { "123456789", 12739 },
        { "tg:{u:alice}:2026-12", 5797 },
        { "tg:{u:alice}:limits", 5797 },
        { "tg:{t:eng}:2026-12-02", 5181 },
        { "tg:recalls", 8912 },
        { "tg:idx:2026-12:users", 15590 },
        { "tg:{u:%C3%A9}:limits", 6214 },
        { "{}x", 10595 },
        { "{}", 15257 },
        { "x{}y{a}", 9172 },
        { "{a}", 15495 },
        { "a{b}c{d}", 3300 },
        { "{", 4092 },
        { "}{a}", 15495 },
        { "foo{", 7673 },
    };

    is_int(tg_slot_crc16("123456789", 9), 0x31c3, "crc16 check value");

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        is_int(tg_slot_of_key(keys[i].key, strlen(keys[i].key)),
               keys[i].slot, keys[i].key);
    }

    /* commands: the first key, or EVALSHA's keys */

    tg_command_init(&c, 0);
    tg_command_str(&c, "HINCRBY");
    tg_command_str(&c, "tg:{u:alice}:2026-12");
    tg_command_str(&c, "usd");
    tg_command_int(&c, 5);
    is_int(slot_of(&c), 5797, "HINCRBY by its key");

    tg_command_init(&c, 0);
    tg_command_str(&c, "SADD");
    tg_command_str(&c, "tg:idx:2026-12:users");
    tg_command_str(&c, "alice");
    is_int(slot_of(&c), 15590, "SADD of the index: its own slot");

    tg_command_init(&c, 0);
    tg_command_str(&c, "EVALSHA");
    tg_command_str(&c, "0123456789012345678901234567890123456789");
    tg_command_int(&c, 2);
    tg_command_str(&c, "tg:{u:alice}:2026-12");
    tg_command_str(&c, "tg:{u:alice}:limits");
    tg_command_str(&c, "tg:{u:bob}:2026-12");
    is_int(slot_of(&c), 5797, "EVALSHA keys of one scope, args ignored");

    tg_command_init(&c, 0);
    tg_command_str(&c, "EVALSHA");
    tg_command_str(&c, "0123456789012345678901234567890123456789");
    tg_command_int(&c, 2);
    tg_command_str(&c, "tg:{u:alice}:2026-12");
    tg_command_str(&c, "tg:{t:eng}:2026-12");
    is_int(slot_of(&c), TG_SLOT_CROSS, "EVALSHA over two scopes: CROSSSLOT");

    tg_command_init(&c, 0);
    tg_command_str(&c, "EVALSHA");
    tg_command_str(&c, "0123456789012345678901234567890123456789");
    tg_command_int(&c, 3);
    tg_command_str(&c, "tg:{u:alice}:2026-12");
    is_int(slot_of(&c), TG_SLOT_INVALID, "nkeys past argc");

    tg_command_init(&c, 0);
    tg_command_str(&c, "EVAL");
    tg_command_str(&c, "return 1");
    tg_command_int(&c, 0);
    is_int(slot_of(&c), TG_SLOT_NONE, "EVAL without keys: any node");

    tg_command_init(&c, 0);
    tg_command_str(&c, "SCRIPT");
    tg_command_str(&c, "LOAD");
    tg_command_str(&c, "return 1");
    is_int(slot_of(&c), TG_SLOT_NONE, "SCRIPT LOAD: any node");

    tg_command_init(&c, 0);
    tg_command_str(&c, "auth");
    tg_command_str(&c, "secret");
    is_int(slot_of(&c), TG_SLOT_NONE, "AUTH, any case: keyless");

    is_int(tg_slot_of_command("*2\r\n$3\r\nGET\r\n$9\r\nfoo\r\n", 21),
           TG_SLOT_INVALID, "a bulk longer than the command");
    is_int(tg_slot_of_command("*1\r\n$3\r\nGET\r\n", 13),
           TG_SLOT_INVALID, "GET without a key");
    is_int(tg_slot_of_command("+OK\r\n", 5), TG_SLOT_INVALID, "not an array");
    is_int(tg_slot_of_command("", 0), TG_SLOT_INVALID, "empty");

    /* the map */

    tg_slot_map_init(&map);
    is_int(tg_slot_map_covered(&map), 0, "a new map owns nothing");
    is_int(tg_slot_map_set(&map, 0, 5460, 0), 0, "range 0-5460");
    is_int(tg_slot_map_set(&map, 5461, 16383, 2), 0, "range 5461-16383");
    is_int(tg_slot_map_covered(&map), TG_SLOTS, "all slots covered");
    is_int(map.owner[5460], 0, "5460 on node 0");
    is_int(map.owner[5461], 2, "5461 on node 2");
    is_int(tg_slot_map_set(&map, 0, 16384, 1), -1, "past the last slot");
    is_int(tg_slot_map_set(&map, 9, 8, 1), -1, "start after end");
    is_int(tg_slot_map_set(&map, 0, 1, TG_SLOT_NODES_MAX), -1,
           "node past the bound");
    is_int(map.owner[0], 0, "a refused range changes nothing");

    /* redirects */

    ok(tg_slot_redirect("MOVED 3999 127.0.0.1:6381", 25, &ask, &slot,
                        &addr, &alen) == 0
       && !ask && slot == 3999 && alen == 14
       && memcmp(addr, "127.0.0.1:6381", 14) == 0, "MOVED read");
    ok(tg_slot_redirect("ASK 12 [::1]:7001", 17, &ask, &slot,
                        &addr, &alen) == 0
       && ask && slot == 12 && alen == 10, "ASK read");
    is_int(tg_slot_redirect("MOVED 16384 h:1", 15, &ask, &slot, &addr,
                            &alen), -1, "MOVED past the last slot");
    is_int(tg_slot_redirect("MOVED 12", 8, &ask, &slot, &addr, &alen), -1,
           "MOVED without an address");
    is_int(tg_slot_redirect("ERR MOVED 1 a:1", 15, &ask, &slot, &addr,
                            &alen), -1, "another error");
}
