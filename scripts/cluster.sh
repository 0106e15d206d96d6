#!/usr/bin/env bash
# A local five-node cluster without Docker, with the layout of docker-compose.cluster.yml.
#
# Usage: scripts/cluster.sh up | down | status | start N | stop N | kill N | env N
#
#   up       start every node that is not running, return when all five answer /healthz
#   down     SIGTERM every node and wait for them to exit (SIGKILL after CLUSTER_STOP_TIMEOUT); logs kept
#   status   one line per node: pid, running or not, health; exit 0 only if all five are healthy
#   start N  start node-N and wait for its /healthz
#   stop N   SIGTERM node-N (graceful drain and shutdown) and wait for it to exit
#   kill N   SIGKILL node-N (a crash) and wait for it to be gone
#   env N    print node-N's HYPERCACHE_* environment (used by tests/layout_agreement.rs)
#
# node-N: client API 127.0.0.1:808N, management 127.0.0.1:908N, dist 127.0.0.1:794N, token
# dev-token, replication 3, every other node as an id@addr seed. Logs and pid files are in
# .cluster/ (CLUSTER_DIR). The binary is target/release/hypercache-server (HYPERCACHE_BIN), built
# with cargo if missing. Other HYPERCACHE_* variables in the caller's environment (LOG_LEVEL,
# HEARTBEAT, ...) pass through to every node; the layout variables below always win.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# ---- The layout. Keep these lines regular: tests/layout_agreement.rs reads them and checks them
# ---- against docker-compose.cluster.yml.
#      id     client API      management      dist (also advertised)
NODES=(
	"node-1 127.0.0.1:8081 127.0.0.1:9081 127.0.0.1:7941"
	"node-2 127.0.0.1:8082 127.0.0.1:9082 127.0.0.1:7942"
	"node-3 127.0.0.1:8083 127.0.0.1:9083 127.0.0.1:7943"
	"node-4 127.0.0.1:8084 127.0.0.1:9084 127.0.0.1:7944"
	"node-5 127.0.0.1:8085 127.0.0.1:9085 127.0.0.1:7945"
)
AUTH_TOKEN=dev-token
REPLICATION=3
CORES=1
# ----

STATE=${CLUSTER_DIR:-$ROOT/.cluster}
BIN=${HYPERCACHE_BIN:-$ROOT/target/release/hypercache-server}
START_TIMEOUT=${CLUSTER_START_TIMEOUT:-30}  # seconds, for up/start
STOP_TIMEOUT=${CLUSTER_STOP_TIMEOUT:-40}    # seconds; the server's own deadline is 30 s (+1)

die() { echo "cluster: $*" >&2; exit 1; }
usage() { sed -n '3,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

field() { # field N COLUMN -> a column (1 id, 2 api, 3 mgmt, 4 dist) of node N's row
	local row
	read -r -a row <<<"${NODES[$(($1 - 1))]}"
	echo "${row[$(($2 - 1))]}"
}

check_n() {
	if ! [[ "${1:-}" =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > ${#NODES[@]})); then
		die "node number must be 1..${#NODES[@]}, got '${1:-}'"
	fi
}

# CPUs of our affinity mask, in order (e.g. "0 1"), to spread the nodes' pinned CPU over them.
allowed_cpus() {
	local list part a b out=()
	list=$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status 2>/dev/null || true)
	[[ -n "$list" ]] || { seq 0 $(($(nproc) - 1)); return; }
	IFS=, read -r -a parts <<<"$list"
	for part in "${parts[@]}"; do
		a=${part%-*} b=${part#*-}
		for ((c = a; c <= b; c++)); do out+=("$c"); done
	done
	echo "${out[@]}"
}

node_env() { # node_env N -> KEY=VALUE lines of node N's layout
	local n=$1 j seeds=()
	for ((j = 1; j <= ${#NODES[@]}; j++)); do
		((j == n)) || seeds+=("$(field "$j" 1)@$(field "$j" 4)")
	done
	echo "HYPERCACHE_NODE_ID=$(field "$n" 1)"
	echo "HYPERCACHE_API_ADDR=$(field "$n" 2)"
	echo "HYPERCACHE_MGMT_ADDR=$(field "$n" 3)"
	echo "HYPERCACHE_DIST_ADDR=$(field "$n" 4)"
	echo "HYPERCACHE_DIST_ADVERTISE=$(field "$n" 4)"
	echo "HYPERCACHE_SEEDS=$(IFS=,; echo "${seeds[*]}")"
	echo "HYPERCACHE_REPLICATION=$REPLICATION"
	echo "HYPERCACHE_AUTH_TOKEN=$AUTH_TOKEN"
	echo "HYPERCACHE_CORES=${HYPERCACHE_CORES:-$CORES}"
	# One data core per node, pinned round-robin over our CPUs (the control core shares it), unless
	# the caller chose CPUs or more cores.
	if [[ -n "${HYPERCACHE_CPU_SET:-}" ]]; then
		echo "HYPERCACHE_CPU_SET=$HYPERCACHE_CPU_SET"
	elif [[ "${HYPERCACHE_CORES:-$CORES}" == 1 ]]; then
		local cpus
		read -r -a cpus <<<"$(allowed_cpus)"
		echo "HYPERCACHE_CPU_SET=${cpus[$(((n - 1) % ${#cpus[@]}))]}"
	fi
}

pidfile() { echo "$STATE/$(field "$1" 1).pid"; }
logfile() { echo "$STATE/$(field "$1" 1).log"; }

# The pid of node N if it is running (and really is our server, not a reused pid), else nothing.
node_pid() {
	local f pid
	f=$(pidfile "$1")
	[[ -f "$f" ]] || return 0
	pid=$(<"$f")
	if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q hypercache-server; then
		echo "$pid"
	fi
}

healthy() { # healthy N -> exit 0 if GET /healthz on node N's client API answers 200
	local code
	code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$(field "$1" 2)/healthz" 2>/dev/null) || true
	[[ "$code" == 200 ]]
}

ensure_binary() {
	[[ -x "$BIN" ]] && return
	[[ -z "${HYPERCACHE_BIN:-}" ]] || die "HYPERCACHE_BIN=$HYPERCACHE_BIN is not an executable"
	echo "cluster: building $BIN (cargo build --release)" >&2
	(cd "$ROOT" && cargo build --release --bin hypercache-server) >&2
}

launch() { # launch N: start node N in its own session, detached; no wait
	local n=$1 env_lines
	[[ -z "$(node_pid "$n")" ]] || return 0
	mkdir -p "$STATE"
	rm -f "$(pidfile "$n")"
	mapfile -t env_lines < <(node_env "$n")
	echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) cluster.sh start $(field "$n" 1)" >>"$(logfile "$n")"
	# bash writes its own pid, then execs into the server: the pid file holds the server's pid
	# whether or not setsid had to fork. setsid: Ctrl-C on this script does not reach the nodes.
	# shellcheck disable=SC2016 # $$ and $1 belong to the inner bash
	setsid bash -c 'echo $$ >"$1"; shift; exec env "$@"' _ "$(pidfile "$n")" \
		"${env_lines[@]}" "$BIN" </dev/null >>"$(logfile "$n")" 2>&1 &
}

wait_ready() { # wait_ready N...: poll /healthz of each until 200; fail early if a node exits
	local deadline=$((SECONDS + START_TIMEOUT)) n pending=("$@") left
	while ((${#pending[@]})); do
		left=()
		for n in "${pending[@]}"; do
			if healthy "$n"; then
				continue
			fi
			if [[ -f "$(pidfile "$n")" && -z "$(node_pid "$n")" ]]; then
				echo "cluster: $(field "$n" 1) exited during start-up; end of $(logfile "$n"):" >&2
				tail -n 5 "$(logfile "$n")" >&2
				return 1
			fi
			left+=("$n")
		done
		pending=("${left[@]+"${left[@]}"}")
		((${#pending[@]})) || break
		if ((SECONDS >= deadline)); then
			echo "cluster: not healthy after ${START_TIMEOUT}s:$(for n in "${pending[@]}"; do printf ' %s' "$(field "$n" 1)"; done)" >&2
			return 1
		fi
		sleep 0.1
	done
}

wait_gone() { # wait_gone TIMEOUT PID...; on timeout print the pids still alive and fail
	local deadline=$((SECONDS + $1)) pid alive
	shift
	while :; do
		alive=()
		for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
		((${#alive[@]})) || return 0
		if ((SECONDS >= deadline)); then
			echo "${alive[*]}"
			return 1
		fi
		sleep 0.1
	done
}

# signal_nodes SIGNAL ESCALATE N...: signal the running ones and wait for them to exit; if some are
# still running after STOP_TIMEOUT, SIGKILL them when ESCALATE is 1, else fail.
signal_nodes() {
	local sig=$1 escalate=$2 n pid pids=() names=() left
	shift 2
	for n in "$@"; do
		pid=$(node_pid "$n")
		if [[ -z "$pid" ]]; then
			echo "cluster: $(field "$n" 1) is not running"
			rm -f "$(pidfile "$n")"
			continue
		fi
		kill "-$sig" "$pid"
		pids+=("$pid") names+=("$(field "$n" 1)")
	done
	((${#pids[@]})) || return 0
	if ! left=$(wait_gone "$STOP_TIMEOUT" "${pids[@]}"); then
		local stuck=()
		for n in "$@"; do
			pid=$(node_pid "$n")
			[[ -n "$pid" && " $left " == *" $pid "* ]] && stuck+=("$(field "$n" 1)")
		done
		if [[ $escalate != 1 ]]; then
			die "still running ${STOP_TIMEOUT}s after SIG$sig: ${stuck[*]} (scripts/cluster.sh kill N ends it)"
		fi
		echo "cluster: still running ${STOP_TIMEOUT}s after SIG$sig: ${stuck[*]}; sending SIGKILL" >&2
		# shellcheck disable=SC2086
		kill -KILL $left 2>/dev/null || true
		# shellcheck disable=SC2086
		wait_gone 5 $left >/dev/null || die "still running after SIGKILL: ${stuck[*]}"
	fi
	for n in "$@"; do rm -f "$(pidfile "$n")"; done
	echo "cluster: ${names[*]}: exited after SIG$sig"
}

all() { seq 1 "${#NODES[@]}"; }

cmd=${1:-}
case "$cmd" in
up)
	command -v curl >/dev/null || die "curl is needed"
	ensure_binary
	for n in $(all); do launch "$n"; done
	# shellcheck disable=SC2046
	wait_ready $(all) || die "up failed (logs in $STATE/)"
	echo "cluster: ${#NODES[@]} nodes healthy; client API 127.0.0.1:8081-8085, management 9081-9085, token $AUTH_TOKEN, logs in $STATE/"
	;;
down)
	# shellcheck disable=SC2046
	signal_nodes TERM 1 $(all)
	;;
status)
	ok=0
	for n in $(all); do
		pid=$(node_pid "$n")
		if [[ -n "$pid" ]]; then run="running"; else run="stopped"; pid="-"; fi
		if healthy "$n"; then health="healthy"; else health="unhealthy"; ok=1; fi
		printf '%s pid=%s %s %s api=%s mgmt=%s dist=%s\n' "$(field "$n" 1)" "$pid" "$run" "$health" \
			"$(field "$n" 2)" "$(field "$n" 3)" "$(field "$n" 4)"
	done
	exit $ok
	;;
start)
	check_n "${2:-}"
	command -v curl >/dev/null || die "curl is needed"
	ensure_binary
	launch "$2"
	wait_ready "$2" || die "start failed (log: $(logfile "$2"))"
	echo "cluster: $(field "$2" 1) healthy (pid $(node_pid "$2"))"
	;;
stop)
	check_n "${2:-}"
	signal_nodes TERM 0 "$2"
	;;
kill)
	check_n "${2:-}"
	signal_nodes KILL 0 "$2"
	;;
env)
	check_n "${2:-}"
	node_env "$2"
	;;
*) usage ;;
esac
