#!/usr/bin/env bash
# The fault suite: a five-node cluster in network namespaces under load, one fault scenario after
# another, each followed by a history check (tests/faults/check.py). Needs root.
#
# Usage: scripts/faults.sh [SCENARIO...]     (default: all, in this order)
#
#   kill            kill -9 a node and restart it, every ~15 s, three different nodes
#   isolate         isolate node-3 for 30 s and heal; then node-4 and node-5 together for 30 s
#   lossdelay       10 % packet loss + 100 ms delay on node-2 for 30 s: no node may be declared dead
#   pause           SIGSTOP node-4 for 5 s, then SIGCONT
#   rolling         rolling restart with SIGTERM, one node at a time, each back and rejoined first
#   skew            node-3's clock 2 s behind (libfaketime), writes through every coordinator
#   partition-skew  measurement: cut the skewed node-3 off from the other servers (the client still
#                   reaches it) while writes go on on both sides; heal; count acknowledged writes
#                   that lost to an earlier write (the price of staying writable); never fails
#
# Layout: hosts ${FAULTS_PREFIX:-hcf}1..5 (10.77.0.1..5) run node-1..node-5 on the default ports
# (API :8080, management :8081, dist :7946); host 6 (10.77.0.6) runs the load generator and the
# checker, so isolating a server host does not cut the client off the other servers. All traffic
# stays inside these namespaces (scripts/netns.sh blackholes the subnet in the root namespace).
#
# Environment: HYPERCACHE_BIN (default target/release/hypercache-server, built with cargo if
# missing), FAULTS_DIR (logs, histories, results; default target/faults), FAULTS_PREFIX (namespace
# prefix, default hcf), FAULTS_RATE (load, ops/s over all threads; default 850, 60 % writes).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

ALL_SCENARIOS=(kill isolate lossdelay pause rolling skew partition-skew)
BIN=${HYPERCACHE_BIN:-target/release/hypercache-server}
OUT=${FAULTS_DIR:-$ROOT/target/faults}
export HC_PREFIX=${FAULTS_PREFIX:-hcf} HC_SUBNET=10.77.0
export HC_STATE=/tmp/netns-cluster-$HC_PREFIX
NETNS=$ROOT/scripts/netns.sh
FDIR=$ROOT/tests/faults
N=5            # server hosts 1..N
CLIENT=6       # the client host
TOKEN=faults-token
SKEW_NODE=3
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
RATE=${FAULTS_RATE:-850}

# Timers. HEARTBEAT 1 s (direct probe timeout 500 ms) and suspicion 4 x T: a 100 ms delay plus 10 %
# loss (a lost segment costs a >= 200 ms retransmission) must never add up to a dead verdict, while
# a killed node is still dead within 2T + S + G = 6.5 s. Gossip 500 ms and anti-entropy 2 s keep
# the convergence bound of cluster.md §13 invariant 7 (3G + 4I + 5 s = 14.5 s) short. Hints live
# 60 s so that a node isolated for 30 s still gets them; tombstones (10 m) outlive the hints.
GOSSIP_MS=500
AE_MS=2000
TIMERS=(
	HYPERCACHE_HEARTBEAT=1s
	HYPERCACHE_SUSPICION_MULT=4
	HYPERCACHE_GOSSIP_INTERVAL=${GOSSIP_MS}ms
	HYPERCACHE_ANTI_ENTROPY_INTERVAL=${AE_MS}ms
	HYPERCACHE_HINT_REPLAY=100ms
	HYPERCACHE_HINT_TTL=60s
	HYPERCACHE_TOMBSTONE_TTL=10m
	HYPERCACHE_REBALANCE_INTERVAL=100ms
	HYPERCACHE_SHUTDOWN_TIMEOUT=20s
)

log() { printf '%s faults: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { log "$*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites
[[ $(id -u) == 0 ]] || die "needs root (network namespaces, nftables)"
for s in "$@"; do
	[[ " ${ALL_SCENARIOS[*]} " == *" $s "* ]] || die "unknown scenario '$s' (known: ${ALL_SCENARIOS[*]})"
done
if (($#)); then SCENARIOS=("$@"); else SCENARIOS=("${ALL_SCENARIOS[@]}"); fi

apt_install() { # quietly, and refresh the package lists only if the first try fails
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}
pkgs=()
command -v ip >/dev/null || pkgs+=(iproute2)
command -v nft >/dev/null || pkgs+=(nftables)
command -v iptables >/dev/null || pkgs+=(iptables)
[[ -f $FAKETIME_LIB ]] || pkgs+=(faketime)
if ((${#pkgs[@]})); then log "installing ${pkgs[*]}"; apt_install "${pkgs[@]}" || die "apt-get install ${pkgs[*]} failed"; fi
PY=$(command -v python3) || die "python3 is needed"

if [[ ! -x $BIN ]]; then
	[[ -z ${HYPERCACHE_BIN:-} ]] || die "HYPERCACHE_BIN=$HYPERCACHE_BIN is not an executable"
	log "building $BIN (cargo build --release)"
	cargo build --release --bin hypercache-server
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# ---------------------------------------------------------------- cluster control
CLUSTER_ARGS=(--subnet "$HC_SUBNET" --nodes "$N" --token "$TOKEN")
in_client() { "$NETNS" exec "$CLIENT" "$PY" "$@"; }
ctl() { in_client "$FDIR/ctl.py" "${CLUSTER_ARGS[@]}" "$@"; }
LOGS=$OUT/logs
PIDS=$OUT/pids
LOAD_PID=""

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[[ -z $LOAD_PID ]] || kill "$LOAD_PID" 2>/dev/null || true
	# a SIGSTOPped node would ignore the TERM of netns.sh down until its KILL
	for f in "$PIDS"/node-*.pid; do [[ -f $f ]] && kill -CONT "$(<"$f")" 2>/dev/null || true; done
	"$NETNS" down >/dev/null 2>&1 || true
	exit "$rc"
}

node_pid() { cat "$PIDS/node-$1.pid" 2>/dev/null || true; }
alive() { local p; p=$(node_pid "$1"); [[ -n $p ]] && kill -0 "$p" 2>/dev/null; }

start_node() { # start_node N [skew]: node-N in host N, in the background; no wait
	local n=$1 skew=${2:-} j seeds=() env=(PATH=/usr/bin:/bin RUST_BACKTRACE=1) cpus pid
	for ((j = 1; j <= N; j++)); do ((j == n)) || seeds+=("node-$j@$HC_SUBNET.$j:7946"); done
	read -r -a cpus <<<"$(allowed_cpus)"
	env+=(
		HYPERCACHE_NODE_ID=node-$n
		HYPERCACHE_DIST_ADVERTISE=$HC_SUBNET.$n:7946
		"HYPERCACHE_SEEDS=$(IFS=,; echo "${seeds[*]}")"
		HYPERCACHE_AUTH_TOKEN=$TOKEN
		HYPERCACHE_REPLICATION=3
		HYPERCACHE_WRITE_CONSISTENCY=quorum
		HYPERCACHE_CORES=1
		# one data core per node, pinned round-robin over our CPUs (the control core shares it)
		HYPERCACHE_CPU_SET=${cpus[$(((n - 1) % ${#cpus[@]}))]}
		"${TIMERS[@]}"
	)
	if [[ $skew == skew ]]; then
		# libfaketime shifts CLOCK_REALTIME only (not the monotonic clock the timers use)
		env+=(LD_PRELOAD=$FAKETIME_LIB FAKETIME=-2s FAKETIME_DONT_FAKE_MONOTONIC=1)
	fi
	echo "=== $(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) faults.sh start node-$n ${skew:+(clock -2s)}" >>"$LOGS/node-$n.log"
	pid=$("$NETNS" spawn "$n" "$LOGS/node-$n.log" env -i "${env[@]}" "$BIN")
	echo "$pid" >"$PIDS/node-$n.pid"
	echo "${skew:-normal}" >"$PIDS/node-$n.clock"
}

allowed_cpus() {
	local list part a b out=()
	list=$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status)
	IFS=, read -r -a parts <<<"$list"
	for part in "${parts[@]}"; do
		a=${part%-*} b=${part#*-}
		for ((c = a; c <= b; c++)); do out+=("$c"); done
	done
	echo "${out[@]}"
}

wait_gone() { # wait_gone N TIMEOUT
	local pid deadline=$((SECONDS + $2))
	pid=$(node_pid "$1")
	while kill -0 "$pid" 2>/dev/null; do
		((SECONDS < deadline)) || { log "node-$1 (pid $pid) still running ${2}s after the signal"; return 1; }
		sleep 0.05
	done
}

stop_node() { # stop_node N SIGNAL: signal node-N and wait until it has exited
	local pid
	pid=$(node_pid "$1")
	kill "-$2" "$pid"
	wait_gone "$1" 40
}

ready() { ctl wait-ready --deadline 30 "${@/#/node-}" >/dev/null || { tail_logs "$@"; return 1; }; }
rejoined() { ctl wait-members --deadline "${1:-30}" || { tail_logs $(seq 1 $N); return 1; }; }
tail_logs() { local n; for n in "$@"; do echo "---- tail of $LOGS/node-$n.log"; tail -n 20 "$LOGS/node-$n.log"; done; }

restart_node() { # restart_node N [skew]: start it and wait until healthy and rejoined everywhere
	start_node "$@"
	ready "$1"
	rejoined
}

# The clock a scenario wants on SKEW_NODE: restart it (gracefully) when it differs.
want_clock() {
	local cur
	cur=$(cat "$PIDS/node-$SKEW_NODE.clock" 2>/dev/null || echo normal)
	[[ $cur == "$1" ]] && return 0
	log "restarting node-$SKEW_NODE with clock: $1"
	stop_node "$SKEW_NODE" TERM
	local off
	off=$(stat -c %s "$LOGS/node-$SKEW_NODE.log")
	if [[ $1 == skew ]]; then start_node "$SKEW_NODE" skew; else start_node "$SKEW_NODE"; fi
	ready "$SKEW_NODE"
	local ms
	ms=$(ctl logclock --log "$LOGS/node-$SKEW_NODE.log" --offset "$off")
	log "node-$SKEW_NODE wall clock (start-line timestamp vs ours): ${ms} ms"
	if [[ $1 == skew ]] && ((ms > -1500 || ms < -2500)); then die "libfaketime did not shift node-$SKEW_NODE's clock by -2 s (${ms} ms)"; fi
	rejoined
}

# ---------------------------------------------------------------- load
start_load() { # start_load NAME [DURATION]
	rm -f "$SDIR/stop"
	in_client "$FDIR/load.py" "${CLUSTER_ARGS[@]}" --prefix "$1" --rate "$RATE" \
		--duration "${2:-180}" --stop-file "$SDIR/stop" --out "$SDIR/history.jsonl" >"$SDIR/load.out" 2>&1 &
	LOAD_PID=$!
}
stop_load() {
	touch "$SDIR/stop"
	wait "$LOAD_PID" || { LOAD_PID=""; cat "$SDIR/load.out"; return 1; }
	LOAD_PID=""
	sed 's/^/   /' "$SDIR/load.out"
}

# ---------------------------------------------------------------- scenarios
# Each body runs with the load already going; it sets CUT (node pairs whose link it cut, for the
# dead-verdict check), CHECK_FLAGS and T_HEAL, and stops the load (stop_load) when done.

T_HEAL=0
heal_now() { T_HEAL=$(date +%s.%N); }

sc_kill() {
	CUT="2-*,4-*,1-*"
	sleep 5
	local n t
	for n in 2 4 1; do
		t=$SECONDS
		log "kill -9 node-$n"
		stop_node "$n" KILL
		sleep 7 # hold the crash past 2T + S + G so that peers declare it dead and rebalance
		log "restart node-$n"
		restart_node "$n"
		heal_now
		# next round ~15 s after this one started
		while ((SECONDS - t < 15)); do sleep 0.2; done
	done
	sleep 3
	stop_load
}

sc_isolate() {
	CUT="3-*,4-*,5-*"
	sleep 3
	log "isolate node-3 for 30 s"
	"$NETNS" isolate 3
	sleep 30
	"$NETNS" rejoin 3
	log "healed node-3"
	rejoined 40
	log "isolate node-4 and node-5 for 30 s"
	"$NETNS" isolate 4
	"$NETNS" isolate 5
	sleep 30
	"$NETNS" rejoin 4
	"$NETNS" rejoin 5
	heal_now
	log "healed node-4 and node-5"
	rejoined 40
	sleep 3
	stop_load
}

sc_lossdelay() {
	CUT=""
	CHECK_FLAGS=(--no-dead)
	sleep 3
	log "node-2: 10 % loss + 100 ms delay for 30 s"
	"$NETNS" loss 2 10
	"$NETNS" delay 2 100
	sleep 30
	"$NETNS" loss 2 0
	"$NETNS" delay 2 0
	heal_now
	log "node-2: loss and delay off"
	sleep 3
	stop_load
}

sc_pause() {
	CUT="4-*"
	sleep 3
	log "SIGSTOP node-4 for 5 s"
	kill -STOP "$(node_pid 4)"
	sleep 5
	kill -CONT "$(node_pid 4)"
	heal_now
	log "SIGCONT node-4"
	rejoined
	sleep 3
	stop_load
}

sc_rolling() {
	CUT=""
	CHECK_FLAGS=(--no-dead)
	sleep 2
	local n
	for n in $(seq 1 $N); do
		log "SIGTERM node-$n"
		stop_node "$n" TERM
		restart_node "$n"
	done
	heal_now
	sleep 3
	stop_load
}

sc_skew() {
	CUT=""
	CHECK_FLAGS=(--no-dead)
	ctl skew "node-$SKEW_NODE" || true
	sleep 25
	ctl skew "node-$SKEW_NODE" || true
	stop_load
}

sc_partition-skew() {
	CUT="$SKEW_NODE-*"
	CHECK_FLAGS=(--measure)
	local j
	sleep 3
	log "cut node-$SKEW_NODE (clock -2 s) off from the other servers for 25 s; the client reaches both sides"
	for ((j = 1; j <= N; j++)); do ((j == SKEW_NODE)) || "$NETNS" partition "$SKEW_NODE" "$j"; done
	sleep 25
	# Stop the writes before the heal: a write after the heal would overwrite what we measure.
	stop_load
	for ((j = 1; j <= N; j++)); do ((j == SKEW_NODE)) || "$NETNS" heal "$SKEW_NODE" "$j"; done
	heal_now
	log "healed"
	rejoined 40
}

run_scenario() {
	local name=$1 t0=$SECONDS rc=0 n crashed=()
	SDIR=$OUT/$name
	rm -rf "$SDIR"
	mkdir -p "$SDIR"
	CUT="" CHECK_FLAGS=() T_HEAL=0
	log "==== scenario $name"
	case $name in
	skew | partition-skew) want_clock skew ;;
	*) want_clock normal ;;
	esac
	rejoined
	ctl snapshot --out "$SDIR/before.json" --logs "$LOGS"
	start_load "$name"
	"sc_$name"
	# A node that exited although the scenario did not stop it has crashed.
	for n in $(seq 1 $N); do
		if ! alive "$n"; then
			crashed+=("node-$n")
			echo "   VIOLATION crash: node-$n (pid $(node_pid "$n")) is not running"
			tail_logs "$n"
			start_node "$n" "$(sed 's/normal//' "$PIDS/node-$n.clock")" # for the next scenarios
		fi
	done
	((${#crashed[@]} == 0)) || { ready $(seq 1 $N) && rejoined; } || true
	in_client "$FDIR/check.py" "${CLUSTER_ARGS[@]}" --scenario "$name" --history "$SDIR/history.jsonl" \
		--before "$SDIR/before.json" --logs "$LOGS" --cut "$CUT" --gossip-ms "$GOSSIP_MS" --ae-ms "$AE_MS" \
		--t-heal "$T_HEAL" --out "$SDIR/result.json" "${CHECK_FLAGS[@]+"${CHECK_FLAGS[@]}"}" || rc=1
	((${#crashed[@]} == 0)) || rc=1
	echo "$((SECONDS - t0))" >"$SDIR/seconds"
	echo "$rc" >"$SDIR/rc"
	log "==== scenario $name: $([[ $rc == 0 ]] && echo PASS || echo FAIL) in $((SECONDS - t0)) s"
	return 0
}

# ---------------------------------------------------------------- main
T_START=$SECONDS
trap cleanup EXIT INT TERM
"$NETNS" down >/dev/null 2>&1 || true # leftovers of an interrupted run
mkdir -p "$OUT"
rm -rf "$LOGS" "$PIDS"
mkdir -p "$LOGS" "$PIDS"
"$NETNS" up $((N + 1)) >/dev/null
log "hosts up; starting node-1..node-$N ($BIN)"
for n in $(seq 1 $N); do start_node "$n"; done
ready $(seq 1 $N)
rejoined
for s in "${SCENARIOS[@]}"; do run_scenario "$s"; done

# Summary table, from each scenario's result.json
"$PY" - "$OUT" "${SCENARIOS[@]}" <<'EOF'
import json, os, sys
out, names = sys.argv[1], sys.argv[2:]
print("\n%-15s %-5s %5s %7s %8s %6s %5s %6s %7s %s" % ("scenario", "", "time", "writes", "acked", "w/s", "lost", "resur", "conv_s", "notes"))
for n in names:
    d = os.path.join(out, n)
    try:
        r = json.load(open(os.path.join(d, "result.json")))
    except OSError:
        r = {}
    rc = open(os.path.join(d, "rc")).read().strip() if os.path.exists(os.path.join(d, "rc")) else "1"
    secs = open(os.path.join(d, "seconds")).read().strip() if os.path.exists(os.path.join(d, "seconds")) else "?"
    note = "MEASURED lost+resurrected=%d" % (r.get("lost", 0) + r.get("resurrected", 0)) if n == "partition-skew" else ""
    print("%-15s %-5s %4ss %7s %8s %6s %5s %6s %7s %s" % (n, "PASS" if rc == "0" else "FAIL", secs, r.get("puts", "-"),
          r.get("puts_acked", "-"), r.get("writes_per_s", "-"), r.get("lost", "-"), r.get("resurrected", "-"),
          r.get("convergence_s", "-"), note))
EOF
failed=()
for s in "${SCENARIOS[@]}"; do [[ $(cat "$OUT/$s/rc" 2>/dev/null) == 0 ]] || failed+=("$s"); done
log "suite took $((SECONDS - T_START)) s; logs, histories and results in $OUT"
echo "faults: $((${#SCENARIOS[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
((${#failed[@]} == 0)) || die "failed: ${failed[*]}"
