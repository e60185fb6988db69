-- wrk: POST an AI request as one of 1000 users, with a fixed seed so every
-- run sends the same sequence.  From the environment: BODY_FILE,
-- BENCH_PATH, BENCH_HEADERS ("Name: value|Name: value", extra headers),
-- RATE and THREADS (below).
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
local path = os.getenv("BENCH_PATH")

local extra = {}
for h in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^|]+") do
  local k, v = h:match("^%s*([^:]+):%s*(.*)$")
  if k then extra[k] = v end
end

math.randomseed(42)

request = function()
  local user = "user" .. math.random(1, 1000)
  local h = {
    ["Content-Type"] = "application/json",
    ["X-User"] = user,
    ["X-Team"] = "team" .. (tonumber(user:sub(5)) % 20),
  }
  for k, v in pairs(extra) do h[k] = v end
  return wrk.format("POST", path, h, body)
end

-- RATE: requests a second offered in all (THREADS threads share it), on
-- a fixed schedule: each request gets the next slot, 1/rate after the
-- last, and waits for it (a slot already past is taken at once, with no
-- catch-up burst).  wrk has no open-loop mode of its own (wrk2 is not in
-- Debian); this one holds while the side answers faster than its
-- connections run out.  wrk times a request from its sending, so the
-- wait for a slot is not counted as latency.
local rate = tonumber(os.getenv("RATE") or "")
if rate then
  local ffi = require("ffi")
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } tg_timespec;
    int clock_gettime(int clk, tg_timespec *tp);
  ]]
  local ts = ffi.new("tg_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, ts)          -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  local interval = 1000 * tonumber(os.getenv("THREADS") or "1") / rate
  local next_slot = 0
  delay = function()
    local now = now_ms()
    local slot = math.max(now, next_slot)
    next_slot = slot + interval
    return math.floor(slot - now)
  end
end
