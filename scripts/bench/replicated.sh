#!/usr/bin/env bash
# Replicated PUT against single-node PUT, in one run (issue 7's measure; PERFORMANCE.md).
#
#   A: one RF 1 node, one data core pinned to CPU 1 (HYPERCACHE_CORES=1 HYPERCACHE_CPU_SET=1)
#   B: three nodes, RF 3, W quorum, one data core each (on CPU 1, 0 and 1), node-1 takes the load
#
# wrk runs on CPU 0: `wrk -t1 -c64 -d${DURATION}s -s scripts/wrk/put.lua`. Prints both rates and
# the ratio B/A. Loopback only; the ports are picked free by the kernel.
#
# Environment: HYPERCACHE_BIN (default target/release/hypercache-server), DURATION (s, default 10),
# ROUNDS (default 2: A B A B, the best of each is reported), CPUS (the three nodes' CPU lists,
# default "1 0 1"; e.g. CPUS="1 0 0" puts both replicas beside wrk).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${HYPERCACHE_BIN:-$ROOT/target/release/hypercache-server}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
TOKEN=bench-token
OUT=$(mktemp -d)
PIDS=()

command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }; }
[[ -x $BIN ]] || (cd "$ROOT" && cargo build --release --bin hypercache-server)

cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start ID CPU API MGMT DIST RF SEEDS: one node in the background; its pid goes to PIDS
start() {
	env -i PATH=/usr/bin:/bin HYPERCACHE_NODE_ID="$1" HYPERCACHE_CORES=1 HYPERCACHE_CPU_SET="$2" \
		HYPERCACHE_API_ADDR="127.0.0.1:$3" HYPERCACHE_MGMT_ADDR="127.0.0.1:$4" \
		HYPERCACHE_DIST_ADDR="127.0.0.1:$5" HYPERCACHE_DIST_ADVERTISE="127.0.0.1:$5" \
		HYPERCACHE_REPLICATION="$6" HYPERCACHE_WRITE_CONSISTENCY=quorum HYPERCACHE_SEEDS="$7" \
		HYPERCACHE_AUTH_TOKEN=$TOKEN HYPERCACHE_HEARTBEAT=1s HYPERCACHE_LOG_LEVEL=warn \
		"$BIN" >>"$OUT/$1.log" 2>&1 &
	PIDS+=($!)
}

# healthy PORT MEMBERS: wait until the node's ring has MEMBERS members
healthy() {
	local i
	local p
	for ((i = 0; i < 300; i++)); do
		for p in "${PIDS[@]}"; do
			kill -0 "$p" 2>/dev/null || { echo "a node exited during start-up" >&2; cat "$OUT"/*.log >&2; return 1; }
		done
		if curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/cluster/ring" 2>/dev/null |
			python3 -c "import json,sys; sys.exit(0 if len(set(v.split(':')[1] for v in json.load(sys.stdin)['vnodes'])) == $2 else 1)" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "node on management port $1 did not form a ring of $2" >&2
	cat "$OUT"/*.log >&2
	return 1
}

# attempt FN: runs FN (single or replicated) up to 3 times. A port that free_port found free can
# be taken by another process before the node binds it; a node that then cannot start fails the
# ring check, and the attempt is repeated with fresh ports instead of failing the measure.
attempt() {
	local n
	for n in 1 2 3; do
		if "$1"; then return 0; fi
		stop_all
		echo "replicated: $1 attempt $n of 3 failed (see the logs above)" >&2
	done
	echo "replicated: $1 failed 3 times" >&2
	exit 1
}

rate() { # rate API_PORT -> req/s of one wrk run
	TOKEN=$TOKEN taskset -c 0 wrk -t1 -c64 -d"${DURATION}s" -s "$ROOT/scripts/wrk/put.lua" \
		"http://127.0.0.1:$1" | awk '/Requests\/sec/ {print $2}'
}

stop_all() { cleanup; PIDS=(); }

single() {
	local a m d
	a=$(free_port) m=$(free_port) d=$(free_port)
	start node-1 1 "$a" "$m" "$d" 1 ""
	healthy "$m" 1 || return 1
	rate "$a"
	stop_all
}

replicated() {
	local a=() m=() d=() i seeds
	for i in 0 1 2; do a+=("$(free_port)") m+=("$(free_port)") d+=("$(free_port)"); done
	local cpus=(${CPUS:-1 0 1})
	for i in 0 1 2; do
		seeds=()
		for j in 0 1 2; do ((j == i)) || seeds+=("node-$((j + 1))@127.0.0.1:${d[$j]}"); done
		start "node-$((i + 1))" "${cpus[$i]}" "${a[$i]}" "${m[$i]}" "${d[$i]}" 3 "$(IFS=,; echo "${seeds[*]}")"
	done
	for i in 0 1 2; do healthy "${m[$i]}" 3 || return 1; done
	rate "${a[0]}"
	stop_all
}

best_a=0 best_b=0
for ((r = 1; r <= ROUNDS; r++)); do
	x=$(attempt single)
	y=$(attempt replicated)
	echo "round $r: RF 1 single node ${x} req/s, RF 3 quorum ${y} req/s"
	best_a=$(python3 -c "print(max($best_a, $x))")
	best_b=$(python3 -c "print(max($best_b, $y))")
done
python3 -c "print('best: RF 1 %.0f req/s, RF 3 W quorum %.0f req/s, ratio %.2f' % ($best_a, $best_b, $best_b / $best_a))"
