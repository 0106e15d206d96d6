#!/usr/bin/env bash
# The served OpenAPI document and the server cannot drift: schemathesis (PyPI) reads
# GET /v1/openapi.yaml from a live node with a token and tests every documented operation
# against it, all checks on: status codes, response schemas and content types, the Allow header of
# 405s, and that bodies the schemas reject are refused.
#
# NOT YET IN scripts/test.sh: with every check on it still reports mismatches that the OpenAPI
# language cannot express or that need a decision (issue 8; docs/security.md "Not there yet"):
#   - GET/HEAD /v1/cache/{key} with key `keys` is the key browser (the concrete path wins), so the
#     templated operation's schema cannot hold for it either way;
#   - limits the schema cannot state exactly: a key is 1-1024 *bytes*, a ttl above 2^63-1 ns and a
#     ttl_ms written as 862704.0 are refused, and `q` must be a well-formed glob;
# each shows up as "schema-valid request rejected" or "schema-violating request accepted".
# Fixed by this script's first runs: the 405 Allow of /v1/cache/keys (PUT and DELETE documented),
# null batch-put fields, any bytes as a PUT body, negative ttl patterns, array batch items (400).
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
	python3 -m pip install -q schemathesis >/dev/null
fi
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
echo "== schemathesis against http://$API/v1/openapi.yaml"
st run "http://$API/v1/openapi.yaml" -H "Authorization: Bearer $TOKEN" --checks all \
	--max-examples "${ST_EXAMPLES:-40}" "${seed[@]}" --no-color
echo "openapi-test: OK"
