-- Memory churn for scripts/bench/rss_bound.sh: PUTs of mixed sizes (overwrites with other
-- sizes), DELETEs and GETs over a key space larger than the memory cap holds.
--
--   wrk -t1 -c32 -d180s -s scripts/wrk/churn.lua http://127.0.0.1:8080
--
-- Environment:
--   KEYS   key space: churn-0 .. churn-(KEYS-1)          (default 4000000)
--   SEED   base random seed                              (default: current time)
--
-- Mix: 80 % PUT, 10 % DELETE, 10 % GET. Value sizes are log-uniform from 16 B to 4 KiB, so
-- an overwrite almost always changes the size of what a key holds.

local keys = tonumber(os.getenv("KEYS") or "") or 4000000
local seed = tonumber(os.getenv("SEED") or "") or os.time()
local bodies = {}
for i = 4, 12 do
  bodies[#bodies + 1] = string.rep("x", 2 ^ i)
  bodies[#bodies + 1] = string.rep("y", math.floor(2 ^ (i + 0.5)))
end
local headers = { ["Content-Type"] = "application/octet-stream" }

local thread_no = 0
function setup(thread)
  thread:set("id", thread_no)
  thread_no = thread_no + 1
end

function init(args)
  math.randomseed(seed + 7919 * (id or 0))
end

function request()
  local path = "/v1/cache/churn-" .. math.random(0, keys - 1)
  local r = math.random()
  if r < 0.8 then
    -- a little extra so sizes are not only the table's
    local b = bodies[math.random(#bodies)]
    return wrk.format("PUT", path, headers, b .. string.rep("z", math.random(0, 15)))
  elseif r < 0.9 then
    return wrk.format("DELETE", path)
  end
  return wrk.format("GET", path)
end
