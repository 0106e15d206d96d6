#!/usr/bin/env bash
# Loads key-0 .. key-(KEYS-1) into a node with POST /v1/cache/batch/put, so the GET, mixed and batch
# wrk scripts hit. Values are VALUE_SIZE bytes of "x" (no expiry).
#
#   scripts/wrk/preload.sh http://127.0.0.1:8080
#   KEYS=1000000 VALUE_SIZE=512 TOKEN=dev-token scripts/wrk/preload.sh http://127.0.0.1:8080
#
# Environment:
#   KEYS        key space                                   (default 100000)
#   VALUE_SIZE  bytes per value                             (default 100)
#   TOKEN       bearer token, sent as "Authorization: Bearer <TOKEN>" when set
#   BATCH       items per request                           (default 1000, the default
#               HYPERCACHE_MAX_BATCH; lowered automatically so a body stays under 3.5 MB,
#               below the default 4 MiB HYPERCACHE_MAX_BODY)
#   PARALLEL    concurrent requests                         (default 4)
#
# Speed: python3 writes every request body and a curl config up front; one curl process then sends
# them all over keep-alive connections (100k keys in a few seconds). Exits non-zero if any request
# failed or any item was not stored.
set -euo pipefail

url="${1:?usage: $0 URL (e.g. http://127.0.0.1:8080)}"
url="${url%/}"
keys="${KEYS:-100000}"
value_size="${VALUE_SIZE:-100}"
batch="${BATCH:-1000}"
parallel="${PARALLEL:-4}"

# Fail fast with one message instead of one curl error per batch when nothing listens
# (/healthz needs no token).
curl --no-progress-meter --show-error --fail -o /dev/null "$url/healthz"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Bodies and the curl config (one block per request, separated by "next"). The token goes into the
# config file, not the command line, so it does not show up in `ps`.
python3 - "$tmp" "$url" "$keys" "$value_size" "$batch" "${TOKEN:-}" <<'PY'
import os, sys
tmp, url, keys, value_size, batch, token = sys.argv[1:7]
keys, value_size, batch = int(keys), int(value_size), int(batch)
# ~40 bytes of JSON framing per item besides the value.
batch = max(1, min(batch, 3_500_000 // (value_size + 40)))
value = "x" * value_size
with open(os.path.join(tmp, "curl.cfg"), "w") as cfg:
    for n, start in enumerate(range(0, keys, batch)):
        items = ",".join(
            '{"key":"key-%d","value":"%s"}' % (k, value)
            for k in range(start, min(start + batch, keys))
        )
        path = os.path.join(tmp, "body-%d.json" % n)
        with open(path, "w") as f:
            f.write('{"items":[' + items + "]}")
        if n:
            cfg.write("next\n")
        cfg.write('url = "%s/v1/cache/batch/put"\n' % url)
        cfg.write('data-binary = "@%s"\n' % path)
        cfg.write('header = "Content-Type: application/json"\n')
        if token:
            cfg.write('header = "Authorization: Bearer %s"\n' % token)
        cfg.write('output = "%s"\n' % os.path.join(tmp, "resp-%d.json" % n))
        cfg.write('write-out = "%{http_code}\\n"\n')
PY

start=$(date +%s.%N)
# --no-progress-meter, not --silent: curl 7.88 still draws the parallel progress meter with -s.
curl --no-progress-meter --show-error --parallel --parallel-max "$parallel" -K "$tmp/curl.cfg" >"$tmp/codes"
end=$(date +%s.%N)

requests=$(wc -l <"$tmp/codes")
bad_status=$(grep -vc '^200$' "$tmp/codes" || true)
# A 200 batch can still carry per-item failures (QUORUM_FAILED, NO_OWNERS, ...).
not_stored=$(cat "$tmp"/resp-*.json | grep -o '"stored":false' | wc -l || true)
printf 'preloaded %s keys of %s bytes in %s requests, %.2fs\n' \
  "$keys" "$value_size" "$requests" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')"
if [ "$bad_status" -ne 0 ] || [ "$not_stored" -ne 0 ]; then
  echo "preload failed: $bad_status non-200 responses, $not_stored items not stored" >&2
  grep -h -m1 -o '"error":"[^"]*"' "$tmp"/resp-*.json 2>/dev/null | sort | uniq -c >&2 || true
  exit 1
fi
