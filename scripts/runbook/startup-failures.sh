#!/usr/bin/env bash
# Runbook scenario "start-up failures" (docs/operations.md#startup-failures): the server refuses
# to start, prints one line starting `hypercache-server: ` that names the cause and the fix, and
# exits non-zero; after the fix the same command starts.
#   1. locked-memory limit too low (ulimit -l 64 in a subshell)            exit 1
#   2. io_uring refused by the kernel (sysctl kernel.io_uring_disabled)    exit 1 (root only)
#   3. a listener port already in use                                      exit 1
#   4. an invalid variable                                                 exit 2
# Part 2 needs root and the kernel.io_uring_disabled sysctl (Linux >= 6.6); it is skipped with a
# message otherwise. With setpriv available it sets the sysctl to 1, which refuses io_uring only
# to processes without CAP_SYS_ADMIN outside kernel.io_uring_group, and runs that server as
# `nobody`, so other servers on the machine are not affected; else it sets 2 for the moment of
# the start. The original value is restored on exit.
# shellcheck source=scripts/runbook/lib.sh
source "$(dirname "$0")/lib.sh"
rb_begin startup-failures

BASE=(
	PATH=/usr/bin:/bin HYPERCACHE_NODE_ID=node-1 HYPERCACHE_API_ADDR=127.0.0.1:0
	HYPERCACHE_MGMT_ADDR=127.0.0.1:0 HYPERCACHE_DIST_ADDR=127.0.0.1:0 HYPERCACHE_CORES=1
	"HYPERCACHE_CPU_SET=${CPUS[0]}" "HYPERCACHE_AUTH_TOKEN=$TOKEN"
)

# expect_fail NAME RC REGEX PREFIX...: run PREFIX... env -i BASE $BIN (with a 15 s limit) and
# check its exit status and its one stderr line.
expect_fail() {
	local name=$1 want=$2 re=$3 rc=0 line
	shift 3
	timeout 15 "$@" env -i "${BASE[@]}" "${EXTRA[@]+"${EXTRA[@]}"}" "$BIN" "${ARGS[@]+"${ARGS[@]}"}" >"$OUT/$name.log" 2>&1 || rc=$?
	((rc != 124)) || fail "$name: the server started (killed after 15 s), expected exit $want"
	[[ $rc == "$want" ]] || fail "$name: exit status $rc, expected $want; output: $(head -c 600 "$OUT/$name.log")"
	line=$(grep -m1 '^hypercache-server: ' "$OUT/$name.log" || true)
	[[ -n $line ]] || fail "$name: no line starting 'hypercache-server: ' on stderr: $(head -c 600 "$OUT/$name.log")"
	grep -Eq -- "$re" <<<"$line" || fail "$name: the line does not match /$re/: $line"
	ok "$name: exit $rc: $line"
}

# expect_start NAME PREFIX...: the same command starts (its start line appears); then stop it
expect_start() {
	local name=$1 pid deadline=$((SECONDS + 15))
	shift
	"$@" env -i "${BASE[@]}" "${EXTRA[@]+"${EXTRA[@]}"}" "$BIN" >"$OUT/$name.log" 2>&1 &
	pid=$!
	until grep -q 'hypercache-server started' "$OUT/$name.log"; do
		running "$pid" || fail "$name: exited during start-up: $(head -c 600 "$OUT/$name.log")"
		((SECONDS < deadline)) || { kill -KILL "$pid"; fail "$name: no start line within 15 s"; }
		sleep 0.05
	done
	ok "$name: $(grep -m1 -o 'hypercache-server started api=[^ ]*' "$OUT/$name.log")"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
}

EXTRA=() # more variables for the next run
ARGS=()  # arguments of the server
rb_log "1. locked-memory limit too low"
expect_fail memlock 1 '^hypercache-server: locked-memory limit too low: RLIMIT_MEMLOCK is 65536 bytes, need [0-9]+; raise it with ulimit -l, docker run --ulimit memlock=-1:-1 or compose ulimits.memlock$' \
	bash -c 'ulimit -l 64 && exec "$@"' memlock
need=$(sed -nE 's/.*need ([0-9]+);.*/\1/p' "$OUT/memlock.log")
lim=$(ulimit -l)
if [[ $lim == unlimited ]] || ((lim * 1024 >= need)); then
	expect_start memlock-fixed bash -c "ulimit -l $lim && exec \"\$@\"" memlock-fixed
else
	fail "this shell's own memlock limit (ulimit -l = $lim KiB) is below the $need bytes the server needs"
fi

rb_log "2. io_uring refused by the kernel"
SYSCTL=/proc/sys/kernel/io_uring_disabled
if [[ $(id -u) != 0 ]]; then
	rb_log "skipped: needs root to set kernel.io_uring_disabled"
elif [[ ! -e $SYSCTL ]]; then
	rb_log "skipped: this kernel ($(uname -r)) has no kernel.io_uring_disabled sysctl (Linux >= 6.6)"
else
	orig=$(<"$SYSCTL")
	AS=()
	mode=2
	if command -v setpriv >/dev/null; then
		mode=1
		AS=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all)
	fi
	RB_CLEANUP+=("echo $orig >$SYSCTL")
	if ! echo "$mode" >"$SYSCTL" 2>/dev/null; then
		rb_log "skipped: cannot write $SYSCTL (read-only /proc/sys?)"
	else
		expect_fail io_uring 1 '^hypercache-server: io_uring is not available \(io_uring_setup: .*\): needs Linux >= 5\.8 with io_uring enabled; under Docker allow io_uring_setup, io_uring_enter and io_uring_register with a seccomp profile' \
			"${AS[@]+"${AS[@]}"}"
		echo "$orig" >"$SYSCTL"
		ok "kernel.io_uring_disabled restored to $orig"
		expect_start io_uring-fixed "${AS[@]+"${AS[@]}"}"
	fi
fi

rb_log "3. a port already in use"
start_node 1
EXTRA=(HYPERCACHE_API_ADDR="${API[1]}")
expect_fail bind 1 "^hypercache-server: cannot bind HYPERCACHE_API_ADDR=\"${API[1]//./\\.}\": Address already in use \(os error 98\); stop the other process or choose another port$"
grep -qE "WARN node=node-1 HYPERCACHE_API_ADDR=\"${API[1]//./\\.}\" is in use; retrying for up to 5s \(a previous instance may still be exiting\)" "$OUT/bind.log" ||
	fail "bind: no 'is in use; retrying for up to 5s' warning before the failure: $(head -c 600 "$OUT/bind.log")"
ok "bind: it retried for 5 s first: $(grep -o 'HYPERCACHE_API_ADDR=.*is in use; retrying for up to 5s' "$OUT/bind.log")"
EXTRA=()
expect_start bind-fixed

rb_log "4. an invalid variable (also found by check-config, which binds nothing)"
EXTRA=(HYPERCACHE_HEARTBEAT=fast)
expect_fail config 2 '^hypercache-server: invalid HYPERCACHE_HEARTBEAT="fast": expected a duration such as 500ms, 1s or 1m30s$'
ARGS=(check-config)
expect_fail check-config 2 '^hypercache-server: invalid HYPERCACHE_HEARTBEAT="fast": expected a duration such as 500ms, 1s or 1m30s$'
EXTRA=(HYPERCACHE_HEARTBEAT=500ms)
rc=0
env -i "${BASE[@]}" "${EXTRA[@]}" "$BIN" check-config >"$OUT/check-config-fixed.log" 2>&1 || rc=$?
((rc == 0)) || fail "check-config with a valid HYPERCACHE_HEARTBEAT exited $rc: $(head -c 600 "$OUT/check-config-fixed.log")"
grep -q 'HYPERCACHE_HEARTBEAT' "$OUT/check-config-fixed.log" || fail "check-config printed no effective configuration: $(head -c 600 "$OUT/check-config-fixed.log")"
! grep -q "$TOKEN" "$OUT/check-config-fixed.log" || fail "check-config printed the auth token"
ok "check-config with HYPERCACHE_HEARTBEAT=500ms: exit 0, effective configuration printed, token redacted"
rb_pass
