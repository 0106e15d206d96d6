#!/usr/bin/env bash
# One command for the comparison benchmark (PERFORMANCE.md): installs or finds the peers, builds
# the release binary, then runs scripts/bench/compare.py, which prints one table (median of 3
# rounds) with the ratios ours/peer.
#
#   scripts/bench/compare.sh              # ~8 min on a quiet 2-CPU machine, plus the waits
#   scripts/bench/compare.sh --write      # also writes the table into PERFORMANCE.md
#   scripts/bench/compare.sh --rounds 1 --duration 5 --no-memory --no-idle   # quick look
#   scripts/bench/compare.sh --only-tls --no-memory --no-idle   # TLS rows only (GET over TLS 1.3 vs nginx)
#
# Peers: Debian packages redis-server (+ redis-tools: redis-benchmark, redis-cli), nginx-light,
# memcached (memory row), wrk. The fixed-rate latency row uses benches/fixed_rate.rs (built here; no oha/wrk2 needed: on
# this kind of machine oha's own p99 was ~1.3 ms at 20k req/s against nginx, see PERFORMANCE.md).
# Set BENCH_NO_INSTALL=1 to only use what is on PATH.
# Before measuring, it waits (up to 20 min) until the 1-minute load is below 0.7.
#
# Layout: server on CPU 1 (HYPERCACHE_CORES=1 HYPERCACHE_CPU_SET=1; Redis and nginx under
# taskset -c 1), load generator on CPU 0, 64 keep-alive connections, 100-byte values, 100 000
# preloaded keys drawn uniformly (scripts/wrk/*.lua).
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
command -v nginx >/dev/null || need+=(nginx-light)
command -v memcached >/dev/null || need+=(memcached)
command -v taskset >/dev/null || need+=(util-linux)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  if [ -n "${BENCH_NO_INSTALL:-}" ]; then
    echo "compare: missing ${need[*]} (BENCH_NO_INSTALL is set)" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "compare: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet
# Path of a benches/ binary, built without running it.
bench_bin() {
  cargo bench --no-run --bench "$1" --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$1"
}
# The fixed-rate, coordinated-omission-corrected load generator (benches/fixed_rate.rs).
FIXED_RATE_BIN="$(bench_bin fixed_rate)"
export FIXED_RATE_BIN
# The hit-ratio bench (benches/hit_ratio.rs): ours against an exact LRU of the same budget.
HIT_RATIO_BIN="$(bench_bin hit_ratio)"
export HIT_RATIO_BIN
exec python3 scripts/bench/compare.py "$@"
