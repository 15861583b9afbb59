-- wrk script for the runner benchmarks: POSTs the bytes of one file as a JSON body, the same request every time.
--   wrk -t2 -c16 -d10s --latency -s tests/bench/post.lua -H "Authorization: Bearer T" URL -- BODY_FILE
-- (or WRK_BODY_FILE=BODY_FILE in the environment). The request is formatted once per thread, in init().
local function slurp(path)
  local f = assert(io.open(path, "rb"), "post.lua: cannot open " .. tostring(path))
  local s = f:read("*a")
  f:close()
  return s
end

local req

function init(args)
  local path = args[1] or os.getenv("WRK_BODY_FILE")
  assert(path, "post.lua: give the body file after -- or in WRK_BODY_FILE")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = slurp(path)
  req = wrk.format()
end

function request()
  return req
end
