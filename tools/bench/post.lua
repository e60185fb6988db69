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
