#!/usr/bin/env bash
# CI test of docker-compose.cluster.yml: build the image, start the five containers, run the
# product page's smoke test, lose one node while writing, bring it back, read everything back
# from every node, and always tear the stack down.
#
# Usage: scripts/compose-test.sh                 (as root, from anywhere; needs docker + compose, curl)
#
# Environment: COMPOSE ("docker compose" or docker-compose; found if unset), HEALTH_TIMEOUT (60 s),
# CONVERGE_TIMEOUT (30 s, for reads after the restart), KEEP_STACK=1 (do not tear down, to debug).
# The last line is "compose-test: P passed, F failed"; the exit status is 0 only if F is 0.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

FILE=docker-compose.cluster.yml
PROJECT=${COMPOSE_PROJECT_NAME:-hypercache-ci}
TOKEN=dev-token
AUTH="Authorization: Bearer $TOKEN"
HEALTH_TIMEOUT=${HEALTH_TIMEOUT:-60}
CONVERGE_TIMEOUT=${CONVERGE_TIMEOUT:-30}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/compose-test.XXXXXX")
PASSED=0
FAILED=0

log() { echo "compose-test: $*" >&2; }
pass() { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }
summary() { echo "compose-test: $PASSED passed, $FAILED failed"; }

if [[ -z "${COMPOSE:-}" ]]; then
	if docker compose version >/dev/null 2>&1; then
		COMPOSE="docker compose"
	elif command -v docker-compose >/dev/null; then
		COMPOSE=docker-compose
	else
		log "neither 'docker compose' nor docker-compose is installed"
		FAILED=1 && summary && exit 1
	fi
fi
# shellcheck disable=SC2086
dc() { $COMPOSE -p "$PROJECT" -f "$FILE" "$@"; }

teardown() {
	local rc=$?
	if ((FAILED > 0)) || ((rc != 0)); then
		log "container logs (last 20 lines each):"
		dc logs --no-color --tail 20 >&2 2>&1 || true
	fi
	if [[ "${KEEP_STACK:-0}" == 1 ]]; then
		log "KEEP_STACK=1: leaving the stack up ($COMPOSE -p $PROJECT -f $FILE down -v to remove it)"
	else
		dc down -v --remove-orphans >/dev/null 2>&1 || log "teardown failed"
	fi
	rm -rf "$TMP"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# ---- setup: local base images, crates, memlock limit, image build -----------------------------
setup_fail() { log "$*"; fail "setup: $*"; summary; exit 1; }

base=$(scripts/docker-base.sh | tail -n 1) || setup_fail "scripts/docker-base.sh failed"
# "RUST_IMAGE=... RUNTIME_IMAGE=..." unless the caller chose other base images.
for kv in $base; do
	k=${kv%%=*}
	# shellcheck disable=SC2163 # exports the NAME=VALUE in kv
	[[ -n "${!k:-}" ]] || export "$kv"
done
log "base images: RUST_IMAGE=$RUST_IMAGE RUNTIME_IMAGE=$RUNTIME_IMAGE"
RUST_IMAGE=$RUST_IMAGE scripts/docker-deps.sh || setup_fail "scripts/docker-deps.sh failed"

# compose asks for an unlimited memlock limit; a daemon that may not raise its own limit (rootless,
# sandboxes) refuses to start such a container. Fall back to the daemon's limit if it is >= 8 MiB.
if [[ -z "${HYPERCACHE_MEMLOCK:-}" ]] &&
	! docker run --rm --ulimit memlock=-1:-1 "$RUNTIME_IMAGE" true >/dev/null 2>&1; then
	for m in 67108864 16777216 8388608; do
		if docker run --rm --ulimit "memlock=$m:$m" "$RUNTIME_IMAGE" true >/dev/null 2>&1; then
			export HYPERCACHE_MEMLOCK=$m
			break
		fi
	done
	[[ -n "${HYPERCACHE_MEMLOCK:-}" ]] || setup_fail "the docker daemon cannot give containers 8 MiB of locked memory"
	log "the daemon cannot set an unlimited memlock limit: HYPERCACHE_MEMLOCK=$HYPERCACHE_MEMLOCK"
fi

dc down -v --remove-orphans >/dev/null 2>&1 || true
log "building the image ($COMPOSE build)"
start=$SECONDS
dc build >"$TMP/build.log" 2>&1 || { tail -n 30 "$TMP/build.log" >&2; setup_fail "image build failed"; }
log "image built in $((SECONDS - start)) s"
dc up -d >"$TMP/up.log" 2>&1 || { cat "$TMP/up.log" >&2; setup_fail "$COMPOSE up failed"; }

# ---- helpers ----------------------------------------------------------------------------------
code_of() { # code_of METHOD URL [curl args...] -> HTTP status (000 on connection failure)
	local m=$1 u=$2
	shift 2
	curl -s -o /dev/null -m 5 -w '%{http_code}' -X "$m" "$@" "$u" 2>/dev/null || true
}
healthy() { [[ $(code_of GET "http://127.0.0.1:808$1/healthz") == 200 ]]; }

wait_healthy() { # wait_healthy N... -> 0 when all answer 200 before HEALTH_TIMEOUT
	local deadline=$((SECONDS + HEALTH_TIMEOUT)) n ok
	while :; do
		ok=1
		for n in "$@"; do healthy "$n" || ok=0; done
		((ok)) && return 0
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}

put() { # put NODE KEY FILE -> HTTP status
	code_of PUT "http://127.0.0.1:808$1/v1/cache/$2" -H "$AUTH" --data-binary "@$3"
}

read_matches() { # read_matches NODE KEY FILE -> 0 if GET returns 200 and exactly FILE's bytes
	local out="$TMP/get.$1"
	[[ $(curl -s -o "$out" -m 5 -w '%{http_code}' -H "$AUTH" "http://127.0.0.1:808$1/v1/cache/$2") == 200 ]] &&
		cmp -s "$out" "$3"
}

# ---- 1. the five nodes become healthy ----------------------------------------------------------
if wait_healthy 1 2 3 4 5; then
	pass "all five /healthz answer 200 (127.0.0.1:8081..8085)"
else
	fail "not all of 127.0.0.1:8081..8085/healthz answer 200 after ${HEALTH_TIMEOUT}s"
	dc ps >&2
	exit 1
fi

# ---- 2-3. product page smoke test: PUT on node-1, GET on node-5 --------------------------------
printf 'hello from node-1 \xe2\x9c\x93\n\x00\xff binary tail' >"$TMP/smoke"
code=$(put 1 compose-smoke "$TMP/smoke")
if [[ $code == 200 ]]; then pass "PUT :8081/v1/cache/compose-smoke -> 200"; else fail "PUT :8081/v1/cache/compose-smoke -> $code"; fi

deadline=$((SECONDS + 5))
until read_matches 5 compose-smoke "$TMP/smoke" || ((SECONDS >= deadline)); do sleep 0.2; done
if read_matches 5 compose-smoke "$TMP/smoke"; then
	pass "GET :8085/v1/cache/compose-smoke returns the bytes written on node-1"
else
	fail "GET :8085/v1/cache/compose-smoke: status $(code_of GET http://127.0.0.1:8085/v1/cache/compose-smoke -H "$AUTH"), body: $(head -c 200 "$TMP/get.5" 2>/dev/null)"
fi

# ---- 4. members from node-2's management API ----------------------------------------------------
members=$(curl -s -m 5 -H "$AUTH" http://127.0.0.1:9082/cluster/members || true)
missing=()
for n in 1 2 3 4 5; do
	grep -Eq "\"ID\":\"node-$n\",\"Address\":\"hypercache-$n:7946\",\"APIAddress\":\"hypercache-$n:8080\",\"State\":\"alive\"" <<<"$members" ||
		missing+=("node-$n")
done
if ((${#missing[@]} == 0)) && grep -q '"replication":3' <<<"$members"; then
	pass "GET :9082/cluster/members lists node-1..node-5 alive at hypercache-N:7946 (API hypercache-N:8080), replication 3"
else
	fail "GET :9082/cluster/members: missing or not alive: ${missing[*]:-none}; got: ${members:0:400}"
fi

# ---- 5. lose hypercache-3, keep writing through node-1 and node-2 --------------------------------
if dc stop hypercache-3 >"$TMP/stop.log" 2>&1; then
	bad=()
	for i in $(seq 1 20); do
		printf 'value %d written while node-3 was down\n' "$i" >"$TMP/v$i"
		node=$((1 + i % 2))
		code=$(put "$node" "compose-key-$i" "$TMP/v$i")
		[[ $code == 200 ]] || bad+=("compose-key-$i@:808$node=$code")
	done
	if ((${#bad[@]} == 0)); then
		pass "hypercache-3 stopped; 20 PUTs through :8081/:8082 -> 200"
	else
		fail "hypercache-3 stopped; ${#bad[@]} of 20 PUTs failed: ${bad[*]}"
	fi
else
	cat "$TMP/stop.log" >&2
	fail "$COMPOSE stop hypercache-3 failed"
fi

# ---- 6. bring it back ------------------------------------------------------------------------------
if dc start hypercache-3 >"$TMP/start.log" 2>&1 && wait_healthy 3; then
	pass "hypercache-3 started again and answers /healthz"
else
	cat "$TMP/start.log" >&2
	fail "hypercache-3 did not come back within ${HEALTH_TIMEOUT}s"
fi

# ---- 7. every key from every node ----------------------------------------------------------------
# Hinted handoff / anti-entropy may need a moment to repair node-3: poll until CONVERGE_TIMEOUT.
deadline=$((SECONDS + CONVERGE_TIMEOUT))
while :; do
	bad=()
	for n in 1 2 3 4 5; do
		read_matches "$n" compose-smoke "$TMP/smoke" || bad+=("compose-smoke@:808$n")
		for i in $(seq 1 20); do
			read_matches "$n" "compose-key-$i" "$TMP/v$i" || bad+=("compose-key-$i@:808$n")
		done
	done
	((${#bad[@]} == 0)) || ((SECONDS >= deadline)) || { sleep 1; continue; }
	break
done
if ((${#bad[@]} == 0)); then
	pass "all 21 keys read back from each of the five nodes"
else
	fail "${#bad[@]} of 105 reads missing or wrong after ${CONVERGE_TIMEOUT}s, e.g. ${bad[*]:0:8}"
fi

# ---- 8. without io_uring the server says so and how to fix it (ops.md §4) ----------------------
# A copy of the shipped profile minus the three io_uring calls stands in for Docker >= 25's default.
python3 - deploy/seccomp-io_uring.json "$TMP/no-uring.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
drop = {"io_uring_setup", "io_uring_enter", "io_uring_register"}
for rule in p.get("syscalls", []):
    rule["names"] = [n for n in rule.get("names", []) if n not in drop]
p["syscalls"] = [r for r in p["syscalls"] if r["names"]]
json.dump(p, open(sys.argv[2], "w"))
PY
out=$(docker run --rm --security-opt "seccomp=$TMP/no-uring.json" --ulimit memlock="${HYPERCACHE_MEMLOCK:-8388608}" \
	-e HYPERCACHE_NODE_ID=no-uring hypercache-server:local 2>&1)
rc=$?
if ((rc == 1)) && grep -q "io_uring" <<<"$out" && grep -q "seccomp" <<<"$out" && grep -q "5.8" <<<"$out" &&
	grep -q "io_uring_setup, io_uring_enter and io_uring_register" <<<"$out"; then
	pass "without io_uring the container exits 1 naming io_uring, 5.8, seccomp and the three calls"
else
	fail "without io_uring: exit $rc, output: $(tail -c 400 <<<"$out")"
fi

summary
((FAILED == 0))
