#!/usr/bin/env bash
# Does HYPERCACHE_MAX_MEMORY bound the real RSS, and does it stay bounded over time?
#
#   scripts/bench/rss_bound.sh               # 256 MiB cap, 180 s of churn (about 10 M writes)
#   DURATION=600 CAP_MIB=512 scripts/bench/rss_bound.sh
#
# One data core (CPU 1), wrk on CPU 0 with scripts/wrk/churn.lua: 80 % PUTs of 16 B - 4 KiB
# values (overwrites change sizes), 10 % DELETEs, 10 % GETs over 4 M keys. RSS is sampled every
# 2 s. Prints the start-up footprint, the peak, the peak of the first and of the last minute
# (growth between them would be fragmentation), writes and evictions, and a verdict:
# peak <= footprint + 1.1 x cap. Exits 1 when the verdict fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
CAP_MIB="${CAP_MIB:-256}"
DURATION="${DURATION:-180}"
command -v wrk >/dev/null || { echo "rss_bound: needs wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet
bin=target/release/hypercache-server
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api=$(free_port); mgmt=$(free_port); dist=$(free_port)
log=$(mktemp)
HYPERCACHE_API_ADDR="127.0.0.1:$api" HYPERCACHE_MGMT_ADDR="127.0.0.1:$mgmt" \
  HYPERCACHE_DIST_ADDR="127.0.0.1:$dist" HYPERCACHE_CORES=1 HYPERCACHE_CPU_SET=1 \
  HYPERCACHE_MAX_MEMORY="${CAP_MIB}MiB" HYPERCACHE_CAPACITY=100000000 \
  "$bin" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 200); do
  curl -sf "http://127.0.0.1:$mgmt/health" >/dev/null && break
  sleep 0.05
done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
foot=$(rss)
samples=$(mktemp)
( while kill -0 $pid 2>/dev/null; do echo "$(date +%s) $(rss)" >>"$samples"; sleep 2; done ) &
sampler=$!
taskset -c 0 wrk -t1 -c32 -d"${DURATION}s" -s scripts/wrk/churn.lua "http://127.0.0.1:$api" |
  grep -E "Requests/sec|requests in"
kill $sampler 2>/dev/null || true
stats=$(curl -sf "http://127.0.0.1:$mgmt/stats")
python3 - "$samples" "$foot" "$CAP_MIB" "$stats" <<'PY'
import json, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 2]
foot, cap = int(sys.argv[2]), int(sys.argv[3]) * 1024
st = json.loads(sys.argv[4])
t0 = rows[0][0]
first = max(r for t, r in rows if t - t0 < 60)
last = max(r for t, r in rows if t - rows[-1][0] > -60)
peak = max(r for _, r in rows)
limit = foot + cap * 1.1
print(f"footprint {foot/1024:.1f} MiB, cap {cap/1024:.0f} MiB, peak RSS {peak/1024:.1f} MiB "
      f"({(peak - foot) / cap:.3f} x cap above the footprint)")
print(f"peak of the first minute {first/1024:.1f} MiB, of the last minute {last/1024:.1f} MiB")
print(f"held: {st['items']} items, {st['bytes'] if 'bytes' in st else '?'} accounted bytes; "
      f"sets {st.get('sets')}, evictions {st.get('evictions')}")
ok = peak <= limit
print(f"verdict: peak <= footprint + 1.1 x cap: {'yes' if ok else 'NO'}")
sys.exit(0 if ok else 1)
PY
