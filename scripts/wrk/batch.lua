-- POST /v1/cache/batch/get with BATCH keys per request, each key-<n> uniform over the key space.
-- Run scripts/wrk/preload.sh first so the keys are found. wrk's Requests/sec counts batches;
-- multiply by BATCH for keys/s.
--
--   scripts/wrk/preload.sh http://127.0.0.1:8080
--   wrk -t1 -c64 -d10s -s scripts/wrk/batch.lua http://127.0.0.1:8080
--
-- Environment:
--   KEYS    key space: key-0 .. key-(KEYS-1)          (default 100000; same value as the preload)
--   BATCH   keys per request                          (default 16)
--   TOKEN   bearer token, sent as "Authorization: Bearer <TOKEN>" when set
--   SEED    base random seed for reproducible runs    (default: current time)
--
-- Lua 5.1 / LuaJIT. One Lua state per wrk thread: setup() hands each thread its own index so the
-- threads draw different key sequences.

local keys = tonumber(os.getenv("KEYS") or "") or 100000
local batch = tonumber(os.getenv("BATCH") or "") or 16
local token = os.getenv("TOKEN")

local headers = { ["Content-Type"] = "application/json" }
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

-- Reused across requests so building a body allocates only the final string.
local parts = {}

function request()
  for i = 1, batch do
    parts[i] = '"key-' .. (math.random(keys) - 1) .. '"'
  end
  local body = '{"keys":[' .. table.concat(parts, ",", 1, batch) .. "]}"
  return wrk.format("POST", "/v1/cache/batch/get", headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("keys/s: %.0f (%d keys per request)\n",
    summary.requests / (summary.duration / 1e6) * batch, batch))
end
