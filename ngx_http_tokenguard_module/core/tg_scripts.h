/*
 * The ledger's Lua scripts.  Each touches the keys of one scope (one
 * hash tag), so the layout stays Redis Cluster-ready.  The argument
 * lists are documented at each script in tg_scripts.c.
 * Pure C data, no nginx headers.
 */

#ifndef TG_SCRIPTS_H
#define TG_SCRIPTS_H


typedef enum {
    TG_SCRIPT_RESERVE = 0,
    TG_SCRIPT_SETTLE,
    TG_SCRIPT_STATUS,
    TG_SCRIPT_COUNT,
    TG_SCRIPT_LEASE,
    TG_SCRIPT_N
} tg_script_e;


extern const char  *tg_scripts[TG_SCRIPT_N];
extern const char  *tg_script_names[TG_SCRIPT_N];

#endif /* TG_SCRIPTS_H */
