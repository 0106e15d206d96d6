-- Pipelined GETs: each write carries DEPTH requests for /v1/cache/key-<n>, n uniform over the key
-- space; wrk sends the next batch when all DEPTH responses of the previous one have arrived and
-- counts every response. Run scripts/wrk/preload.sh first so the GETs hit.
--
--   scripts/wrk/preload.sh http://127.0.0.1:8080
--   wrk -t1 -c64 -d10s -s scripts/wrk/pipeline.lua http://127.0.0.1:8080
--
-- Environment:
--   KEYS    key space: key-0 .. key-(KEYS-1)          (default 100000; same value as the preload)
--   DEPTH   requests per batch                        (default 16)
--   TOKEN   bearer token, sent as "Authorization: Bearer <TOKEN>" when set
--   SEED    base random seed for reproducible runs    (default: current time)
--
-- Lua 5.1 / LuaJIT. wrk learns the depth by parsing one request() result, so every call returns
-- exactly DEPTH requests.

local keys = tonumber(os.getenv("KEYS") or "") or 100000
local depth = tonumber(os.getenv("DEPTH") or "") or 16
local token = os.getenv("TOKEN")

local headers = {}
if token and token ~= "" then
  headers["Authorization"] = "Bearer " .. token
end

local next_thread = 0
function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_index", next_thread)
end

function init(args)
  local base = tonumber(os.getenv("SEED") or "") or os.time()
  math.randomseed(base * 1000 + (thread_index or 0))
end

local parts = {}

function request()
  for i = 1, depth do
    parts[i] = wrk.format("GET", "/v1/cache/key-" .. (math.random(keys) - 1), headers)
  end
  return table.concat(parts, "", 1, depth)
end
