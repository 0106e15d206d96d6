-- 90% GET / 10% PUT on /v1/cache/key-<n>, n uniform over the key space. Run
-- scripts/wrk/preload.sh first so the GETs hit.
--
--   scripts/wrk/preload.sh http://127.0.0.1:8080
--   wrk -t1 -c64 -d10s -s scripts/wrk/mixed.lua http://127.0.0.1:8080
--
-- Environment:
--   KEYS        key space: key-0 .. key-(KEYS-1)      (default 100000; same value as the preload)
--   VALUE_SIZE  bytes per PUT value                   (default 100)
--   TOKEN       bearer token, sent as "Authorization: Bearer <TOKEN>" when set
--   PUT_PCT     percentage of PUTs                    (default 10)
--   SEED        base random seed for reproducible runs (default: current time)
--
-- Lua 5.1 / LuaJIT. One Lua state per wrk thread: setup() hands each thread its own index so the
-- threads draw different sequences.

local keys = tonumber(os.getenv("KEYS") or "") or 100000
local value_size = tonumber(os.getenv("VALUE_SIZE") or "") or 100
local put_pct = tonumber(os.getenv("PUT_PCT") or "") or 10
local token = os.getenv("TOKEN")

local body = string.rep("x", value_size)

-- Separate tables: wrk.format sets Content-Length on the table it is given.
local get_headers = {}
local put_headers = { ["Content-Type"] = "application/octet-stream" }
if token and token ~= "" then
  get_headers["Authorization"] = "Bearer " .. token
  put_headers["Authorization"] = "Bearer " .. token
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

function request()
  local path = "/v1/cache/key-" .. (math.random(keys) - 1)
  if math.random(100) <= put_pct then
    return wrk.format("PUT", path, put_headers, body)
  end
  return wrk.format("GET", path, get_headers)
end
