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
 *   P:leases                  set: ids of the slices workers hold
 *   P:recall                  set while a request waits for slices back
 *
 * The period hashes also hold the caps nginx.conf gave the scope's last
 * request of the period (conf_usd, conf_tokens, conf_requests,
 * conf_sandbox_usd; -1: none), so tokenguardctl can show the cap that
 * applies without reading nginx.conf; written only when they change.
 *
 * A reservation record is "monthkey|daykey|usd|tokens|sandbox", and a
 * lease's has "|requests" after it.  Every script first purges
 * reservations whose expiry passed, taking their amounts off the reserved
 * fields: a request that never settles (crashed worker, lost connection)
 * stops counting after the reservation TTL.
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
    " if v:sub(1, 1) == '-' then return v:sub(2) end"                        \
    " return '-' .. v end\n"                                                 \
    "local function unreserve(rec)\n"                                        \
    "  local mk, dk, usd, tok, sb, req = string.match(rec,"                  \
    " '^(.-)|(.-)|(-?%d+)|(-?%d+)|(%d)|?(-?%d*)$')\n"                        \
    "  if not mk then return end\n"                                          \
    "  if req == '' then req = '1' end\n"                                    \
    "  for _, k in ipairs({mk, dk}) do\n"                                    \
    "    if sb == '1' then\n"                                                \
    "      redis.call('HINCRBY', k, 'sandbox_reserved_usd', neg(usd))\n"     \
    "    else\n"                                                             \
    "      redis.call('HINCRBY', k, 'reserved_usd', neg(usd))\n"             \
    "      redis.call('HINCRBY', k, 'reserved_tokens', neg(tok))\n"          \
    "      redis.call('HINCRBY', k, 'reserved_requests', neg(req))\n"        \
    "    end\n"                                                              \
    "  end\n"                                                                \
    "end\n"

#define TG_LUA_RECORD                                                        \
    "local function record(k, fields, values, ttl)\n"                        \
    "  local cur = redis.call('HMGET', k, unpack(fields))\n"                 \
    "  local w = false\n"                                                    \
    "  for i, f in ipairs(fields) do\n"                                      \
    "    if cur[i] ~= values[i] then\n"                                      \
    "      redis.call('HSET', k, f, values[i])\n"                            \
    "      w = true\n"                                                       \
    "    end\n"                                                              \
    "  end\n"                                                                \
    "  if w then redis.call('EXPIRE', k, ttl) end\n"                         \
    "end\n"


/*
 * RESERVE
 * KEYS: month, day, limits, resv, resv:exp
 * ARGV: now_ms, ttl_ms, id, sandbox (0/1), usd, tokens,
 *       cap usd_month, usd_day, tokens_month, tokens_day, requests_month,
 *       requests_day, sandbox_usd_month, sandbox_usd_day (-1: none),
 *       retention_month_s, retention_day_s, dry (1: a dry run, whose
 *       refusals the module counts as "dry_denied", not "denied")
 * Returns {1, remaining_usd, expired} or
 *         {0, field, limit, used, expired}: field names the cap, as in
 *         P:limits ("usd_month" ...); used includes what is in flight.
 *         remaining_usd is -1 without a USD cap.
 */

static const char  tg_script_reserve[] =
    TG_LUA_UNRESERVE
    TG_LUA_PURGE
    TG_LUA_RECORD
    "local now, ttl, id, sb = tonumber(ARGV[1]), tonumber(ARGV[2]),"
    " ARGV[3], ARGV[4]\n"
    "local usd, tok = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local expired = purge(KEYS[4], KEYS[5], now)\n"
    "local conf = {'conf_usd', 'conf_tokens', 'conf_requests',"
    " 'conf_sandbox_usd'}\n"
    "record(KEYS[1], conf, {ARGV[7], ARGV[9], ARGV[11], ARGV[13]},"
    " ARGV[15])\n"
    "record(KEYS[2], conf, {ARGV[8], ARGV[10], ARGV[12], ARGV[14]},"
    " ARGV[16])\n"
    "local function deny()\n"
    "  if ARGV[17] == '1' then return end\n"
    "  redis.call('HINCRBY', KEYS[1], 'denied', 1)\n"
    "  redis.call('HINCRBY', KEYS[2], 'denied', 1)\n"
    "end\n"
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
    "    deny()\n"
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
    "      deny()\n"
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
 * requests = 0 it only releases the reservation (the upstream failed),
 * and a release is not remembered: the request may still settle.
 * KEYS: month, day, resv, resv:exp, settled
 * ARGV: now_ms, id, sandbox, usd, tokens_in, tokens_out, requests (0/1),
 *       model, category, rerouted (0/1), retention_month_s,
 *       retention_day_s, remember_ms, estimated (0/1: usage not reported),
 *       requested model (when rerouted, else ""), saved micro-USD (what
 *       the requested model would have cost minus what the routed one did),
 *       route tag ("" without a route), dry (1: the route was not
 *       applied, a dry run), what it would have saved (micro-USD)
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
    "    if ARGV[17] and ARGV[17] ~= '' then\n"
    "      local rt = 'route:' .. ARGV[17] .. ':'\n"
    "      if ARGV[18] == '1' then\n"
    "        redis.call('HINCRBY', k, rt .. 'dry_requests', 1)\n"
    "        redis.call('HINCRBY', k, rt .. 'dry_saved_usd', ARGV[19])\n"
    "        redis.call('HINCRBY', k, 'dry_saved_usd', ARGV[19])\n"
    "      else\n"
    "        redis.call('HINCRBY', k, rt .. 'requests', 1)\n"
    "        redis.call('HINCRBY', k, rt .. 'saved_usd', ARGV[16])\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  redis.call('EXPIRE', KEYS[1], ARGV[11])\n"
    "  redis.call('EXPIRE', KEYS[2], ARGV[12])\n"
    "end\n"
    "if ARGV[7] == '1' then\n"
    "  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[13]), id)\n"
    "end\n"
    "return {1, expired}\n";


/*
 * STATUS: how much of the scope's caps is spent or reserved.
 * KEYS: month, day, limits
 * ARGV: sandbox (0/1), caps usd_month, usd_day, tokens_month, tokens_day,
 *       requests_month, requests_day, sandbox_usd_month, sandbox_usd_day
 *       (-1: none; an override in limits wins, as in RESERVE)
 * Returns {share of the tightest USD cap (0..; -1: none), its period
 * (1 month, 2 day), its limit, its use, then the same of the tightest of
 * every cap that applies (the sandbox allowance for a sandbox request,
 * the caps else): share, cap (1..8 in the order of ARGV), limit, use},
 * all read in one script.
 */

static const char  tg_script_status[] =
    "local names = {'usd_month', 'usd_day', 'tokens_month', 'tokens_day',"
    " 'requests_month', 'requests_day', 'sandbox_usd_month',"
    " 'sandbox_usd_day'}\n"
    "local fields = {{'usd', 'reserved_usd'},\n"
    "                {'tokens_in', 'tokens_out', 'reserved_tokens'},\n"
    "                {'requests', 'reserved_requests'},\n"
    "                {'sandbox_usd', 'sandbox_reserved_usd'}}\n"
    "local over = redis.call('HMGET', KEYS[3], unpack(names))\n"
    "local pct, at, lim, use = -1, 0, 0, 0\n"
    "local wp, wi, wl, wu = -1, 0, 0, 0\n"
    "for i = 1, 8 do\n"
    "  local limit = tonumber(over[i]) or tonumber(ARGV[1 + i])\n"
    "  local d = math.floor((i + 1) / 2)\n"
    "  local on = (d == 4) == (ARGV[1] == '1')\n"
    "  if limit >= 0 and (on or d == 1) then\n"
    "    local u = 0\n"
    "    local k = KEYS[2 - i % 2]\n"
    "    for _, x in ipairs(redis.call('HMGET', k, unpack(fields[d]))) do\n"
    "      u = u + (tonumber(x) or 0)\n"
    "    end\n"
    "    local p = 100\n"
    "    if limit > 0 then p = math.floor(u * 100 / limit) end\n"
    "    if d == 1 and p > pct then pct, at, lim, use = p, 2 - i % 2,"
    " limit, u end\n"
    "    if on and p > wp then wp, wi, wl, wu = p, i, limit, u end\n"
    "  end\n"
    "end\n"
    "return {pct, at, lim, use, wp, wi, wl, wu}\n";


/*
 * COUNT: add 1 to fields of both periods (a refusal before the ledger).
 * KEYS: month, day
 * ARGV: field, retention_month_s, retention_day_s, more fields
 */

static const char  tg_script_count[] =
    "local f = {ARGV[1]}\n"
    "for i = 4, #ARGV do f[#f + 1] = ARGV[i] end\n"
    "for _, x in ipairs(f) do\n"
    "  redis.call('HINCRBY', KEYS[1], x, 1)\n"
    "  redis.call('HINCRBY', KEYS[2], x, 1)\n"
    "end\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[3])\n"
    "return 1\n";


/*
 * LEASE: a worker's slice of a scope's headroom (ngx_http_tokenguard_
 * lease.c).  The slice is a reservation record like a request's, with a
 * request count, so caps, expiry and purging treat both alike.  One call
 * adds the spend settled locally since the last call, then sets the
 * slice to what the holder has in flight, plus "need" (a waiting
 * request's worst case: refused if it does not fit), plus up to "want"
 * of spare, at most half the headroom left and none while the scope is
 * recalled.  The slice is set, not adjusted, so a lost reply costs
 * nothing: the next call puts it right.  A request that does not fit
 * while other holders have slices is told to retry (status 2) and
 * recalls the scope: every holder gives its spare back within the
 * recall window, after which a refusal is final (window 0).
 * KEYS: month, day, limits, resv, resv:exp, settled, leases, recall
 * ARGV: now_ms, ttl_ms, lease id, batch id ("": no spend), mode (lease;
 *       drop: add the spend and remove the slice; spend: only add it),
 *       in flight usd/tokens/requests, need usd/tokens/requests, want
 *       usd/tokens/requests, caps (6, as RESERVE), retention_month_s,
 *       retention_day_s, remember_ms, recall window_ms, then field/delta
 *       pairs of spend added to both periods
 * Returns {status (1 granted, 0 refused, 2 retry), expired, slice usd,
 *          tokens, requests, usd_month cap, its use by others, usd_day
 *          cap, its use by others, refused field, limit, used, then the
 *          cap and use by others of tokens_month, tokens_day,
 *          requests_month, requests_day}.
 */

static const char  tg_script_lease[] =
    TG_LUA_UNRESERVE
    TG_LUA_PURGE
    TG_LUA_RECORD
    /*
     * a period key of another type fails the call before any write: a
     * script's writes before an error stay, and a slice record without
     * its reserved fields would take them below zero when it goes
     */
    "for _, k in ipairs({KEYS[1], KEYS[2]}) do\n"
    "  local t = redis.call('TYPE', k).ok\n"
    "  if t ~= 'hash' and t ~= 'none' then\n"
    "    return redis.error_reply('WRONGTYPE ' .. k .. ' is not a hash')\n"
    "  end\n"
    "end\n"
    "local now, ttl, id = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]\n"
    "local batch, mode, win = ARGV[4], ARGV[5], tonumber(ARGV[24])\n"
    "local expired = purge(KEYS[4], KEYS[5], now)\n"
    "if batch ~= '' then\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)\n"
    "  if not redis.call('ZSCORE', KEYS[6], batch) then\n"
    "    for i = 25, #ARGV - 1, 2 do\n"
    "      redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])\n"
    "      redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])\n"
    "    end\n"
    "    redis.call('ZADD', KEYS[6], now + tonumber(ARGV[23]), batch)\n"
    "  end\n"
    "end\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[21])\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[22])\n"
    "if mode == 'spend' then\n"
    "  return {1, expired, 0, 0, 0, -1, 0, -1, 0, '', 0, 0}\n"
    "end\n"
    /*
     * the slice is moved by its difference to the new one, not removed
     * and granted again (10 writes fewer a call), when its record is one
     * this script wrote for these periods; otherwise (a period rolled
     * over, a drop) it is removed first
     */
    "local rec = redis.call('HGET', KEYS[4], id)\n"
    "local old\n"
    "if rec and mode ~= 'drop' then\n"
    "  local mk, dk, u, t, r = string.match(rec,"
    " '^(.-)|(.-)|(-?%d+)|(-?%d+)|0|(-?%d+)$')\n"
    "  if mk == KEYS[1] and dk == KEYS[2] then\n"
    "    old = {tonumber(u), tonumber(t), tonumber(r)}\n"
    "  end\n"
    "end\n"
    "if rec and not old then\n"
    "  unreserve(rec)\n"
    "  redis.call('HDEL', KEYS[4], id)\n"
    "  redis.call('ZREM', KEYS[5], id)\n"
    "end\n"
    "if mode == 'drop' then\n"
    "  redis.call('SREM', KEYS[7], id)\n"
    "  return {1, expired, 0, 0, 0, -1, 0, -1, 0, '', 0, 0}\n"
    "end\n"
    "local conf = {'conf_usd', 'conf_tokens', 'conf_requests'}\n"
    "record(KEYS[1], conf, {ARGV[15], ARGV[17], ARGV[19]}, ARGV[21])\n"
    "record(KEYS[2], conf, {ARGV[16], ARGV[18], ARGV[20]}, ARGV[22])\n"
    "local L, need, want = {}, {}, {}\n"
    "for d = 1, 3 do\n"
    "  L[d] = tonumber(ARGV[5 + d])\n"
    "  need[d], want[d] = tonumber(ARGV[8 + d]), tonumber(ARGV[11 + d])\n"
    "end\n"
    "local names = {'usd_month', 'usd_day', 'tokens_month', 'tokens_day',\n"
    "               'requests_month', 'requests_day'}\n"
    "local over = redis.call('HMGET', KEYS[3], unpack(names))\n"
    /* each period's use, in one read of the fields of every capped kind */
    "local fields = {{'usd', 'reserved_usd'},\n"
    "                {'tokens_in', 'tokens_out', 'reserved_tokens'},\n"
    "                {'requests', 'reserved_requests'}}\n"
    "local cap, used, head, tight = {}, {}, {}, {}\n"
    "for i = 1, 6 do\n"
    "  cap[i] = tonumber(over[i]) or tonumber(ARGV[14 + i])\n"
    "  used[i] = 0\n"
    "end\n"
    "for p = 1, 2 do\n"
    "  local want_f, kind = {}, {}\n"
    "  for d = 1, 3 do\n"
    "    if cap[2 * d - 2 + p] >= 0 then\n"
    "      for _, f in ipairs(fields[d]) do\n"
    "        want_f[#want_f + 1], kind[#want_f + 1] = f, d\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if #want_f > 0 then\n"
    "    local v = redis.call('HMGET', KEYS[p], unpack(want_f))\n"
    "    for j = 1, #want_f do\n"
    "      local i = 2 * kind[j] - 2 + p\n"
    "      used[i] = used[i] + (tonumber(v[j]) or 0)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for i = 1, 6 do\n"
    "  local d = math.floor((i + 1) / 2)\n"
    "  if cap[i] >= 0 then\n"
    "    if old then used[i] = used[i] - old[d] end\n"
    "    local h = cap[i] - used[i] - L[d]\n"
    "    if head[d] == nil or h < head[d] then head[d], tight[d] = h, i end\n"
    "  end\n"
    "end\n"
    "local function others()\n"
    "  for _, x in ipairs(redis.call('SMEMBERS', KEYS[7])) do\n"
    "    if x ~= id then\n"
    "      if redis.call('HEXISTS', KEYS[4], x) == 1 then return true end\n"
    "      redis.call('SREM', KEYS[7], x)\n"
    "    end\n"
    "  end\n"
    "  return false\n"
    "end\n"
    "local recall = tonumber(redis.call('GET', KEYS[8]))\n"
    "local status, field, limit, u = 1, '', 0, 0\n"
    /* a call with no need (a flush) is never refused nor recalls */
    "local needy = need[1] > 0 or need[2] > 0 or need[3] > 0\n"
    "for d = 1, 3 do\n"
    "  if needy and status == 1 and head[d] ~= nil and need[d] > head[d]"
    " then\n"
    "    local i = tight[d]\n"
    "    status, field, limit, u = 0, names[i], cap[i], used[i] + L[d]\n"
    "  end\n"
    "end\n"
    "if status == 0 and win > 0 and others() then\n"
    "  if not recall or now - recall >= 2 * win then\n"
    "    recall = now\n"
    "    redis.call('SET', KEYS[8], now, 'PX', 2 * win)\n"
    "  end\n"
    "  if now - recall < win then status = 2 end\n"
    "end\n"
    "if status == 0 then\n"
    "  redis.call('HINCRBY', KEYS[1], 'denied', 1)\n"
    "  redis.call('HINCRBY', KEYS[2], 'denied', 1)\n"
    "end\n"
    "local fresh = recall and now - recall < win\n"
    "if status == 1 then\n"
    "  for d = 1, 3 do\n"
    "    local x = want[d]\n"
    "    if fresh then\n"
    "      x = 0\n"
    "    elseif head[d] ~= nil then\n"
    "      x = math.max(0, math.min(x, math.floor((head[d] - need[d]) / 2)))\n"
    "    end\n"
    "    L[d] = L[d] + need[d] + x\n"
    "  end\n"
    "end\n"
    "local was = old or {0, 0, 0}\n"
    "local rf = {'reserved_usd', 'reserved_tokens', 'reserved_requests'}\n"
    "for d = 1, 3 do\n"
    "  if L[d] ~= was[d] then\n"
    /* %d: Lua writes 1e14 as "1e+14", which HINCRBY refuses */
    "    local x = string.format('%d', L[d] - was[d])\n"
    "    redis.call('HINCRBY', KEYS[1], rf[d], x)\n"
    "    redis.call('HINCRBY', KEYS[2], rf[d], x)\n"
    "  end\n"
    "end\n"
    "if L[1] ~= 0 or L[2] ~= 0 or L[3] ~= 0 then\n"
    /* %d, not "..": Lua writes 1e14 as "1e+14", which unreserve() skips */
    "  redis.call('HSET', KEYS[4], id, string.format('%s|%s|%d|%d|0|%d',\n"
    "             KEYS[1], KEYS[2], L[1], L[2], L[3]))\n"
    "  redis.call('ZADD', KEYS[5], now + ttl, id)\n"
    "  if not old then redis.call('SADD', KEYS[7], id) end\n"
    "else\n"
    "  if old then\n"
    "    redis.call('HDEL', KEYS[4], id)\n"
    "    redis.call('ZREM', KEYS[5], id)\n"
    "  end\n"
    "  redis.call('SREM', KEYS[7], id)\n"
    "end\n"
    "return {status, expired, L[1], L[2], L[3], cap[1], used[1], cap[2],\n"
    "        used[2], field, limit, u, cap[3], used[3], cap[4], used[4],\n"
    "        cap[5], used[5], cap[6], used[6]}\n";

const char  *tg_scripts[TG_SCRIPT_N] = {
    tg_script_reserve,
    tg_script_settle,
    tg_script_status,
    tg_script_count,
    tg_script_lease
};


const char  *tg_script_names[TG_SCRIPT_N] = {
    "reserve",
    "settle",
    "status",
    "count",
    "lease"
};
