#!/usr/bin/env bash
# The served OpenAPI document and the server cannot drift: schemathesis (PyPI) reads
# GET /v1/openapi.yaml from a live node with a token and tests every documented operation
# against it, all checks on: status codes, response schemas and content types, the Allow header of
# 405s, and that bodies the schemas reject are refused.
#
# Part of scripts/test.sh. One thing OpenAPI cannot state: GET/HEAD /v1/cache/keys is the key
# browser (api.md §10.1: the concrete path wins), so the templated getKey/headKey operations
# document `key` as anything but `keys`, and a negative test that sends exactly `keys` gets the
# browser's 200. So the run has two passes: every operation except getKey/headKey with every check
# and both positive and negative data; then getKey/headKey with every check on positive data only
# (the browser itself is listKeys/headKeys, fully tested in the first pass).
# Earlier runs of this script fixed: the 405 Allow of /v1/cache/keys, null batch-put fields, any
# bytes as a PUT body, negative ttl patterns, array batch items (400), key and ttl limits.
#
# Usage: scripts/openapi-test.sh     (from anywhere; about a minute)
# Environment: HYPERCACHE_BIN (default target/release/hypercache-server), ST_EXAMPLES (default 40
# per operation), ST_SEED (default fixed, so a run replays; set ST_SEED= for a random one).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${HYPERCACHE_BIN:-target/release/hypercache-server}
[[ $BIN == /* ]] || BIN=$ROOT/$BIN
[[ -x $BIN ]] || { echo "openapi-test: no server binary at $BIN" >&2; exit 1; }
if ! command -v st >/dev/null 2>&1; then
	echo "openapi-test: installing schemathesis (PyPI)"
	PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check schemathesis >/dev/null
fi
ST=$(command -v st || true)
# pip puts the `st` script beside the interpreter, which is not always on PATH.
[[ -n $ST ]] || ST=$(python3 -c 'import os, sys; print(os.path.join(os.path.dirname(sys.executable), "st"))')
[[ -x $ST ]] || { echo "openapi-test: schemathesis installed but no st command found" >&2; exit 1; }
TMP=$(mktemp -d)
PID=
cleanup() {
	[[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
TOKEN=openapi-test-token
env -i PATH="$PATH" HYPERCACHE_NODE_ID=openapi-node HYPERCACHE_API_ADDR=127.0.0.1:0 \
	HYPERCACHE_MGMT_ADDR=127.0.0.1:0 HYPERCACHE_DIST_ADDR=127.0.0.1:0 HYPERCACHE_CORES=1 \
	HYPERCACHE_AUTH_TOKEN=$TOKEN HYPERCACHE_DRAIN_GRACE=0s "$BIN" 2>"$TMP/node.log" &
PID=$!
deadline=$((SECONDS + 20))
until grep -q "hypercache-server started" "$TMP/node.log"; do
	if ((SECONDS >= deadline)) || ! kill -0 "$PID" 2>/dev/null; then
		cat "$TMP/node.log" >&2
		echo "openapi-test: FAIL: the node did not start" >&2
		exit 1
	fi
	sleep 0.05
done
API=$(grep -o 'api=[^ ]*' "$TMP/node.log" | head -1 | cut -d= -f2)
seed=()
[[ -n ${ST_SEED-1} ]] && seed=(--seed "${ST_SEED:-20261203}")
common=(-H "Authorization: Bearer $TOKEN" --checks all --max-examples "${ST_EXAMPLES:-40}" "${seed[@]}" --no-color)
echo "== schemathesis against http://$API/v1/openapi.yaml: every operation but getKey/headKey, all data"
"$ST" run "http://$API/v1/openapi.yaml" "${common[@]}" --exclude-operation-id getKey --exclude-operation-id headKey
echo "== schemathesis: getKey/headKey, positive data (the key \`keys\` is the browser, tested above)"
"$ST" run "http://$API/v1/openapi.yaml" "${common[@]}" --include-operation-id getKey --include-operation-id headKey --mode positive
echo "openapi-test: OK"
