#!/usr/bin/env bash
# Runbook scenario "hint-queue overflow" (docs/operations.md#hint-queue-overflow): three nodes,
# RF 3, small hint caps (node-1: HYPERCACHE_HINT_MAX_PER_NODE=50; node-2:
# HYPERCACHE_HINT_MAX_BYTES=4KiB and HYPERCACHE_HINT_TTL=1s). node-3 is killed; 200 writes
# through each of node-1 and node-2 overflow both caps: the oldest hints are dropped and
# counted; node-2's remaining hints then outlive their TTL. node-3 comes back: node-1 replays
# what its queue still holds and rebalance brings node-3 every key it owns.
# shellcheck source=scripts/runbook/lib.sh
source "$(dirname "$0")/lib.sh"
rb_begin hint-queue-overflow

# S = 20 x 300 ms = 6 s: node-3 stays a ring member (and a hint target) while the writes run.
RB_ENV=(
	HYPERCACHE_HEARTBEAT=300ms HYPERCACHE_SUSPICION_MULT=20 HYPERCACHE_GOSSIP_INTERVAL=200ms
	HYPERCACHE_HINT_REPLAY=100ms HYPERCACHE_REBALANCE_INTERVAL=100ms
	HYPERCACHE_ANTI_ENTROPY_INTERVAL=1s
)
start_node 1 HYPERCACHE_HINT_MAX_PER_NODE=50
start_node 2 HYPERCACHE_HINT_MAX_BYTES=4KiB HYPERCACHE_HINT_TTL=1s
start_node 3
wait_all_alive 15 1 2 3

rb_log "symptom: node-3 down, 200 writes through node-1 and 200 through node-2"
from1=$(log_size 1)
from2=$(log_size 2)
stop_node 3 KILL
hc put --api "${API[1]}" --token "$TOKEN" --prefix via1 --count 200 --size 100 >/dev/null ||
	fail "writes through node-1 with node-3 down failed"
hc put --api "${API[2]}" --token "$TOKEN" --prefix via2 --count 200 --size 100 >/dev/null ||
	fail "writes through node-2 with node-3 down failed"
ok "400 writes acknowledged by node-1 and node-2"
[[ $(member_state 1 node-3) != dead ]] || fail "node-3 was declared dead before the writes: no hints to overflow"
wait_metric 1 hypercache_dist_hinted_queued_total ">=" 200 5
wait_metric 1 hypercache_dist_hinted_dropped_total ">=" 150 5
wait_log 1 'dropped [0-9]+ hints at the caps \(HYPERCACHE_HINT_MAX_PER_NODE / HYPERCACHE_HINT_MAX_BYTES\)' 5 "$from1"
wait_metric 2 hypercache_dist_hinted_queued_total ">=" 200 5
wait_metric 2 hypercache_dist_hinted_global_dropped_total ">=" 150 5
wait_metric 2 hypercache_dist_hinted_bytes "<=" 4096 1
wait_metric 2 hypercache_dist_hinted_bytes ">" 0 1
wait_log 2 'dropped [0-9]+ hints at the caps \(HYPERCACHE_HINT_MAX_PER_NODE / HYPERCACHE_HINT_MAX_BYTES\)' 5 "$from2"
# a target away longer than HYPERCACHE_HINT_TTL gets nothing replayed: node-2's hints expire
wait_metric 2 hypercache_dist_hinted_expired_total ">=" 20 5
wait_metric 2 hypercache_dist_hinted_bytes "==" 0 1

rb_log "fix: bring node-3 back; replay what is left, rebalance the rest"
start_node 3
wait_all_alive 15 1 2 3
wait_metric 1 hypercache_dist_hinted_replayed_total "==" 50 15
wait_metric 1 hypercache_dist_hinted_bytes "==" 0 15
wait_metric 2 hypercache_dist_hinted_replayed_total "==" 0 1
for n in 1 2; do wait_metric "$n" hypercache_dist_rebalanced_keys_total ">" 0 15; done
wait_metric 3 hypercache_items "==" 400 20
for p in via1 via2; do
	out=$(hc get --api "${API[3]}" --token "$TOKEN" --prefix "$p" --count 200 --size 100)
	[[ $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["found"])' "$out") == 200 ]] ||
		fail "keys $p-* through node-3: $out"
done
ok "every key written during the outage is readable through node-3"
rb_pass
