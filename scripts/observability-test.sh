#!/usr/bin/env bash
# Tests of the Prometheus rules, the sample Prometheus configuration and the Grafana dashboard,
# against promtool and against a real Prometheus scraping a live 3-node cluster:
#
#   1. promtool check config (the sample prometheus.yml), check rules, test rules
#      (deploy/prometheus/alerts_test.yml);
#   2. every PromQL expression of the dashboard (Grafana variables replaced by stand-ins) parses:
#      written as recording rules and checked by promtool;
#   3. a 3-node cluster on ephemeral loopback ports with a token (node-3's client listener on TLS
#      with a fresh 30-day certificate, so the TLS rules see live series); a Prometheus from Debian's
#      package, configured from the sample prometheus.yml (1 s intervals, these targets, a temp
#      token file), loads the real alerts, the dashboard expressions and a copy of
#      HypercacheNodeDown with `for: 3s`; every rule evaluates without error on live data, every
#      dashboard panel returns data (so label values are right too), every alert has
#      for/severity/summary/description/runbook_url, and every metric name the rules and the
#      dashboard use exists in a node's /metrics (a missing one is named, with its users);
#   4. kill -9 node-3: through Prometheus's /api/v1/alerts the node-down alert goes pending, then
#      firing.
#
# Usage: scripts/observability-test.sh     (from anywhere; about 20 s)
# Environment: HYPERCACHE_BIN (default target/release/hypercache-server). Installs the Debian
# package `prometheus` (promtool and prometheus) when missing, which needs root and apt.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

BIN=${HYPERCACHE_BIN:-target/release/hypercache-server}
[[ $BIN == /* ]] || BIN=$ROOT/$BIN
# The nodes get only the variables set below.
for v in $(compgen -e | grep '^HYPERCACHE_' || true); do unset "$v"; done
CHECK=$ROOT/tests/observability/promcheck.py
ALERTS=$ROOT/deploy/prometheus/alerts.yml
DASH=$ROOT/deploy/grafana/hypercache.json
TOKEN=observability-token
FAST_FOR=3s

die() { echo "observability-test: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

[[ -x $BIN ]] || die "no server binary at $BIN: cargo build --release --bin hypercache-server, or set HYPERCACHE_BIN"
command -v python3 >/dev/null || die "python3 is needed"
command -v curl >/dev/null || die "curl is needed"
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
	[[ $(id -u) == 0 ]] || die "promtool/prometheus missing: install Debian's prometheus package (needs root)"
	step "installing Debian's prometheus package"
	# On a host booted with systemd the package also enables its own service on :9090; this test
	# never uses it (it runs its own server on a free loopback port). In containers nothing starts.
	{ apt-get update -qq >/dev/null &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } ||
		die "apt-get install prometheus failed"
fi

TMP=$(mktemp -d /tmp/hc-observability.XXXXXX)
PIDS=()
cleanup() {
	local rc=$?
	for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [[ $rc != 0 ]]; then
		for f in "$TMP"/*.log; do
			[[ -f $f ]] || continue
			echo "--- last lines of $(basename "$f")" >&2
			tail -n 15 "$f" >&2
		done
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------------------- 1-2: promtool
step "promtool check config (sample prometheus.yml, token file replaced)"
cp "$ALERTS" "$TMP/alerts.yml" # rule_files are relative to the configuration file
printf '%s' "$TOKEN" >"$TMP/token"
python3 "$CHECK" test-config deploy/prometheus/prometheus.yml "$TMP/prometheus.yml" "$TMP/token"
promtool check config "$TMP/prometheus.yml"
step "promtool check rules"
promtool check rules "$ALERTS"
step "promtool test rules"
promtool test rules deploy/prometheus/alerts_test.yml
step "dashboard expressions parse (as recording rules)"
n=$(python3 "$CHECK" dashboard-rules "$DASH" "$TMP/dashboard-rules.yml")
promtool check rules "$TMP/dashboard-rules.yml"
echo "$n dashboard expressions"

# ---------------------------------------------------------------------------- 3: live cluster
# start_node N [SEEDS [VAR=VALUE...]]: starts node-N on ephemeral loopback ports; sets API[N],
# MGMT[N], DIST[N]. A byte cap, so that the memory-against-cap panels have data.
declare -A API MGMT DIST PID
start_node() {
	local n=$1 seeds=${2:-} log=$TMP/node-$1.log line deadline
	: >"$log"
	env HYPERCACHE_NODE_ID="node-$n" HYPERCACHE_API_ADDR=127.0.0.1:0 HYPERCACHE_MGMT_ADDR=127.0.0.1:0 \
		HYPERCACHE_DIST_ADDR=127.0.0.1:0 HYPERCACHE_SEEDS="$seeds" HYPERCACHE_AUTH_TOKEN="$TOKEN" \
		HYPERCACHE_CORES=1 HYPERCACHE_MAX_MEMORY=64MiB "${@:3}" "$BIN" 2>"$log" >/dev/null &
	PID[$n]=$!
	PIDS+=("$!")
	deadline=$((SECONDS + 10))
	until line=$(grep -m1 'hypercache-server started' "$log"); do
		kill -0 "${PID[$n]}" 2>/dev/null || die "node-$n exited at start: $(tail -n 3 "$log")"
		((SECONDS < deadline)) || die "node-$n logged no start line within 10 s"
		sleep 0.05
	done
	[[ $line =~ \ api=([^ ]+)\ mgmt=([^ ]+)\ dist=([^ ]+) ]] || die "cannot read the ports of node-$n: $line"
	API[$n]=${BASH_REMATCH[1]}
	MGMT[$n]=${BASH_REMATCH[2]}
	DIST[$n]=${BASH_REMATCH[3]}
}

step "3-node cluster on ephemeral loopback ports; node-3's client listener on TLS"
# A 30-day self-signed certificate, so the TLS rules select live series (and must not fire).
command -v openssl >/dev/null || die "openssl is needed (Debian package openssl)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
	-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>"$TMP/openssl.log" ||
	die "openssl could not make a certificate: $(cat "$TMP/openssl.log")"
start_node 1
start_node 2 "${DIST[1]}"
start_node 3 "${DIST[1]}" HYPERCACHE_API_TLS_CERT="$TMP/tls.crt" HYPERCACHE_API_TLS_KEY="$TMP/tls.key"
echo "mgmt ${MGMT[1]} ${MGMT[2]} ${MGMT[3]}"

step "Prometheus (from the package) scraping the cluster"
PROM_PORT=$(free_port)
PROM=http://127.0.0.1:$PROM_PORT
echo '{"groups": []}' >"$TMP/node-down-fast.yml"
python3 "$CHECK" test-config deploy/prometheus/prometheus.yml "$TMP/prometheus.yml" "$TMP/token" \
	"${MGMT[1]},${MGMT[2]},${MGMT[3]}" alerts.yml dashboard-rules.yml node-down-fast.yml
promtool check config "$TMP/prometheus.yml" >/dev/null
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/data" \
	--web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$TMP/prometheus.log" 2>&1 &
PROM_PID=$!
PIDS+=("$PROM_PID")

# api PATH [QUERY]: GET from Prometheus's HTTP API into $TMP/api.json.
api() {
	if [[ $# == 2 ]]; then
		curl -sf -o "$TMP/api.json" --get --data-urlencode "query=$2" "$PROM$1"
	else
		curl -sf -o "$TMP/api.json" "$PROM$1"
	fi
}
# wait_for SECONDS WHAT COMMAND...: polls COMMAND until it succeeds.
wait_for() {
	local limit=$1 what=$2 deadline=$((SECONDS + $1))
	shift 2
	until "$@"; do
		kill -0 "$PROM_PID" 2>/dev/null || die "prometheus exited: $(tail -n 5 "$TMP/prometheus.log")"
		((SECONDS < deadline)) || die "$what: not within ${limit} s"
		sleep 0.2
	done
}
scalar_is() { api /api/v1/query "$1" 2>/dev/null && [[ $(python3 "$CHECK" scalar "$TMP/api.json") == "$2" ]]; }

wait_for 15 "Prometheus ready" curl -sf -o /dev/null "$PROM/-/ready"
wait_for 15 "all three nodes scraped with the token (up == 1)" \
	scalar_is 'count(up{job="hypercache"} == 1)' 3
wait_for 15 "every node sees three alive members" \
	scalar_is 'count(hypercache_dist_members_alive == 3)' 3
wait_for 15 "node-3's client certificate expiry scraped, 30 days ahead" \
	scalar_is 'count(hypercache_tls_cert_expiry_timestamp_seconds{listener="client"} - time() > 29 * 86400)' 1

# Every rule (alerts and dashboard expressions) evaluated after the cluster formed, without error
# (many-to-many matches, duplicate series and the like only show on real data).
since=$(date +%s.%N)
rules_healthy() {
	api /api/v1/rules 2>/dev/null && [[ -z $(python3 "$CHECK" unhealthy "$TMP/api.json" "$since") ]]
}
deadline=$((SECONDS + 10))
until rules_healthy; do
	if ((SECONDS >= deadline)); then
		python3 "$CHECK" unhealthy "$TMP/api.json" "$since" >&2
		die "rules not evaluated, or evaluated with errors, on live data"
	fi
	sleep 0.2
done
echo "every alert and dashboard expression evaluates without error on live data"

step "every dashboard panel shows data (after a write, a hit and a miss through node-1)"
auth=(-H "Authorization: Bearer $TOKEN")
curl -sf "${auth[@]}" -o /dev/null -X PUT --data-binary v "http://${API[1]}/v1/cache/observability" ||
	die "PUT through node-1 failed"
curl -sf "${auth[@]}" -o /dev/null "http://${API[1]}/v1/cache/observability" || die "GET through node-1 failed"
code=$(curl -s "${auth[@]}" -o /dev/null -w '%{http_code}' "http://${API[1]}/v1/cache/missing")
[[ $code == 404 ]] || die "GET of a missing key: $code, not 404"
panels_with_data() {
	api /api/v1/query 'count by (__name__) ({__name__=~"dashboard:.+"})' 2>/dev/null &&
		[[ -z $(python3 "$CHECK" empty-panels "$TMP/dashboard-rules.yml" "$TMP/api.json") ]]
}
deadline=$((SECONDS + 15))
until panels_with_data; do
	if ((SECONDS >= deadline)); then
		python3 "$CHECK" empty-panels "$TMP/dashboard-rules.yml" "$TMP/api.json" >&2
		die "dashboard panels without data on a live cluster (wrong label values?)"
	fi
	sleep 0.2
done
echo "all panels have data"
# node-3's certificate is fresh and nothing was reloaded: no TLS alert may even be pending.
scalar_is 'count(ALERTS{alertname=~"HypercacheTls.*"}) or vector(0)' 0 ||
	die "a TLS alert is pending or firing on a fresh certificate: $(cat "$TMP/api.json")"
echo "no TLS alert on a fresh certificate"

step "metric names of the rules and the dashboard exist in /metrics; alerts linted"
api /api/v1/rules || die "GET /api/v1/rules failed"
curl -sf -H "Authorization: Bearer $TOKEN" -o "$TMP/metrics.txt" "http://${MGMT[1]}/metrics" ||
	die "GET /metrics on node-1 failed"
# node-3 adds the TLS families (only nodes with a TLS listener have them).
curl -sf -H "Authorization: Bearer $TOKEN" "http://${MGMT[3]}/metrics" >>"$TMP/metrics.txt" ||
	die "GET /metrics on node-3 failed"
cp "$TMP/api.json" "$TMP/rules.json"
python3 "$CHECK" check "$TMP/rules.json" "$TMP/metrics.txt" "$DASH" deploy/prometheus/alerts_test.yml

# ---------------------------------------------------------------------------- 4: node down
step "HypercacheNodeDown with for: $FAST_FOR (the real expression, loaded by SIGHUP)"
python3 "$CHECK" fast-rule "$TMP/rules.json" HypercacheNodeDown "$FAST_FOR" "$TMP/node-down-fast.yml"
kill -HUP "$PROM_PID"
fast_loaded() { api /api/v1/rules 2>/dev/null && grep -q '"hypercache-test-fast"' "$TMP/api.json"; }
wait_for 10 "the fast node-down rule loaded" fast_loaded

state() { # state ALERT INSTANCE fast|real
	api /api/v1/alerts 2>/dev/null || { echo error; return; }
	python3 "$CHECK" alert-state "$TMP/api.json" "$@"
}
[[ $(state HypercacheNodeDown "${MGMT[3]}" fast) == none ]] || die "node-down alert active before any node died"

step "kill -9 node-3 (${MGMT[3]}); poll /api/v1/alerts"
kill -9 "${PID[3]}"
{ wait "${PID[3]}"; } 2>/dev/null || true
t0=$SECONDS
seen_pending=0 seen_real=0
deadline=$((SECONDS + 20))
while :; do
	s=$(state HypercacheNodeDown "${MGMT[3]}" fast)
	[[ $(state HypercacheNodeDown "${MGMT[3]}" real) == *pending* ]] && seen_real=1
	case $s in
	pending) [[ $seen_pending == 1 ]] || echo "pending after $((SECONDS - t0)) s"; seen_pending=1 ;;
	firing)
		[[ $seen_pending == 1 ]] || die "node-down alert went firing without being seen pending"
		echo "firing after $((SECONDS - t0)) s"
		break
		;;
	none | error) ;;
	*) die "unexpected alert state: $s" ;;
	esac
	((SECONDS < deadline)) || die "node-down alert for node-3 not firing within 20 s (last state: $s)"
	sleep 0.1
done
[[ $seen_real == 1 || $(state HypercacheNodeDown "${MGMT[3]}" real) == pending ]] ||
	die "the real HypercacheNodeDown (for: 1m) did not go pending"
for n in 1 2; do
	[[ $(state HypercacheNodeDown "${MGMT[$n]}" fast) == none ]] || die "node-down alert for the live node-$n"
done
echo "observability-test: OK"
