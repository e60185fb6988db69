/*
 * Lua scripts of the ledger.
 *
 * A scope (a user or a team) has, under its hash tag P = tg:{u:NAME}:
 *   P:YYYY-MM, P:YYYY-MM-DD   counters (DESIGN.md "Redis layout") plus
 *                             reserved_usd, reserved_tokens,
 *                             reserved_requests, sandbox_reserved_usd
 *   P:limits                  ops overrides (usd in micro-USD; < 0: none)
 *   P:resv                    hash: reservation id -> its record
 *   P:resv:exp                zset: reservation id -> expiry (ms)
 *   P:settled                 zset: settled ids -> forget-after (ms), so a
 *                             settle replayed from the journal counts once
 *
 * A reservation record is "monthkey|daykey|usd|tokens|sandbox".  Every
 * script first purges reservations whose expiry passed, taking their
 * amounts off the reserved fields: a request that never settles (crashed
 * worker, lost connection) stops counting after the reservation TTL.
 */

#include "tg_scripts.h"


#define TG_LUA_PURGE                                                         \
    "local function purge(resv, exp, now)\n"                                 \
    "  local n = 0\n"                                                        \
    "  for _, id in ipairs(redis.call('ZRANGEBYSCORE', exp, '-inf', now))"   \
    " do\n"                                                                  \
    "    local rec = redis.call('HGET', resv, id)\n"                         \
    "    if rec then unreserve(rec) end\n"                                   \
    "    redis.call('HDEL', resv, id)\n"                                     \
    "    redis.call('ZREM', exp, id)\n"                                      \
    "    n = n + 1\n"                                                        \
    "  end\n"                                                                \
    "  return n\n"                                                           \
    "end\n"

#define TG_LUA_UNRESERVE                                                     \
    "local function neg(v) if v == '0' then return v end"                    \
    " return '-' .. v end\n"                                                 \
    "local function unreserve(rec)\n"                                        \
    "  local mk, dk, usd, tok, sb = string.match(rec,"                       \
    " '^(.-)|(.-)|(%d+)|(%d+)|(%d)$')\n"                                     \
    "  if not mk then return end\n"                                          \
    "  for _, k in ipairs({mk, dk}) do\n"                                    \
    "    if sb == '1' then\n"                                                \
    "      redis.call('HINCRBY', k, 'sandbox_reserved_usd', neg(usd))\n"     \
    "    else\n"                                                             \
    "      redis.call('HINCRBY', k, 'reserved_usd', neg(usd))\n"             \
    "      redis.call('HINCRBY', k, 'reserved_tokens', neg(tok))\n"          \
    "      redis.call('HINCRBY', k, 'reserved_requests', -1)\n"              \
    "    end\n"                                                              \
    "  end\n"                                                                \
    "end\n"


/*
 * RESERVE
 * KEYS: month, day, limits, resv, resv:exp
 * ARGV: now_ms, ttl_ms, id, sandbox (0/1), usd, tokens,
 *       cap usd_month, usd_day, tokens_month, tokens_day, requests_month,
 *       requests_day, sandbox_usd_month, sandbox_usd_day (-1: none),
 *       retention_month_s, retention_day_s
 * Returns {1, remaining_usd, expired} or
 *         {0, field, limit, used, expired}: field names the cap, as in
 *         P:limits ("usd_month" ...); used includes what is in flight.
 *         remaining_usd is -1 without a USD cap.
 */

static const char  tg_script_reserve[] =
    TG_LUA_UNRESERVE
    TG_LUA_PURGE
    "local now, ttl, id, sb = tonumber(ARGV[1]), tonumber(ARGV[2]),"
    " ARGV[3], ARGV[4]\n"
    "local usd, tok = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local expired = purge(KEYS[4], KEYS[5], now)\n"
    "local names = {'usd_month', 'usd_day', 'tokens_month', 'tokens_day',"
    " 'requests_month', 'requests_day', 'sandbox_usd_month',"
    " 'sandbox_usd_day'}\n"
    "local over = redis.call('HMGET', KEYS[3], unpack(names))\n"
    "local cap = {}\n"
    "for i, f in ipairs(names) do\n"
    "  cap[f] = tonumber(over[i]) or tonumber(ARGV[6 + i])\n"
    "end\n"
    "local function used(k, spent, reserved)\n"
    "  local v = redis.call('HMGET', k, spent, reserved)\n"
    "  return (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)\n"
    "end\n"
    "local checks\n"
    "if sb == '1' then\n"
    "  checks = {{'sandbox_usd_month', KEYS[1], 'sandbox_usd',"
    " 'sandbox_reserved_usd', usd},\n"
    "            {'sandbox_usd_day', KEYS[2], 'sandbox_usd',"
    " 'sandbox_reserved_usd', usd}}\n"
    "  if cap.sandbox_usd_month < 0 and cap.sandbox_usd_day < 0 then\n"
    "    redis.call('HINCRBY', KEYS[1], 'denied', 1)\n"
    "    redis.call('HINCRBY', KEYS[2], 'denied', 1)\n"
    "    return {0, 'sandbox_usd_month', 0, 0, expired}\n"
    "  end\n"
    "else\n"
    "  checks = {{'usd_month', KEYS[1], 'usd', 'reserved_usd', usd},\n"
    "            {'usd_day', KEYS[2], 'usd', 'reserved_usd', usd},\n"
    "            {'tokens_month', KEYS[1], 'tokens_in', 'reserved_tokens',"
    " tok},\n"
    "            {'tokens_day', KEYS[2], 'tokens_in', 'reserved_tokens',"
    " tok},\n"
    "            {'requests_month', KEYS[1], 'requests',"
    " 'reserved_requests', 1},\n"
    "            {'requests_day', KEYS[2], 'requests', 'reserved_requests',"
    " 1}}\n"
    "end\n"
    "local remaining = -1\n"
    "for _, c in ipairs(checks) do\n"
    "  local limit = cap[c[1]]\n"
    "  if limit >= 0 then\n"
    "    local u = used(c[2], c[3], c[4])\n"
    "    if c[3] == 'tokens_in' then\n"
    "      u = u + (tonumber(redis.call('HGET', c[2], 'tokens_out')) or 0)\n"
    "    end\n"
    "    if u + c[5] > limit then\n"
    "      redis.call('HINCRBY', KEYS[1], 'denied', 1)\n"
    "      redis.call('HINCRBY', KEYS[2], 'denied', 1)\n"
    "      return {0, c[1], limit, u, expired}\n"
    "    end\n"
    "    if c[1]:find('usd') then\n"
    "      local r = limit - u - usd\n"
    "      if remaining < 0 or r < remaining then remaining = r end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for _, k in ipairs({KEYS[1], KEYS[2]}) do\n"
    "  if sb == '1' then\n"
    "    redis.call('HINCRBY', k, 'sandbox_reserved_usd', ARGV[5])\n"
    "  else\n"
    "    redis.call('HINCRBY', k, 'reserved_usd', ARGV[5])\n"
    "    redis.call('HINCRBY', k, 'reserved_tokens', ARGV[6])\n"
    "    redis.call('HINCRBY', k, 'reserved_requests', 1)\n"
    "  end\n"
    "end\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[15])\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[16])\n"
    "redis.call('HSET', KEYS[4], id, KEYS[1] .. '|' .. KEYS[2] .. '|' .."
    " ARGV[5] .. '|' .. ARGV[6] .. '|' .. sb)\n"
    "redis.call('ZADD', KEYS[5], now + ttl, id)\n"
    "return {1, remaining, expired}\n";


/*
 * SETTLE: spend what a request used and drop its reservation; with
 * requests = 0 it only releases the reservation (the upstream failed).
 * KEYS: month, day, resv, resv:exp, settled
 * ARGV: now_ms, id, sandbox, usd, tokens_in, tokens_out, requests (0/1),
 *       model, category, rerouted (0/1), retention_month_s,
 *       retention_day_s, remember_ms, estimated (0/1: usage not reported),
 *       requested model (when rerouted, else ""), saved micro-USD (what
 *       the requested model would have cost minus what the routed one did)
 * Returns {applied (0: a replay already counted), expired}.
 */

static const char  tg_script_settle[] =
    TG_LUA_UNRESERVE
    TG_LUA_PURGE
    "local now, id, sb = tonumber(ARGV[1]), ARGV[2], ARGV[3]\n"
    "local expired = purge(KEYS[3], KEYS[4], now)\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)\n"
    "if redis.call('ZSCORE', KEYS[5], id) then return {0, expired} end\n"
    "local rec = redis.call('HGET', KEYS[3], id)\n"
    "if rec then\n"
    "  unreserve(rec)\n"
    "  redis.call('HDEL', KEYS[3], id)\n"
    "  redis.call('ZREM', KEYS[4], id)\n"
    "end\n"
    "local usd, tin, tout = ARGV[4], ARGV[5], ARGV[6]\n"
    "if ARGV[7] == '1' then\n"
    "  local m, c = 'model:' .. ARGV[8] .. ':', 'cat:' .. ARGV[9] .. ':'\n"
    "  for _, k in ipairs({KEYS[1], KEYS[2]}) do\n"
    "    if sb == '1' then\n"
    "      redis.call('HINCRBY', k, 'sandbox_usd', usd)\n"
    "      redis.call('HINCRBY', k, 'sandbox_tokens_in', tin)\n"
    "      redis.call('HINCRBY', k, 'sandbox_tokens_out', tout)\n"
    "    else\n"
    "      redis.call('HINCRBY', k, 'usd', usd)\n"
    "      redis.call('HINCRBY', k, 'tokens_in', tin)\n"
    "      redis.call('HINCRBY', k, 'tokens_out', tout)\n"
    "      redis.call('HINCRBY', k, 'requests', 1)\n"
    "    end\n"
    "    redis.call('HINCRBY', k, m .. 'usd', usd)\n"
    "    redis.call('HINCRBY', k, m .. 'tokens_in', tin)\n"
    "    redis.call('HINCRBY', k, m .. 'tokens_out', tout)\n"
    "    redis.call('HINCRBY', k, c .. 'usd', usd)\n"
    "    redis.call('HINCRBY', k, c .. 'requests', 1)\n"
    "    if ARGV[10] == '1' then redis.call('HINCRBY', k, 'rerouted', 1)"
    " end\n"
    "    if ARGV[14] == '1' then redis.call('HINCRBY', k, 'estimated', 1)"
    " end\n"
    "    if ARGV[15] ~= '' then\n"
    "      local rr = 'reroute:' .. ARGV[15] .. '->' .. ARGV[8] .. ':'\n"
    "      redis.call('HINCRBY', k, rr .. 'requests', 1)\n"
    "      redis.call('HINCRBY', k, rr .. 'saved_usd', ARGV[16])\n"
    "      redis.call('HINCRBY', k, 'saved_usd', ARGV[16])\n"
    "    end\n"
    "  end\n"
    "  redis.call('EXPIRE', KEYS[1], ARGV[11])\n"
    "  redis.call('EXPIRE', KEYS[2], ARGV[12])\n"
    "end\n"
    "redis.call('ZADD', KEYS[5], now + tonumber(ARGV[13]), id)\n"
    "return {1, expired}\n";


/*
 * STATUS: how much of the scope's tightest USD cap is spent or reserved.
 * KEYS: month, day, limits
 * ARGV: cap usd_month, usd_day (-1: none)
 * Returns the percentage (0..), or -1 without a USD cap.
 */

static const char  tg_script_status[] =
    "local over = redis.call('HMGET', KEYS[3], 'usd_month', 'usd_day')\n"
    "local pct = -1\n"
    "for i = 1, 2 do\n"
    "  local limit = tonumber(over[i]) or tonumber(ARGV[i])\n"
    "  if limit >= 0 then\n"
    "    local v = redis.call('HMGET', KEYS[i], 'usd', 'reserved_usd')\n"
    "    local u = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)\n"
    "    local p = 100\n"
    "    if limit > 0 then p = math.floor(u * 100 / limit) end\n"
    "    if p > pct then pct = p end\n"
    "  end\n"
    "end\n"
    "return pct\n";


/*
 * COUNT: add 1 to a field of both periods (a refusal before the ledger).
 * KEYS: month, day
 * ARGV: field, retention_month_s, retention_day_s
 */

static const char  tg_script_count[] =
    "redis.call('HINCRBY', KEYS[1], ARGV[1], 1)\n"
    "redis.call('HINCRBY', KEYS[2], ARGV[1], 1)\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[3])\n"
    "return 1\n";


const char  *tg_scripts[TG_SCRIPT_N] = {
    tg_script_reserve,
    tg_script_settle,
    tg_script_status,
    tg_script_count
};


const char  *tg_script_names[TG_SCRIPT_N] = {
    "reserve",
    "settle",
    "status",
    "count"
};
