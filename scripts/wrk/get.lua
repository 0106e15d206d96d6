-- GET /v1/cache/key-<n>, n uniform over the key space. Run scripts/wrk/preload.sh first, or every
-- request is a 404 (wrk reports those as "Non-2xx or 3xx responses").
--
--   scripts/wrk/preload.sh http://127.0.0.1:8080
--   wrk -t1 -c64 -d10s -s scripts/wrk/get.lua http://127.0.0.1:8080
--
-- Environment:
--   KEYS    key space: key-0 .. key-(KEYS-1)          (default 100000; same value as the preload)
--   TOKEN   bearer token, sent as "Authorization: Bearer <TOKEN>" when set
--   SEED    base random seed for reproducible runs    (default: current time)
--
-- Lua 5.1 / LuaJIT. One Lua state per wrk thread: setup() hands each thread its own index so the
-- threads draw different key sequences.

local keys = tonumber(os.getenv("KEYS") or "") or 100000
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

function request()
  -- wrk.format mutates the table it gets (Host, Content-Length), so reuse one per request kind.
  return wrk.format("GET", "/v1/cache/key-" .. (math.random(keys) - 1), headers)
end
