# shellcheck shell=bash
# Shared helpers of the runbook scripts (scripts/runbook/*.sh), sourced, never run.
#
# A scenario script does:
#   source "$(dirname "$0")/lib.sh"
#   rb_begin node-loss                      # output dir, trap, banner
#   RB_ENV=(HYPERCACHE_HEARTBEAT=200ms ...)  # settings every node of the scenario gets
#   start_node 1; start_node 2; start_node 3 # real servers on ephemeral loopback ports
#   ...                                      # inject the fault, check, fix, check
#   rb_pass
#
# Nodes: node-N is started by `start_node N [VAR=VALUE...]` with a clean environment
# (env -i), HYPERCACHE_NODE_ID=node-N, one data core pinned round-robin over our CPUs, the
# token $TOKEN, ports 0 on 127.0.0.1 at first start and the ports it first got on every later
# start, and (N > 1, first start) HYPERCACHE_SEEDS=<dist address of node-1>; a restart gets every
# other known node as a seed. It returns once the node logged `hypercache-server started` and
# sets API[N], MGMT[N], DIST[N] from that line. stderr goes to $OUT/node-N.log (appended).
# Restart seeds are `node-J@host:port`: with bare host:port seeds a restarted node's ring holds
# only itself until its join exchange completes, a few ms after /health already answers 200, and
# quorum reads through it can then miss acknowledged keys (seen in rolling-upgrade.sh).
#
# Checks poll with a deadline (never a fixed sleep) and end the script with `FAIL <scenario>:
# <what>` plus the tail of every node log. Every process a script starts is killed on exit.
#
# Environment: HYPERCACHE_BIN (default target/release/hypercache-server, relative to the
# repository root), RUNBOOK_DIR (logs; default target/runbook/<scenario>).

set -euo pipefail
RB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$RB_ROOT"
BIN=${HYPERCACHE_BIN:-target/release/hypercache-server}
HC_PY=$RB_ROOT/scripts/runbook/hc.py
TOKEN=runbook-token
RB_ENV=()             # HYPERCACHE_* settings for every node of the scenario
RB_CLEANUP=()         # extra cleanup commands (eval'd on exit, in reverse order)
RB_CLIENT=()          # prefix for every client command (curl, hc.py), e.g. a netns.sh exec
# shellcheck disable=SC2034 # EXIT_CODE is read by the scenario scripts
declare -A PID WRAP API MGMT DIST EXIT_CODE

rb_log() { printf '%s %s: %s\n' "$(date -u +%H:%M:%S)" "${SCENARIO:-runbook}" "$*"; }
ok() { printf '   ok  %s\n' "$*"; }

fail() {
	local n f
	printf 'FAIL %s: %s\n' "${SCENARIO:-runbook}" "$*" >&2
	for f in "$OUT"/node-*.log; do
		[[ -f $f ]] || continue
		n=${f##*/}
		echo "---- last lines of $n" >&2
		tail -n 15 "$f" >&2
	done
	exit 1
}

skip() { # skip MESSAGE: the scenario cannot run here (exit 0, says why)
	printf 'SKIP %s: %s\n' "${SCENARIO:-runbook}" "$*"
	exit 0
}

rb_begin() { # rb_begin NAME
	SCENARIO=$1
	OUT=${RUNBOOK_DIR:-$RB_ROOT/target/runbook}/$SCENARIO
	rm -rf "$OUT"
	mkdir -p "$OUT"
	command -v python3 >/dev/null || { echo "FAIL $SCENARIO: python3 is needed" >&2; exit 1; }
	command -v curl >/dev/null || { echo "FAIL $SCENARIO: curl is needed" >&2; exit 1; }
	[[ -x $BIN ]] || { echo "FAIL $SCENARIO: no server binary at $BIN (set HYPERCACHE_BIN or cargo build --release)" >&2; exit 1; }
	BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
	read -r -a CPUS <<<"$(allowed_cpus)"
	T_BEGIN=$SECONDS
	trap rb_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	rb_log "start ($BIN, logs in $OUT)"
}

rb_pass() {
	rb_log "PASS in $((SECONDS - T_BEGIN)) s"
}

rb_cleanup() {
	local rc=$? n i
	trap - EXIT
	{
		for n in "${!PID[@]}"; do
			kill -CONT "${PID[$n]}" || true
			kill -KILL "${PID[$n]}" || true
		done
		for n in "${!WRAP[@]}"; do wait "${WRAP[$n]}" || true; done
	} 2>/dev/null
	for ((i = ${#RB_CLEANUP[@]} - 1; i >= 0; i--)); do eval "${RB_CLEANUP[$i]}" || true; done
	exit "$rc"
}

allowed_cpus() {
	local list part a b c parts cpus=()
	list=$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status)
	IFS=, read -r -a parts <<<"$list"
	for part in "${parts[@]}"; do
		a=${part%-*} b=${part#*-}
		for ((c = a; c <= b; c++)); do cpus+=("$c"); done
	done
	echo "${cpus[@]}"
}

# ---------------------------------------------------------------- nodes

# running PID: the process exists and is not a zombie (an exited child not yet waited for)
running() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z ]]
}

log_size() { stat -c %s "$OUT/node-$1.log" 2>/dev/null || echo 0; }

start_node() { # start_node N [VAR=VALUE...]: start node-N, wait for its start line
	local n=$1 log="$OUT/node-$1.log" off seeds=() j line
	shift
	off=$(log_size "$n")
	if [[ -z ${API[$n]:-} ]]; then
		((n == 1)) || seeds=("${DIST[1]:?node-1 must be started first}")
	else
		# a restart knows every peer's id: id@host:port seeds are ring members from the start,
		# so the node never serves from a ring of itself alone while its join is under way
		for j in "${!DIST[@]}"; do [[ $j == "$n" ]] || seeds+=("node-$j@${DIST[$j]}"); done
	fi
	local env=(
		PATH=/usr/bin:/bin
		"HYPERCACHE_NODE_ID=node-$n"
		"HYPERCACHE_API_ADDR=${API[$n]:-127.0.0.1:0}"
		"HYPERCACHE_MGMT_ADDR=${MGMT[$n]:-127.0.0.1:0}"
		"HYPERCACHE_DIST_ADDR=${DIST[$n]:-127.0.0.1:0}"
		"HYPERCACHE_AUTH_TOKEN=$TOKEN"
		HYPERCACHE_CORES=1
		"HYPERCACHE_CPU_SET=${CPUS[$(((n - 1) % ${#CPUS[@]}))]}"
		"HYPERCACHE_SEEDS=$(IFS=,; echo "${seeds[*]}")"
		"${RB_ENV[@]}"
		"$@"
	)
	echo "=== $(date -u +%H:%M:%S.%3N) runbook: start node-$n" >>"$log"
	off=$(log_size "$n")
	# The wrapper subshell reaps the server and exits with its status, so a node killed by a
	# signal does not make bash print "Killed" lines; PID is the server, WRAP the wrapper.
	rm -f "$OUT/.pid-$n"
	(
		env -i "${env[@]}" "$BIN" >>"$log" 2>&1 &
		echo $! >"$OUT/.pid-$n"
		wait $!
	) 2>/dev/null &
	WRAP[$n]=$!
	until [[ -s $OUT/.pid-$n ]]; do sleep 0.01; done
	PID[$n]=$(<"$OUT/.pid-$n")
	unset "EXIT_CODE[$n]"
	line=$(wait_start_line "$n" "$off" 20) || fail "node-$n did not log its start line within 20 s"
	API[$n]=$(sed -E 's/.* api=([^ ]+).*/\1/' <<<"$line")
	MGMT[$n]=$(sed -E 's/.* mgmt=([^ ]+).*/\1/' <<<"$line")
	DIST[$n]=$(sed -E 's/.* dist=([^ ]+).*/\1/' <<<"$line")
}

wait_start_line() { # wait_start_line N OFFSET SECONDS: print the start line once logged
	local n=$1 off=$2 deadline=$((SECONDS + $3)) line
	while ((SECONDS < deadline)); do
		line=$(tail -c +"$((off + 1))" "$OUT/node-$n.log" | grep -m1 'hypercache-server started' || true)
		if [[ -n $line ]]; then echo "$line"; return 0; fi
		running "${WRAP[$n]}" || { echo "node-$n exited during start-up" >&2; return 1; }
		sleep 0.05
	done
	return 1
}

signal_node() { kill "-$2" "${PID[$1]}"; } # signal_node N SIGNAL

wait_exit() { # wait_exit N SECONDS: wait for node-N to exit; sets EXIT_CODE[N]
	local n=$1 deadline=$((SECONDS + $2)) rc=0
	while running "${WRAP[$n]}"; do
		((SECONDS < deadline)) || return 1
		sleep 0.05
	done
	wait "${WRAP[$n]}" || rc=$?
	# shellcheck disable=SC2034 # read by the scenario scripts
	EXIT_CODE[$n]=$rc
	unset "PID[$n]" "WRAP[$n]"
}

stop_node() { # stop_node N SIGNAL [SECONDS]: signal node-N and wait until it has exited
	signal_node "$1" "$2"
	wait_exit "$1" "${3:-40}" || fail "node-$1 still running ${3:-40} s after SIG$2"
}

# ---------------------------------------------------------------- HTTP

mgmt() { # mgmt N PATH [curl args...]: body of a management request (auth added)
	local n=$1 path=$2
	shift 2
	"${RB_CLIENT[@]+"${RB_CLIENT[@]}"}" curl -sS --max-time 5 -H "Authorization: Bearer $TOKEN" "$@" "http://${MGMT[$n]}$path"
}

api() { # api N METHOD PATH [curl args...]: prints "STATUS BODY"
	local n=$1 method=$2 path=$3
	shift 3
	"${RB_CLIENT[@]+"${RB_CLIENT[@]}"}" curl -sS --max-time 10 -o "$OUT/.body" -w '%{http_code}' -X "$method" \
		-H "Authorization: Bearer $TOKEN" "$@" "http://${API[$n]}$path" || true
	printf ' %s\n' "$(cat "$OUT/.body" 2>/dev/null)"
}

health() { # health N: HTTP status of the management /health (000 when unreachable)
	"${RB_CLIENT[@]+"${RB_CLIENT[@]}"}" curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://${MGMT[$1]}/health" || true
}

hc() { "${RB_CLIENT[@]+"${RB_CLIENT[@]}"}" python3 "$HC_PY" "$@"; } # hc.py subcommand ARGS...

# ---------------------------------------------------------------- metrics

# metric N NAME [LABEL_FILTER...]: the sum of the samples of NAME in node-N's /metrics whose
# labels contain every filter (e.g. 'route="internal_batch"'); 0 when there is none.
metric() {
	local n=$1 name=$2
	shift 2
	{ mgmt "$n" /metrics 2>/dev/null || true; } | awk -v name="$name" -v filters="$*" '
		BEGIN { nf = split(filters, f, " ") }
		$0 !~ /^#/ {
			i = index($1, "{"); base = i ? substr($1, 1, i - 1) : $1
			if (base != name) next
			for (j = 1; j <= nf; j++) if (index($1, f[j]) == 0) next
			sum += $2
		}
		END { if (sum == int(sum)) printf "%d\n", sum; else printf "%.6f\n", sum }'
}

# metric_exists N NAME: NAME's family has a # TYPE line in node-N's /metrics (a histogram's
# _count, _sum and _bucket series belong to the family without the suffix)
metric_exists() {
	local fam=$2
	[[ $fam =~ ^(.*)_(count|sum|bucket)$ ]] && fam=${BASH_REMATCH[1]}
	{ mgmt "$1" /metrics 2>/dev/null || true; } | grep -q "^# TYPE $fam "
}

num_cmp() { awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
	r = (op == ">") ? a > b : (op == ">=") ? a >= b : (op == "<") ? a < b : (op == "<=") ? a <= b : (op == "==") ? a == b : (op == "!=") ? a != b : 0
	exit !r }'; }

# wait_metric N NAME [FILTER...] OP VALUE SECONDS: poll until the metric satisfies OP VALUE
wait_metric() {
	local n=$1 name=$2 args=("${@:3}") k
	k=${#args[@]}
	local secs=${args[$((k - 1))]} value=${args[$((k - 2))]} op=${args[$((k - 3))]}
	local filters=("${args[@]:0:$((k - 3))}") v deadline label=$name
	((${#filters[@]} == 0)) || label="$name{$(IFS=,; echo "${filters[*]}")}"
	metric_exists "$n" "$name" || fail "node-$n /metrics has no family $name"
	deadline=$((SECONDS + secs))
	while :; do
		v=$(metric "$n" "$name" "${filters[@]+"${filters[@]}"}")
		if num_cmp "${v:-0}" "$op" "$value"; then
			ok "node-$n $label = $v ($op $value)"
			return 0
		fi
		((SECONDS < deadline)) || fail "node-$n: $label = ${v:-?}, expected $op $value within ${secs} s"
		sleep 0.1
	done
}

# ---------------------------------------------------------------- logs

# wait_log N REGEX SECONDS [FROM_BYTE]: poll node-N's log (from a byte offset) for an ERE
wait_log() {
	local n=$1 re=$2 secs=$3 from=${4:-0} deadline=$((SECONDS + $3)) line
	while :; do
		line=$(tail -c +"$((from + 1))" "$OUT/node-$n.log" | grep -E -m1 -- "$re" || true)
		if [[ -n $line ]]; then
			ok "node-$n log: ${line#* node=node-"$n" }"
			return 0
		fi
		((SECONDS < deadline)) || fail "node-$n did not log /$re/ within ${secs} s"
		sleep 0.1
	done
}

# no_log N REGEX [FROM_BYTE]: fail if node-N logged a line matching REGEX
no_log() {
	local line
	line=$(tail -c +"$((${3:-0} + 1))" "$OUT/node-$1.log" | grep -E -m1 -- "$2" || true)
	[[ -z $line ]] || fail "node-$1 logged an unexpected line: $line"
	ok "node-$1 did not log /$2/"
}

# ---------------------------------------------------------------- membership

# member_state N ID: ID's state in node-N's /cluster/members ("absent" when not listed)
member_state() {
	{ mgmt "$1" /cluster/members 2>/dev/null || true; } | python3 -c '
import json, sys
try:
    m = {x["ID"]: x["State"] for x in json.load(sys.stdin)["members"]}
except Exception:
    m = {}
print(m.get(sys.argv[1], "absent"))' "$2"
}

# wait_state SECONDS STATE ID OBSERVER...: every observer holds node ID in STATE
wait_state() {
	local secs=$1 want=$2 id=$3 o s deadline=$((SECONDS + $1))
	shift 3
	for o in "$@"; do
		while :; do
			s=$(member_state "$o" "$id")
			[[ $s == "$want" ]] && break
			((SECONDS < deadline)) || fail "node-$o sees $id as '$s', expected '$want' within ${secs} s"
			sleep 0.05
		done
	done
	ok "$id is $want in the view of node-${*// /, node-}"
}

# wait_all_alive SECONDS N...: every listed node sees every listed node alive
wait_all_alive() {
	local secs=$1 n
	shift
	for n in "$@"; do wait_state "$secs" alive "node-$n" "$@" >/dev/null; done
	ok "node-${*// /, node-} all alive in every view"
}
