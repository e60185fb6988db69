-- wrk: POST an AI request as one of 1000 users, with a fixed seed so every
-- run sends the same sequence.  BODY_FILE and PATH come from the env.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
local path = os.getenv("BENCH_PATH")

math.randomseed(42)

request = function()
  local user = "user" .. math.random(1, 1000)
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["X-User"] = user,
    ["X-Team"] = "team" .. (tonumber(user:sub(5)) % 20),
  }, body)
end

-- PACE_MS: each connection waits this long after each answer, so that a
-- run offers about conns * 1000 / PACE_MS requests a second to both
-- sides alike (wrk has no open-loop fixed rate)
local pace = tonumber(os.getenv("PACE_MS") or "")
if pace then
  delay = function()
    return pace
  end
end
