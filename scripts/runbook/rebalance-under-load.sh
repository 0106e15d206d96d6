#!/usr/bin/env bash
# Runbook scenario "rebalance under load" (docs/operations.md#rebalance-under-load): two nodes
# hold 20 000 keys (RF 3, so both own every key) while a client keeps reading and writing
# through both. node-3 joins: the ring grows to three, the old owners push node-3 every key
# (rebalance) while the client load goes on without a single error. Done when node-3 holds
# every key and the rebalance counters stop moving.
# shellcheck source=scripts/runbook/lib.sh
source "$(dirname "$0")/lib.sh"
rb_begin rebalance-under-load

KEYS=20000
RB_ENV=(
	HYPERCACHE_HEARTBEAT=300ms HYPERCACHE_GOSSIP_INTERVAL=200ms HYPERCACHE_REBALANCE_INTERVAL=100ms
	HYPERCACHE_ANTI_ENTROPY_INTERVAL=2s
)
start_node 1
start_node 2
wait_all_alive 15 1 2
hc put --api "${API[1]}" --token "$TOKEN" --prefix rl --count "$KEYS" --size 100 >/dev/null || fail "initial writes failed"
ok "$KEYS keys written"
before=$(($(metric 1 hypercache_dist_rebalanced_keys_total) + $(metric 2 hypercache_dist_rebalanced_keys_total)))
batches1=$(metric 1 hypercache_dist_rebalance_batches_total)
peer1=$(metric 1 hypercache_peer_requests_total 'route="internal_batch"')

rb_log "symptom: node-3 joins while a client reads and writes through node-1 and node-2"
rm -f "$OUT/stop"
hc load --apis "${API[1]},${API[2]}" --token "$TOKEN" --stop-file "$OUT/stop" --rate 200 >"$OUT/load.out" 2>&1 &
LOAD=$!
RB_CLEANUP+=("kill $LOAD 2>/dev/null")
wait_metric 1 hypercache_http_requests_total 'listener="client"' 'route="put"' ">" 50 10
puts1=$(metric 1 hypercache_http_request_duration_seconds_count 'route="put"')
from1=$(log_size 1)
start_node 3
wait_log 1 'member node-3 joined \(alive incarnation=[0-9]+\)' 5 "$from1"
wait_log 1 'ring now has 3 members: node-1,node-2,node-3' 5 "$from1"
wait_metric 1 hypercache_dist_rebalance_batches_total ">" "$batches1" 10
wait_metric 1 hypercache_peer_requests_total 'route="internal_batch"' ">" "$peer1" 10
wait_metric 1 hypercache_dist_rebalanced_keys_total ">" 0 10
wait_metric 2 hypercache_dist_rebalanced_keys_total ">" 0 10
wait_metric 3 hypercache_items ">" 0 10
wait_metric 1 hypercache_http_request_duration_seconds_count 'route="put"' ">" "$puts1" 5

rb_log "confirm: node-3 holds every key, rebalance goes idle, the load saw no error"
wait_metric 3 hypercache_items ">=" "$KEYS" 40
moved=$(($(metric 1 hypercache_dist_rebalanced_keys_total) + $(metric 2 hypercache_dist_rebalanced_keys_total) - before))
((moved >= KEYS)) || fail "node-1 and node-2 rebalanced $moved keys, expected >= $KEYS"
ok "node-1 + node-2 hypercache_dist_rebalanced_keys_total grew by $moved"
# idle: the counters no longer move between two samples half a second apart
deadline=$((SECONDS + 20))
prev=-1
while :; do
	cur="$(metric 1 hypercache_dist_rebalanced_keys_total)/$(metric 2 hypercache_dist_rebalanced_keys_total)"
	[[ $cur == "$prev" ]] && break
	((SECONDS < deadline)) || fail "rebalance counters still moving after 20 s ($cur)"
	prev=$cur
	sleep 0.5
done
ok "rebalanced keys of node-1/node-2 stable at $cur"
# one push request in flight per node: nothing ever waits behind an in-flight cap
wait_metric 1 hypercache_dist_rebalance_throttle_total "==" 0 1
touch "$OUT/stop"
wait "$LOAD" || fail "the client load saw errors during the rebalance: $(cat "$OUT/load.out")"
ok "client load during the rebalance: $(cat "$OUT/load.out")"
out=$(hc get --api "${API[3]}" --token "$TOKEN" --prefix rl --count "$KEYS" --size 100)
[[ $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["found"])' "$out") == "$KEYS" ]] ||
	fail "reads through node-3: $out"
ok "every key readable through node-3: $out"
rb_pass
