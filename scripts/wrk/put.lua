-- PUT /v1/cache/key-<n> with a VALUE_SIZE-byte body, n uniform over the key space.
--
--   wrk -t1 -c64 -d10s -s scripts/wrk/put.lua http://127.0.0.1:8080
--
-- Environment:
--   KEYS        key space: key-0 .. key-(KEYS-1)      (default 100000)
--   VALUE_SIZE  bytes per value                       (default 100)
--   TOKEN       bearer token, sent as "Authorization: Bearer <TOKEN>" when set
--   TTL         optional ttl query value, e.g. 5m     (default: no expiry)
--   SEED        base random seed for reproducible runs (default: current time)
--
-- Lua 5.1 / LuaJIT. One Lua state per wrk thread: setup() hands each thread its own index so the
-- threads draw different key sequences.

local keys = tonumber(os.getenv("KEYS") or "") or 100000
local value_size = tonumber(os.getenv("VALUE_SIZE") or "") or 100
local token = os.getenv("TOKEN")
local ttl = os.getenv("TTL")

-- The body never changes, so build it once instead of per request.
local body = string.rep("x", value_size)
local suffix = ""
if ttl and ttl ~= "" then
  suffix = "?ttl=" .. ttl
end

local headers = { ["Content-Type"] = "application/octet-stream" }
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
  local path = "/v1/cache/key-" .. (math.random(keys) - 1) .. suffix
  return wrk.format("PUT", path, headers, body)
end
